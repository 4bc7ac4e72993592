package model

import (
	"errors"
	"fmt"
	"math"
)

// Matrix is n rows of d features, row-major.
type Matrix struct {
	Rows, Cols int
	Data       []float64
}

// Row returns row i.
func (m *Matrix) Row(i int) []float64 { return m.Data[i*m.Cols : (i+1)*m.Cols] }

// Options tune the logistic regression.
type Options struct {
	// L2 is the penalty λ on the weights (not the intercept): the fit
	// minimises Σ wᵢ·logloss(i) + λ/2·‖β‖². scikit-learn's C is 1/λ.
	L2 float64
	// MaxIterations bounds the Newton steps; Tolerance ends them once no
	// coefficient moves by more.
	MaxIterations int
	Tolerance     float64
	// OnIteration, when set, is called after every Newton step with the
	// step number and the objective.
	OnIteration func(iteration int, objective float64)
}

// Fit is a trained logistic or ridge regression.
type Fit struct {
	Intercept  float64
	Weights    []float64
	Iterations int
	// Objective is the penalised weighted log loss at the optimum.
	Objective float64
}

// Linear is the intercept plus the weighted sum of x: a ridge model's
// prediction, a logistic one's log-odds.
func (f *Fit) Linear(x []float64) float64 {
	z := f.Intercept
	for j, w := range f.Weights {
		z += w * x[j]
	}
	return z
}

// Probability is the predicted probability of the positive class for x.
func (f *Fit) Probability(x []float64) float64 { return sigmoid(f.Linear(x)) }

func sigmoid(z float64) float64 {
	if z >= 0 {
		return 1 / (1 + math.Exp(-z))
	}
	e := math.Exp(z)
	return e / (1 + e)
}

// ErrNotConverged: the Newton steps ran out before the coefficients
// settled.
var ErrNotConverged = errors.New("logistic regression did not converge")

// Train fits a logistic regression of labels y (0 or 1) on x with sample
// weights w (nil: all 1) by Newton's method: each step solves the
// penalised Hessian system exactly, so a few steps reach the optimum to
// the tolerance.
func Train(x *Matrix, y, w []float64, opt Options) (*Fit, error) {
	n, d := x.Rows, x.Cols
	if n == 0 || len(y) != n || (w != nil && len(w) != n) {
		return nil, fmt.Errorf("train: %d rows, %d labels, %d weights", n, len(y), len(w))
	}
	if opt.MaxIterations <= 0 {
		opt.MaxIterations = 50
	}
	if opt.Tolerance <= 0 {
		opt.Tolerance = 1e-8
	}
	k := d + 1                 // intercept last
	beta := make([]float64, k) // weights, then intercept
	grad := make([]float64, k)
	hess := make([]float64, k*k)
	row := make([]float64, k)
	for it := 1; it <= opt.MaxIterations; it++ {
		clear(grad)
		clear(hess)
		for i := range n {
			copy(row, x.Row(i))
			row[d] = 1
			z := 0.0
			for j, b := range beta {
				z += b * row[j]
			}
			p := sigmoid(z)
			wi := 1.0
			if w != nil {
				wi = w[i]
			}
			g, h := wi*(p-y[i]), wi*p*(1-p)
			for a := range k {
				ra := row[a]
				if ra == 0 {
					continue
				}
				grad[a] += g * ra
				hr := h * ra
				line := hess[a*k : a*k+k]
				for b := a; b < k; b++ {
					line[b] += hr * row[b]
				}
			}
		}
		for a := range d {
			grad[a] += opt.L2 * beta[a]
			hess[a*k+a] += opt.L2
		}
		for a := range k { // mirror the upper triangle
			for b := a + 1; b < k; b++ {
				hess[b*k+a] = hess[a*k+b]
			}
		}
		step, err := solveSPD(hess, grad, k)
		if err != nil {
			return nil, fmt.Errorf("newton step %d: %w", it, err)
		}
		moved := 0.0
		for j := range beta {
			beta[j] -= step[j]
			moved = max(moved, math.Abs(step[j]))
		}
		obj := objective(x, y, w, beta, opt.L2)
		if opt.OnIteration != nil {
			opt.OnIteration(it, obj)
		}
		if moved < opt.Tolerance {
			return &Fit{Intercept: beta[d], Weights: beta[:d], Iterations: it, Objective: obj}, nil
		}
	}
	return nil, fmt.Errorf("%w in %d Newton steps", ErrNotConverged, opt.MaxIterations)
}

// objective is Σ wᵢ·logloss(i) + λ/2·‖weights‖².
func objective(x *Matrix, y, w, beta []float64, l2 float64) float64 {
	d := x.Cols
	f := &Fit{Intercept: beta[d], Weights: beta[:d]}
	total := 0.0
	for i := range x.Rows {
		p := f.Probability(x.Row(i))
		wi := 1.0
		if w != nil {
			wi = w[i]
		}
		total += wi * logLoss(y[i], p)
	}
	for _, b := range beta[:d] {
		total += l2 / 2 * b * b
	}
	return total
}

// logLoss is the log loss of probability p for label y, with p kept off 0
// and 1.
func logLoss(y, p float64) float64 {
	p = min(max(p, 1e-15), 1-1e-15)
	return -(y*math.Log(p) + (1-y)*math.Log(1-p))
}

// solveSPD solves a·x = b for a symmetric positive definite k×k matrix by
// Cholesky decomposition.
func solveSPD(a, b []float64, k int) ([]float64, error) {
	l := make([]float64, k*k)
	for i := range k {
		for j := 0; j <= i; j++ {
			s := a[i*k+j]
			for m := range j {
				s -= l[i*k+m] * l[j*k+m]
			}
			if i == j {
				if s <= 0 {
					return nil, errors.New("the Hessian is not positive definite (add L2)")
				}
				l[i*k+i] = math.Sqrt(s)
			} else {
				l[i*k+j] = s / l[j*k+j]
			}
		}
	}
	y := make([]float64, k)
	for i := range k {
		s := b[i]
		for m := range i {
			s -= l[i*k+m] * y[m]
		}
		y[i] = s / l[i*k+i]
	}
	x := make([]float64, k)
	for i := k - 1; i >= 0; i-- {
		s := y[i]
		for m := i + 1; m < k; m++ {
			s -= l[m*k+i] * x[m]
		}
		x[i] = s / l[i*k+i]
	}
	return x, nil
}
