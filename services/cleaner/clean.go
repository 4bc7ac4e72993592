package main

import (
	"context"
	"encoding/hex"
	"fmt"

	"github.com/hamba/avro/v2"

	"github.com/datamill/datamill/pkg/ingest"
	"github.com/datamill/datamill/pkg/rules"
	"github.com/datamill/datamill/pkg/stage"
	"github.com/datamill/datamill/schemas"
)

// record is a decoded Avro record; the cleaner is the same code for every
// dataset, since what differs is declared in the dataset's schemas.
type record = map[string]any

// cleaning is the cleaning step of one dataset.
type cleaning struct {
	rules *rules.Rules
	key   string
}

// newCleaning reads the rules and the key field of a clean schema.
func newCleaning(clean avro.Schema) (*cleaning, error) {
	r, err := rules.Compile(clean)
	if err != nil {
		return nil, err
	}
	key, err := schemas.KeyField(clean)
	if err != nil {
		return nil, err
	}
	return &cleaning{rules: r, key: key}, nil
}

// transform cleans one raw record: a clean record keyed by its key field,
// carrying the raw event's id, time and source, or a rejection with every
// reason.
//
// The envelope's text is checked as the rules check values, since any
// producer may write the raw topic: an event id that is no text the
// database can store rejects the record, such a source is nulled and
// flagged.
func (c *cleaning) transform(_ context.Context, m stage.Message[record]) ([]stage.Output[record], error) {
	o := c.rules.Apply(m.Value)
	if id, ok := m.Value[ingest.FieldEventID].(string); ok {
		if problem := rules.TextProblem(id); problem != "" {
			o.Reasons = append(o.Reasons, schemas.FieldEventID+": "+problem)
		}
	}
	if o.Rejected() {
		return nil, stage.Reject(o.Reasons...)
	}
	v := o.Values
	v[schemas.FieldContentHash] = c.rules.Hash(o) // content only: before the envelope's flags
	flags := o.Flags
	if flags == nil {
		flags = []string{}
	}
	source := m.Value[ingest.FieldSource]
	if s, ok := source.(string); ok {
		if problem := rules.TextProblem(s); problem != "" {
			source = nil
			flags = append(flags, schemas.FieldSource+":"+problem)
		}
	}
	v["quality_flags"] = flags
	v[schemas.FieldEventID] = m.Value[ingest.FieldEventID]
	v[schemas.FieldEventTime] = m.Value[ingest.FieldIngestedAt]
	v[schemas.FieldSource] = source
	return []stage.Output[record]{{Key: fmt.Append(nil, v[c.key]), Value: v}}, nil
}

// contentDigest is what the cleaner remembers of a key's last clean record:
// the first 16 bytes of its content hash, enough to tell content apart and
// half the memory of the hex.
func contentDigest(v record) string {
	h, _ := v[schemas.FieldContentHash].(string)
	b, err := hex.DecodeString(h[:min(len(h), 32)])
	if err != nil {
		return h
	}
	return string(b)
}
