package model

import "fmt"

// TrainRidge fits a ridge regression of targets y on x in closed form: it
// minimises ‖y − Xβ − b‖² + λ‖β‖² (the intercept b is not penalised, as in
// scikit-learn's Ridge with alpha = λ) by solving the normal equations
// (XᵀX + λI)·β = Xᵀy, extended by the intercept, with a Cholesky
// decomposition.
func TrainRidge(x *Matrix, y []float64, l2 float64) (*Fit, error) {
	n, d := x.Rows, x.Cols
	if n == 0 || len(y) != n {
		return nil, fmt.Errorf("train: %d rows, %d targets", n, len(y))
	}
	k := d + 1 // intercept last
	gram := make([]float64, k*k)
	rhs := make([]float64, k)
	row := make([]float64, k)
	for i := range n {
		copy(row, x.Row(i))
		row[d] = 1
		for a := range k {
			ra := row[a]
			if ra == 0 {
				continue
			}
			rhs[a] += ra * y[i]
			line := gram[a*k : a*k+k]
			for b := a; b < k; b++ {
				line[b] += ra * row[b]
			}
		}
	}
	for a := range d {
		gram[a*k+a] += l2
	}
	for a := range k { // mirror the upper triangle
		for b := a + 1; b < k; b++ {
			gram[b*k+a] = gram[a*k+b]
		}
	}
	beta, err := solveSPD(gram, rhs, k)
	if err != nil {
		return nil, fmt.Errorf("ridge: %w", err)
	}
	f := &Fit{Intercept: beta[d], Weights: beta[:d], Iterations: 1}
	for i := range n {
		r := y[i] - f.Linear(x.Row(i))
		f.Objective += r * r
	}
	for _, b := range f.Weights {
		f.Objective += l2 * b * b
	}
	return f, nil
}
