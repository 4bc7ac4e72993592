package serde

import (
	"bytes"
	"context"
	"encoding/binary"
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

func TestIncompatibleSchemaRefusedCompatibleEvolves(t *testing.T) {
	reg, _ := newRegistry(t)
	ctx := t.Context()
	v1 := avro.MustParse(`{"type":"record","name":"U","fields":[{"name":"id","type":"long"}]}`)
	old, err := NewCodec[struct {
		ID int64 `avro:"id"`
	}](ctx, reg, "evo", v1)
	if err != nil {
		t.Fatal(err)
	}
	written, err := old.Encode(&struct {
		ID int64 `avro:"id"`
	}{ID: 5})
	if err != nil {
		t.Fatal(err)
	}

	bad, _ := schemas.Parse(`{"type":"record","name":"U","fields":[{"name":"id","type":"long"},{"name":"tier","type":"string"}]}`)
	if _, err := reg.Register(ctx, Subject("evo"), bad); !errors.Is(err, schemas.ErrIncompatible) {
		t.Fatalf("Register(required field without default) = %v, want ErrIncompatible", err)
	}

	v2, _ := schemas.Parse(`{"type":"record","name":"U","fields":[{"name":"id","type":"long"},{"name":"tier","type":["null","string"],"default":null}]}`)
	type u2 struct {
		ID   int64   `avro:"id"`
		Tier *string `avro:"tier"`
	}
	next, err := NewCodec[u2](ctx, reg, "evo", v2)
	if err != nil {
		t.Fatalf("a compatible change was refused: %v", err)
	}
	if next.ID() == old.ID() {
		t.Fatal("the new version got the old id")
	}
	var got u2
	if err := next.Decode(written, &got); err != nil {
		t.Fatalf("the new reader cannot read old data: %v", err)
	}
	if got.ID != 5 || got.Tier != nil {
		t.Errorf("decoded %+v, want id 5 and the default tier", got)
	}
}

func TestRegistryDownIsNotMalformed(t *testing.T) {
	reg, fake := newRegistry(t)
	c, err := NewCodec[users.Clean](t.Context(), reg, "clean.users", schemas.MustSchema("users/clean"))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := schemas.Parse(`{"type":"record","name":"Clean","namespace":"datamill.users","fields":[{"name":"id","type":"long"}]}`)
	id, err := reg.Register(t.Context(), "other-value", other)
	if err != nil {
		t.Fatal(err)
	}
	reg2, _ := NewRegistry(Config{RegistryURL: fake.URL()}) // empty cache
	c2 := &Codec[users.Clean]{reg: reg2, schema: c.schema}
	fake.Close()
	b := []byte{0, 0, 0, 0, byte(id), 2}
	var v users.Clean
	err = c2.Decode(b, &v)
	if err == nil || errors.Is(err, ErrMalformed) {
		t.Fatalf("Decode with the registry down = %v, want a transient (not malformed) error", err)
	}
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

func TestRegisteredSchemaKeepsDefaults(t *testing.T) {
	reg, fake := newRegistry(t)
	if _, err := reg.Register(t.Context(), "raw.users-value", schemas.MustSchema("users/raw")); err != nil {
		t.Fatal(err)
	}
	cl, err := sr.NewClient(sr.URLs(fake.URL()))
	if err != nil {
		t.Fatal(err)
	}
	got, err := cl.SchemaByVersion(t.Context(), "raw.users-value", -1)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got.Schema.Schema, `"default":null`) {
		t.Errorf("the registered schema lost its defaults: %s", got.Schema.Schema)
	}
}
