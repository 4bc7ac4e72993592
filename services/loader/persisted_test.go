package main

import (
	"bytes"
	"encoding/json"
	"math/big"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/pkg/testkit"
	"github.com/datamill/datamill/schemas"
	"github.com/datamill/datamill/schemas/users"
	"github.com/datamill/datamill/services/loader/internal/sink"
)

// A clean record written with the schema the persisted schema embeds is
// copied into its persisted record byte for byte, and the result is what
// encoding its values gives; one written with another schema is encoded.
func TestPersistedRecordsCopyTheCleanBodyAsItCame(t *testing.T) {
	reg, d := usersOnRegistry(t)
	ctx := t.Context()
	var err error
	d.copyBodies = embedsAsIs(d.persistedSchema, d.cleanSchema)
	if !d.copyBodies {
		t.Fatal("the built-in persisted schema does not embed the clean one as it is")
	}
	out, err := serde.NewCodec[map[string]any](ctx, reg, "persisted.users", d.persistedSchema)
	if err != nil {
		t.Fatal(err)
	}
	enc := newPersistedEncoder(out)

	typed, err := serde.NewCodec[users.Clean](ctx, reg, "clean.users", schemas.MustSchema("users/clean"))
	if err != nil {
		t.Fatal(err)
	}
	c := clean(7, 3, 41, "FR")
	raw, err := typed.Encode(&c)
	if err != nil {
		t.Fatal(err)
	}
	var v record
	if err := d.Decode(raw, &v); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 6, 1, 12, 0, 0, 123456000, time.UTC)
	body := d.bodyOf(raw)
	if body == nil {
		t.Fatal("a record written with the loader's own clean schema was not copied")
	}
	copied, err := enc.AppendEncode(nil, &persisted{clean: v, body: body, action: sink.Updated, at: at})
	if err != nil {
		t.Fatal(err)
	}
	encoded, err := enc.AppendEncode(nil, &persisted{clean: v, action: sink.Updated, at: at})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(copied, encoded) {
		t.Errorf("copied  %x\nencoded %x", copied, encoded)
	}
	pcodec, err := serde.NewCodec[users.Persisted](ctx, reg, "persisted.users", schemas.MustSchema("users/persisted"))
	if err != nil {
		t.Fatal(err)
	}
	var got users.Persisted
	if err := pcodec.Decode(copied, &got); err != nil {
		t.Fatal(err)
	}
	want := users.Persisted{Record: c, Action: users.LoadActionUpdated, PersistedAt: at}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) }),
		cmp.Comparer(func(a, b *big.Rat) bool { return a == nil && b == nil || a != nil && b != nil && a.Cmp(b) == 0 })); diff != "" {
		t.Errorf("persisted record read back (-want +got):\n%s", diff)
	}

	// Written with a newer clean schema: not the layout the persisted
	// schema embeds.
	newer, err := schemas.Open(testkit.SchemaDir(t, map[string]string{
		"users/clean": testkit.AddField(t, "users/clean", "Clean", `{"name":"tier","type":["null","string"],"default":null}`),
	}))
	if err != nil {
		t.Fatal(err)
	}
	s, err := newer.Schema("users/clean")
	if err != nil {
		t.Fatal(err)
	}
	writer, err := serde.NewCodec[map[string]any](ctx, reg, "clean.users", s)
	if err != nil {
		t.Fatal(err)
	}
	m := values(t, c)
	m["tier"] = "pro"
	b, err := writer.Encode(&m)
	if err != nil {
		t.Fatal(err)
	}
	if d.bodyOf(b) != nil {
		t.Error("a record written with another clean schema was copied")
	}

	// The time in another unit is another layout.
	cleanJSON, err := json.Marshal(d.cleanSchema)
	if err != nil {
		t.Fatal(err)
	}
	for unit, want := range map[string]bool{"timestamp-micros": true, "timestamp-millis": false} {
		p, err := schemas.Parse(`{"type":"record","name":"Persisted","fields":[{"name":"record","type":` + string(cleanJSON) +
			`},{"name":"action","type":{"type":"enum","name":"A","symbols":["INSERTED"]}},{"name":"persisted_at","type":{"type":"long","logicalType":"` + unit + `"}}]}`)
		if err != nil {
			t.Fatal(err)
		}
		if got := embedsAsIs(p, d.cleanSchema); got != want {
			t.Errorf("embedsAsIs with persisted_at in %s = %v, want %v", unit, got, want)
		}
	}
}

// BenchmarkDecodeToRow is the loader's work on one clean user before the
// database: decode into the dataset's struct type, then the table row.
func BenchmarkDecodeToRow(b *testing.B) {
	reg, d := usersOnRegistry(b)
	typed, err := serde.NewCodec[users.Clean](b.Context(), reg, "clean.users", schemas.MustSchema("users/clean"))
	if err != nil {
		b.Fatal(err)
	}
	c := clean(7, 3, 41, "FR")
	raw, err := typed.Encode(&c)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		var v record
		if err := d.Decode(raw, &v); err != nil {
			b.Fatal(err)
		}
		_ = d.row(v)
	}
}

// usersOnRegistry is a registry for the test and the users dataset, its
// clean codec registered there.
func usersOnRegistry(tb testing.TB) (*serde.Registry, *dataset) {
	tb.Helper()
	fake := srfake.New()
	tb.Cleanup(fake.Close)
	reg, err := serde.NewRegistry(serde.Config{RegistryURL: fake.URL()})
	if err != nil {
		tb.Fatal(err)
	}
	d, err := newDataset(schemas.BuiltIn(), "users")
	if err != nil {
		tb.Fatal(err)
	}
	if d.cleanCodec, err = serde.NewCodec[any](tb.Context(), reg, "clean.users", d.cleanSchema); err != nil {
		tb.Fatal(err)
	}
	return reg, d
}
