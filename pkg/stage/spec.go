package stage

import (
	"context"

	"github.com/hamba/avro/v2"

	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/schemas"
)

// NewSpec builds the spec of the step that reads topic from.<dataset> and
// writes to.<dataset>, e.g. kafka.Raw to kafka.Clean, with dead letters on
// dlq.<dataset>: it registers the schemas and makes the codecs.
func NewSpec[In, Out any](ctx context.Context, reg *serde.Registry, stage, dataset, from, to string,
	inSchema, outSchema avro.Schema, h Handler[In, Out],
) (Spec[In, Out], error) {
	in, out, dlq := kafka.Topic(from, dataset), kafka.Topic(to, dataset), kafka.Topic(kafka.DLQ, dataset)
	dec, err := serde.NewCodec[In](ctx, reg, in, inSchema)
	if err != nil {
		return Spec[In, Out]{}, err
	}
	enc, err := serde.NewCodec[Out](ctx, reg, out, outSchema)
	if err != nil {
		return Spec[In, Out]{}, err
	}
	dead, err := serde.NewCodec[schemas.DeadLetter](ctx, reg, dlq, schemas.MustSchema("deadletter"))
	if err != nil {
		return Spec[In, Out]{}, err
	}
	keys, err := serde.NewKeyCodec(ctx, reg, out)
	if err != nil {
		return Spec[In, Out]{}, err
	}
	return Spec[In, Out]{
		Stage: stage, Dataset: dataset, Input: in, Output: out, DeadLetters: dlq,
		Decoder: dec, Encoder: enc, DeadLetterEncoder: dead, Keys: keys, Handler: h,
	}, nil
}
