package service

import (
	"context"
	"fmt"

	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/stage"
)

// RunStages runs one stage runner for each dataset until ctx ends or one
// of them fails, which stops the others; it returns their errors joined.
//
// spec builds the spec of one dataset (with stage.NewSpec); RunStages
// reports each runner's readiness as the /readyz component
// stage_<dataset> (it sets Spec.OnReady) and registers the runners'
// metrics once. An error of spec stops the process before any runner
// starts.
func RunStages[In, Out any](ctx context.Context, p *Process, datasets []string, cfg stage.Config, kcfg kafka.Config,
	spec func(ctx context.Context, dataset string) (*stage.Spec[In, Out], error),
) error {
	metrics := stage.NewMetrics(p.Telemetry.Registry())
	runs := make([]func(context.Context) error, 0, len(datasets))
	for _, ds := range datasets {
		s, err := spec(ctx, ds)
		if err != nil {
			return err
		}
		if s == nil {
			return fmt.Errorf("dataset %q: no stage spec", ds)
		}
		s.OnReady = func(ready bool, reason string) { p.Telemetry.SetReady(stageComponent(ds), ready, reason) }
		r, err := stage.NewRunner(*s, cfg, kcfg, p.Log, metrics)
		if err != nil {
			return err
		}
		runs = append(runs, r.Run)
	}
	return RunAll(ctx, runs...)
}

// stageComponent is the /readyz component of the stage runner of dataset.
func stageComponent(dataset string) string { return "stage_" + dataset }

// RunStagesIndependently is RunStages for stages whose specs wait for
// something of their own dataset before they can be built (the scorer's
// model): each dataset's spec is built in its own goroutine and its runner
// starts as soon as it is, whatever the other datasets wait for. An error
// of a spec or a runner stops the others; a spec that returns because ctx
// ended is no error.
func RunStagesIndependently[In, Out any](ctx context.Context, p *Process, datasets []string, cfg stage.Config, kcfg kafka.Config,
	spec func(ctx context.Context, dataset string) (*stage.Spec[In, Out], error),
) error {
	metrics := stage.NewMetrics(p.Telemetry.Registry())
	runs := make([]func(context.Context) error, 0, len(datasets))
	for _, ds := range datasets {
		runs = append(runs, func(ctx context.Context) error {
			s, err := spec(ctx, ds)
			switch {
			case ctx.Err() != nil:
				return nil
			case err != nil:
				return err
			case s == nil:
				return fmt.Errorf("dataset %q: no stage spec", ds)
			}
			s.OnReady = func(ready bool, reason string) { p.Telemetry.SetReady(stageComponent(ds), ready, reason) }
			r, err := stage.NewRunner(*s, cfg, kcfg, p.Log, metrics)
			if err != nil {
				return err
			}
			return r.Run(ctx)
		})
	}
	return RunAll(ctx, runs...)
}
