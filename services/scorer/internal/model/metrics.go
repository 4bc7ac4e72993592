package model

import (
	"math"
	"math/rand/v2"
	"slices"
)

// Confusion counts predictions against labels at a threshold.
type Confusion struct {
	TruePositives  int `json:"tp"`
	FalsePositives int `json:"fp"`
	TrueNegatives  int `json:"tn"`
	FalseNegatives int `json:"fn"`
}

// Metrics evaluate a model's predictions: probabilities against labels
// (logistic), or numbers against targets (ridge: RMSE, MAE and R²).
type Metrics struct {
	Rows      int       `json:"rows"`
	RMSE      float64   `json:"rmse,omitempty"`
	MAE       float64   `json:"mae,omitempty"`
	R2        float64   `json:"r2,omitempty"`
	Threshold float64   `json:"threshold"`
	Accuracy  float64   `json:"accuracy"`
	Precision float64   `json:"precision"`
	Recall    float64   `json:"recall"`
	F1        float64   `json:"f1"`
	AUC       float64   `json:"roc_auc"`
	LogLoss   float64   `json:"log_loss"`
	Brier     float64   `json:"brier"`
	Confusion Confusion `json:"confusion"`
}

// Evaluate scores probabilities p against labels y (0 or 1); a
// probability at or above threshold predicts 1. Ratios without a
// denominator (no predicted or no actual positives) are 0.
func Evaluate(y, p []float64, threshold float64) Metrics {
	m := Metrics{Rows: len(y), Threshold: threshold}
	if len(y) == 0 {
		return m
	}
	var c Confusion
	var loss, brier float64
	for i, yi := range y {
		predicted := p[i] >= threshold
		switch {
		case predicted && yi == 1:
			c.TruePositives++
		case predicted:
			c.FalsePositives++
		case yi == 1:
			c.FalseNegatives++
		default:
			c.TrueNegatives++
		}
		loss += logLoss(yi, p[i])
		brier += (p[i] - yi) * (p[i] - yi)
	}
	n := float64(len(y))
	m.Confusion = c
	m.Accuracy = float64(c.TruePositives+c.TrueNegatives) / n
	m.Precision = ratio(c.TruePositives, c.TruePositives+c.FalsePositives)
	m.Recall = ratio(c.TruePositives, c.TruePositives+c.FalseNegatives)
	if m.Precision+m.Recall > 0 {
		m.F1 = 2 * m.Precision * m.Recall / (m.Precision + m.Recall)
	}
	m.LogLoss = loss / n
	m.Brier = brier / n
	m.AUC = AUC(y, p)
	return m
}

// EvaluateRegression scores predictions p against targets y: root mean
// squared error, mean absolute error and the coefficient of determination
// R² = 1 − SSres/SStot (0 when the targets do not vary).
func EvaluateRegression(y, p []float64) Metrics {
	m := Metrics{Rows: len(y)}
	if len(y) == 0 {
		return m
	}
	n := float64(len(y))
	var mean float64
	for _, v := range y {
		mean += v / n
	}
	var res, tot, abs float64
	for i, v := range y {
		e := v - p[i]
		res += e * e
		abs += math.Abs(e)
		tot += (v - mean) * (v - mean)
	}
	m.RMSE = math.Sqrt(res / n)
	m.MAE = abs / n
	if tot > 0 {
		m.R2 = 1 - res/tot
	}
	return m
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// AUC is the area under the ROC curve: the probability that a random
// positive scores above a random negative, ties counting one half (the
// Mann–Whitney statistic, from average ranks). It is 0.5 without both
// classes.
func AUC(y, p []float64) float64 {
	idx := make([]int, len(p))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		switch {
		case p[a] < p[b]:
			return -1
		case p[a] > p[b]:
			return 1
		}
		return 0
	})
	var rankSum float64
	var pos, neg int
	for i := 0; i < len(idx); {
		j := i
		for j < len(idx) && p[idx[j]] == p[idx[i]] {
			j++
		}
		avg := float64(i+j+1) / 2 // ranks i+1 … j, averaged
		for _, k := range idx[i:j] {
			if y[k] == 1 {
				rankSum += avg
			}
		}
		i = j
	}
	for _, v := range y {
		if v == 1 {
			pos++
		} else {
			neg++
		}
	}
	if pos == 0 || neg == 0 {
		return 0.5
	}
	return (rankSum - float64(pos)*float64(pos+1)/2) / (float64(pos) * float64(neg))
}

// StratifiedSplit shuffles the indexes of labels y with seed and sends a
// share test of each class to the test split, the rest to training.
func StratifiedSplit(y []float64, test float64, seed uint64) (trainIdx, testIdx []int) {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) // #nosec G404 -- seeded, reproducible resampling
	for _, class := range []float64{0, 1} {
		var idx []int
		for i, v := range y {
			if v == class {
				idx = append(idx, i)
			}
		}
		rng.Shuffle(len(idx), func(a, b int) { idx[a], idx[b] = idx[b], idx[a] })
		cut := int(float64(len(idx))*test + 0.5)
		testIdx = append(testIdx, idx[:cut]...)
		trainIdx = append(trainIdx, idx[cut:]...)
	}
	slices.Sort(trainIdx)
	slices.Sort(testIdx)
	return trainIdx, testIdx
}
