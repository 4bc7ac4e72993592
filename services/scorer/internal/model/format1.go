package model

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// format1 is the layout of the artefacts written before datasets declared
// their models: the seed's churn model, with its features
// fixed in code. Load reads them as the declared model they were, so that
// a model directory trained before keeps being applied; they can go once
// no such artefact is left to apply.
type format1 struct {
	Format        int       `json:"format"`
	Name          string    `json:"name"`
	Version       string    `json:"version"`
	Created       time.Time `json:"created"`
	Dataset       string    `json:"dataset"`
	Churned       []string  `json:"churned_statuses"`
	Preprocessing struct {
		AsOf    time.Time `json:"as_of"`
		Numeric []struct {
			Name   string  `json:"name"`
			Median float64 `json:"median"`
			Mean   float64 `json:"mean"`
			Std    float64 `json:"std"`
		} `json:"numeric"`
		Categorical []struct {
			Name       string   `json:"name"`
			Categories []string `json:"categories"`
		} `json:"categorical"`
	} `json:"preprocessing"`
	Features  []string  `json:"features"`
	Weights   []float64 `json:"weights"`
	Intercept float64   `json:"intercept"`
	Threshold float64   `json:"threshold"`
	Training  Training  `json:"training"`
	Test      Metrics   `json:"test_metrics"`
	Train     Metrics   `json:"train_metrics"`
}

// format1Label is the label column of a format 1 artefact.
const format1Label = "account_status"

// format1Numeric are the numeric features format 1 computed, as they are
// declared now.
var format1Numeric = map[string]FeatureDecl{
	"age":               {Column: "age", Kind: KindNumeric},
	"tenure_days":       {Column: "signup_date", Kind: KindNumeric, Transform: DaysSince},
	"days_since_login":  {Column: "last_login", Kind: KindNumeric, Transform: DaysSince},
	"log_monthly_spend": {Column: "monthly_spend", Kind: KindNumeric, Transform: Log1p},
}

// fromFormat1 reads a format 1 artefact as the model it is.
func fromFormat1(b []byte) (*Model, error) {
	var old format1
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&old); err != nil {
		return nil, fmt.Errorf("format 1: %w", err)
	}
	asOf := old.Preprocessing.AsOf
	p := &Preprocessing{AsOf: &asOf}
	for _, n := range old.Preprocessing.Numeric {
		d, ok := format1Numeric[n.Name]
		if !ok {
			return nil, fmt.Errorf("format 1: numeric feature %q is not one format 1 computed", n.Name)
		}
		p.Features = append(p.Features, Feature{
			Name: n.Name, Column: d.Column, Kind: KindNumeric, Transform: d.Transform, Median: n.Median, Mean: n.Mean, Std: n.Std,
		})
	}
	for _, c := range old.Preprocessing.Categorical {
		p.Features = append(p.Features, Feature{Name: c.Name, Column: c.Name, Kind: KindCategorical, Categories: c.Categories})
	}
	return &Model{
		Format: Format, Name: old.Name, Version: old.Version, Created: old.Created, Dataset: old.Dataset,
		Kind: Logistic, Label: Label{Column: format1Label, Positive: old.Churned}, Preprocessing: p,
		Features: old.Features, Weights: old.Weights, Intercept: old.Intercept, Threshold: old.Threshold,
		Training: old.Training, Test: old.Test, Train: old.Train,
	}, nil
}
