package serde

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/datamill/datamill/schemas"
	"github.com/datamill/datamill/schemas/users"
)

func newRegistry(t testing.TB) (*Registry, *srfake.Registry) {
	t.Helper()
	fake := srfake.New()
	t.Cleanup(fake.Close)
	reg, err := NewRegistry(Config{RegistryURL: fake.URL()})
	if err != nil {
		t.Fatal(err)
	}
	return reg, fake
}

func ptr[T any](v T) *T { return &v }

func sampleClean() users.Clean {
	return users.Clean{
		ID: 42, Age: ptr(int32(31)), Gender: ptr("female"), Country: ptr("FR"), City: ptr("Lyon"),
		Email:        ptr("ada@example.org"),
		SignupDate:   ptr(time.Date(2022, 3, 4, 0, 0, 0, 0, time.UTC)),
		LastLogin:    ptr(time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)),
		MonthlySpend: ptr(big.NewRat(4999, 100)), QualityFlags: []string{},
		EventID: "ev-1", EventTime: time.Date(2024, 1, 2, 3, 4, 5, 6000, time.UTC), ContentHash: "00ff",
	}
}

var ratEqual = cmp.Comparer(func(a, b *big.Rat) bool { return a.Cmp(b) == 0 })

func TestRoundTrip(t *testing.T) {
	reg, _ := newRegistry(t)
	ctx := t.Context()
	clean, err := NewCodec[users.Clean](ctx, reg, "clean.users", schemas.MustSchema("users/clean"))
	if err != nil {
		t.Fatal(err)
	}
	in := sampleClean()
	b, err := clean.Encode(&in)
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != 0 || int(binary.BigEndian.Uint32(b[1:5])) != clean.ID() {
		t.Fatalf("header % x, want magic 0 and id %d", b[:5], clean.ID())
	}
	var out users.Clean
	if err := clean.Decode(b, &out); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, out, ratEqual); diff != "" {
		t.Errorf("round trip (-in +out):\n%s", diff)
	}

	raw, err := NewCodec[users.Raw](ctx, reg, "raw.users", schemas.MustSchema("users/raw"))
	if err != nil {
		t.Fatal(err)
	}
	r := users.Raw{ID: ptr("7"), Age: ptr(" 31 "), MonthlySpend: ptr("€12,50"), EventID: "e", Source: "http", IngestedAt: time.UnixMicro(1700000000000000).UTC()}
	b, err = raw.Encode(&r)
	if err != nil {
		t.Fatal(err)
	}
	var rout users.Raw
	if err := raw.Decode(b, &rout); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, rout); diff != "" {
		t.Errorf("raw round trip (-in +out):\n%s", diff)
	}
}

func TestRegisterIsIdempotent(t *testing.T) {
	reg, _ := newRegistry(t)
	s := schemas.MustSchema("users/raw")
	a, err := reg.Register(t.Context(), Subject("raw.users"), s)
	if err != nil {
		t.Fatal(err)
	}
	b, err := reg.Register(t.Context(), Subject("raw.users"), s)
	if err != nil || a != b {
		t.Fatalf("second Register = %d, %v; want %d, nil", b, err, a)
	}
}

func TestMalformedValues(t *testing.T) {
	reg, _ := newRegistry(t)
	c, err := NewCodec[users.Clean](t.Context(), reg, "clean.users", schemas.MustSchema("users/clean"))
	if err != nil {
		t.Fatal(err)
	}
	good, _ := c.Encode(ptr(sampleClean()))
	unknownID := bytes.Clone(good)
	binary.BigEndian.PutUint32(unknownID[1:5], 9999)
	tests := map[string][]byte{
		"empty":          nil,
		"short":          {0, 0, 0},
		"bad magic":      append([]byte{1}, good[1:]...),
		"unknown id":     unknownID,
		"truncated body": good[:len(good)-3],
		"trailing bytes": append(bytes.Clone(good), 0),
		"garbage body":   append(bytes.Clone(good[:5]), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01),
	}
	for name, b := range tests {
		t.Run(name, func(t *testing.T) {
			var v users.Clean
			if err := c.Decode(b, &v); !errors.Is(err, ErrMalformed) {
				t.Errorf("Decode(% x) = %v, want ErrMalformed", b, err)
			}
		})
	}
}

func TestRegisterRefusesIncompatible(t *testing.T) {
	const v1 = `{"type":"record","name":"U","fields":[{"name":"id","type":"long"},{"name":"email","type":["null","string"],"default":null}]}`
	tests := map[string]string{
		"required field without default": `{"type":"record","name":"U","fields":[{"name":"id","type":"long"},
			{"name":"email","type":["null","string"],"default":null},{"name":"tier","type":"string"}]}`,
		"type change string to int": `{"type":"record","name":"U","fields":[{"name":"id","type":"long"},
			{"name":"email","type":["null","int"],"default":null}]}`,
		"type change long to string": `{"type":"record","name":"U","fields":[{"name":"id","type":"string"},
			{"name":"email","type":["null","string"],"default":null}]}`,
	}
	for name, next := range tests {
		t.Run(name, func(t *testing.T) {
			reg, _ := newRegistry(t)
			if _, err := reg.Register(t.Context(), Subject("evo"), mustParse(t, v1)); err != nil {
				t.Fatal(err)
			}
			_, err := reg.Register(t.Context(), Subject("evo"), mustParse(t, next))
			if !errors.Is(err, schemas.ErrIncompatible) {
				t.Fatalf("Register(%s) = %v, want ErrIncompatible", next, err)
			}
			if !strings.Contains(err.Error(), Subject("evo")) {
				t.Errorf("error %q does not name the subject %s", err, Subject("evo"))
			}
		})
	}
}

func TestCompatibleSchemaEvolves(t *testing.T) {
	reg, _ := newRegistry(t)
	ctx := t.Context()
	type u1 struct {
		ID int64 `avro:"id"`
	}
	type u2 struct {
		ID   int64   `avro:"id"`
		Tier *string `avro:"tier"`
	}
	old, err := NewCodec[u1](ctx, reg, "evo", mustParse(t, `{"type":"record","name":"U","fields":[{"name":"id","type":"long"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	written, err := old.Encode(&u1{ID: 5})
	if err != nil {
		t.Fatal(err)
	}
	v2 := `{"type":"record","name":"U","fields":[{"name":"id","type":"long"},{"name":"tier","type":["null","string"],"default":null}]}`
	next, err := NewCodec[u2](ctx, reg, "evo", mustParse(t, v2))
	if err != nil {
		t.Fatalf("a compatible change was refused: %v", err)
	}
	if next.ID() == old.ID() {
		t.Fatal("the new version got the old id")
	}
	var got u2
	if err := next.Decode(written, &got); err != nil {
		t.Fatalf("the new reader cannot read data written with the old schema: %v", err)
	}
	if diff := cmp.Diff(u2{ID: 5}, got); diff != "" {
		t.Errorf("old data read with the new schema (-want +got):\n%s", diff)
	}
}

// TestRegistryKeepsFullSchema checks that what the registry stores keeps
// docs, defaults and attributes: another client (or the registry's own
// compatibility check) reads defaults from there.
func TestRegistryKeepsFullSchema(t *testing.T) {
	reg, fake := newRegistry(t)
	for _, p := range []string{"users/raw", "users/clean", "users/persisted", "users/scored", "deadletter", "ecosample"} {
		t.Run(p, func(t *testing.T) {
			local := schemas.MustSchema(p)
			id, err := reg.Register(t.Context(), Subject(p), local)
			if err != nil {
				t.Fatal(err)
			}
			cl, err := sr.NewClient(sr.URLs(fake.URL()))
			if err != nil {
				t.Fatal(err)
			}
			stored, err := cl.SchemaByID(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			got, err := schemas.Parse(stored.Schema)
			if err != nil {
				t.Fatalf("stored schema %d does not parse: %v", id, err)
			}
			if diff := cmp.Diff(fullJSON(t, local), fullJSON(t, got)); diff != "" {
				t.Errorf("registry stored %s differently (-local +stored):\n%s", p, diff)
			}
		})
	}
}

func TestRegistryDownIsNotMalformed(t *testing.T) {
	reg, fake := newRegistry(t)
	ctx := t.Context()
	other, err := reg.Register(ctx, "other-value", mustParse(t, `{"type":"record","name":"Clean","namespace":"datamill.users","fields":[{"name":"id","type":"long"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	// A second client, whose cache has never seen the other schema.
	reg2, err := NewRegistry(Config{RegistryURL: fake.URL()})
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCodec[users.Clean](ctx, reg2, "clean.users", schemas.MustSchema("users/clean"))
	if err != nil {
		t.Fatal(err)
	}
	fake.Close()
	b := binary.BigEndian.AppendUint32([]byte{0}, uint32(other))
	b = append(b, 2) // id 1
	var v users.Clean
	err = c.Decode(b, &v)
	if err == nil || errors.Is(err, ErrMalformed) {
		t.Fatalf("Decode(% x) with the registry down = %v, want a transient (not malformed) error", b, err)
	}
	if _, err := reg2.Register(ctx, "another-value", schemas.MustSchema("users/raw")); err == nil || errors.Is(err, schemas.ErrIncompatible) {
		t.Fatalf("Register with the registry down = %v, want a transient error", err)
	}
}

func mustParse(t testing.TB, text string) avro.Schema {
	t.Helper()
	s, err := schemas.Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func fullJSON(t testing.TB, s avro.Schema) string {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func benchCodec(b *testing.B) (*Codec[users.Clean], []byte) {
	reg, _ := newRegistry(b)
	c, err := NewCodec[users.Clean](context.Background(), reg, "clean.users", schemas.MustSchema("users/clean"))
	if err != nil {
		b.Fatal(err)
	}
	enc, err := c.Encode(ptr(sampleClean()))
	if err != nil {
		b.Fatal(err)
	}
	return c, enc
}

func BenchmarkEncodeClean(b *testing.B) {
	c, enc := benchCodec(b)
	v := sampleClean()
	buf := make([]byte, 0, 256)
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = c.AppendEncode(buf[:0], &v); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeClean(b *testing.B) {
	c, enc := benchCodec(b)
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		var v users.Clean
		if err := c.Decode(enc, &v); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeCleanGeneric decodes the same record as the cleaner and
// the loader read theirs: into a map, for any dataset.
func BenchmarkDecodeCleanGeneric(b *testing.B) {
	_, enc := benchCodec(b)
	reg, _ := newRegistry(b)
	c, err := NewCodec[map[string]any](context.Background(), reg, "clean.users", schemas.MustSchema("users/clean"))
	if err != nil {
		b.Fatal(err)
	}
	enc = append(c.header[:], enc[5:]...)
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		var v map[string]any
		if err := c.Decode(enc, &v); err != nil {
			b.Fatal(err)
		}
	}
}

func TestKeysAreAvroStringsUnderTheKeySubject(t *testing.T) {
	reg, _ := newRegistry(t)
	ctx := t.Context()
	keys, err := NewKeyCodec(ctx, reg, "clean.users")
	if err != nil {
		t.Fatal(err)
	}
	b := keys.Append(nil, []byte("42"))
	// Magic byte, schema id, then the Avro string: zigzag length 2, "42".
	if len(b) != 8 || b[0] != 0 || b[5] != 4 || string(b[6:]) != "42" {
		t.Errorf("key 42 encoded as %x", b)
	}
	// Hamba reads it as the registry's string schema.
	_, v, err := reg.DecodeAny(ctx, b)
	if err != nil || v != "42" {
		t.Errorf("DecodeAny = %v (%v), want 42", v, err)
	}
	back, err := keys.Decode(b)
	if err != nil || string(back) != "42" {
		t.Errorf("decoded %q (%v), want 42", back, err)
	}
	for _, bad := range [][]byte{[]byte("42"), b[:7], append(b, 'x')} {
		if _, err := keys.Decode(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("Decode(%x) = %v, want ErrMalformed", bad, err)
		}
	}
	schema, err := reg.cl.SchemaByVersion(ctx, KeySubject("clean.users"), -1)
	if err != nil || schema.Schema.Schema != `"string"` {
		t.Errorf("subject clean.users-key holds %+v (%v), want the string schema", schema, err)
	}
}
