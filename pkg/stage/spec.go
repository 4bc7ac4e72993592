package stage

import (
	"context"
	"fmt"
	"strings"

	"github.com/hamba/avro/v2"

	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/schemas"
)

// Step is what one stage reads and writes for one dataset, the part of a
// Spec that NewSpec makes topics and codecs of. Every field is required.
type Step struct {
	// Stage names the step ("cleaner"); Dataset the dataset ("users").
	Stage, Dataset string
	// From is the kind of the consumed topic (kafka.Raw), In its schema.
	From string
	In   avro.Schema
	// To is the kind of the produced topic (kafka.Clean), Out its schema.
	To  string
	Out avro.Schema
}

// field is a required field of a stage's description and whether it is set.
type field struct {
	name string
	set  bool
}

// lacks returns an error naming the unset fields of what, in order, or nil.
func lacks(what string, fields ...field) error {
	var names []string
	for _, f := range fields {
		if !f.set {
			names = append(names, f.name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	return fmt.Errorf("%s lacks %s", what, strings.Join(names, ", "))
}

// NewSpec builds the spec of step with handler h: it reads topic
// <From>.<Dataset> and writes <To>.<Dataset> (e.g. raw.users to
// clean.users), with dead letters on dlq.<Dataset>, registers the schemas
// and makes the codecs.
func NewSpec[In, Out any](ctx context.Context, reg *serde.Registry, step Step, h Handler[In, Out]) (*Spec[In, Out], error) {
	if err := lacks("stage step", field{"Stage", step.Stage != ""}, field{"Dataset", step.Dataset != ""},
		field{"From", step.From != ""}, field{"In", step.In != nil},
		field{"To", step.To != ""}, field{"Out", step.Out != nil}); err != nil {
		return nil, err
	}
	ds := step.Dataset
	in, out, dlq := kafka.Topic(step.From, ds), kafka.Topic(step.To, ds), kafka.Topic(kafka.DLQ, ds)
	dec, err := serde.NewCodec[In](ctx, reg, in, step.In)
	if err != nil {
		return nil, err
	}
	enc, err := serde.NewCodec[Out](ctx, reg, out, step.Out)
	if err != nil {
		return nil, err
	}
	dead, err := serde.NewCodec[schemas.DeadLetter](ctx, reg, dlq, schemas.MustSchema("deadletter"))
	if err != nil {
		return nil, err
	}
	keys, err := serde.NewKeyCodec(ctx, reg, out)
	if err != nil {
		return nil, err
	}
	return &Spec[In, Out]{
		Stage: step.Stage, Dataset: ds, Input: in, Output: out, DeadLetters: dlq,
		Decoder: dec, Encoder: enc, DeadLetterEncoder: dead, Keys: keys, Handler: h,
	}, nil
}
