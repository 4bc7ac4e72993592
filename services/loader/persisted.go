package main

import (
	"encoding/binary"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/services/loader/internal/sink"
)

// persisted is one record for persisted.<dataset>: the clean record, what
// the loader did with it and when.
type persisted struct {
	clean record
	// body is the clean record's Avro body as it came, when it was written
	// with the very schema the persisted record embeds; nil otherwise.
	body   []byte
	action sink.Action
	at     time.Time
}

// persistedEncoder writes persisted records. Avro lays a record out as its
// fields one after the other, so a persisted record whose clean record
// came written with the schema it embeds is that record's body as it came,
// then the action's enum index and the time: it is copied, not encoded
// again. Any other is encoded from its values.
type persistedEncoder struct {
	codec   *serde.Codec[map[string]any]
	actions map[sink.Action]int64 // each action's enum index
}

func newPersistedEncoder(codec *serde.Codec[map[string]any]) *persistedEncoder {
	e := &persistedEncoder{codec: codec, actions: map[sink.Action]int64{}}
	for _, f := range codec.Schema().(*avro.RecordSchema).Fields() {
		if enum, ok := f.Type().(*avro.EnumSchema); ok && f.Name() == "action" {
			for i, s := range enum.Symbols() {
				e.actions[sink.Action(s)] = int64(i)
			}
		}
	}
	return e
}

// AppendEncode appends p in the wire format to dst.
func (e *persistedEncoder) AppendEncode(dst []byte, p *persisted) ([]byte, error) {
	i, ok := e.actions[p.action]
	if p.body == nil || !ok {
		v := map[string]any{"record": p.clean.Interface(), "action": string(p.action), "persisted_at": p.at}
		return e.codec.AppendEncode(dst, &v)
	}
	dst = e.codec.AppendHeader(dst)
	dst = append(dst, p.body...)
	dst = binary.AppendVarint(dst, i)
	return binary.AppendVarint(dst, p.at.UnixMicro()), nil
}

// embedsAsIs reports whether a persisted schema is laid out as the clean
// record of clean, then the action (an enum) and the time (a long of
// microseconds): the layout persistedEncoder copies clean bodies into.
func embedsAsIs(persistedSchema, clean avro.Schema) bool {
	fields := persistedSchema.(*avro.RecordSchema).Fields()
	if len(fields) != 3 {
		return false
	}
	at, ok := fields[2].Type().(*avro.PrimitiveSchema)
	return fields[0].Name() == "record" && fields[0].Type().Fingerprint() == clean.Fingerprint() &&
		fields[1].Name() == "action" && fields[1].Type().Type() == avro.Enum &&
		fields[2].Name() == "persisted_at" && ok && at.Type() == avro.Long &&
		at.Logical() != nil && at.Logical().Type() == avro.TimestampMicros
}

// bodyOf returns the body of a clean record read as raw, when it can be
// copied into a persisted record as it is.
func (d *dataset) bodyOf(raw []byte) []byte {
	if !d.copyBodies {
		return nil
	}
	body, _ := d.cleanCodec.Body(raw)
	return body
}
