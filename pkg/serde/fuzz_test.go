package serde

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/big"
	"runtime"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hamba/avro/v2"

	"github.com/datamill/datamill/schemas"
	"github.com/datamill/datamill/schemas/users"
)

// bounded is a schema with what a length prefix or a width can abuse.
type bounded struct {
	Xs  []string         `avro:"xs"`
	M   map[string]int64 `avro:"m"`
	Amt *big.Rat         `avro:"amt"`
}

var boundedSchema = avro.MustParse(`{"type": "record", "name": "bounded", "fields": [
	{"name": "xs", "type": {"type": "array", "items": "string"}},
	{"name": "m", "type": {"type": "map", "values": "long"}},
	{"name": "amt", "type": {"type": "bytes", "logicalType": "decimal", "precision": 4, "scale": 2}}]}`)

func body(c interface{ ID() int }, parts ...[]byte) []byte {
	b := []byte{0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], uint32(c.ID()))
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func long(n int64) []byte { return binary.AppendVarint(nil, n) }

// Length prefixes and widths the schema cannot hold are malformed, before
// anything is allocated for them.
func TestMalformedCountsAndWidths(t *testing.T) {
	reg, _ := newRegistry(t)
	c, err := NewCodec[bounded](t.Context(), reg, "bounded", boundedSchema)
	if err != nil {
		t.Fatal(err)
	}
	amt := func(unscaled int64) []byte {
		b := big.NewInt(unscaled).Bytes()
		if unscaled < 0 {
			b = []byte{byte(unscaled)} // one byte, two's complement
		}
		return append(long(int64(len(b))), b...)
	}
	ok := body(c, long(1), long(1), []byte("a"), long(0), long(0), amt(9999))
	var v bounded
	if err := c.Decode(ok, &v); err != nil || v.Amt.Cmp(big.NewRat(9999, 100)) != 0 || len(v.Xs) != 1 {
		t.Fatalf("Decode(% x) = %+v, %v", ok, v, err)
	}
	if err := c.Decode(body(c, long(0), long(0), amt(-100)), &v); err != nil || v.Amt.Cmp(big.NewRat(-1, 1)) != 0 {
		t.Fatalf("negative decimal: %v, %v", v.Amt, err)
	}
	// Sign extension to 9 bytes is still -1.00.
	if err := c.Decode(body(c, long(0), long(0), long(9), bytes.Repeat([]byte{0xff}, 8), []byte{0x9c}), &v); err != nil || v.Amt.Cmp(big.NewRat(-1, 1)) != 0 {
		t.Fatalf("sign-extended decimal: %v, %v", v.Amt, err)
	}
	for name, b := range map[string][]byte{
		"array of 2^28 items":         body(c, long(1<<28), long(0), long(0), amt(1)),
		"array of 2^20+1 in blocks":   body(c, long(1<<20), long(1), []byte("a"), long(0), long(0), amt(1)),
		"negative block count at min": body(c, long(-1<<63)),
		"map of 2^40 entries":         body(c, long(0), long(1<<40), long(0), amt(1)),
		"decimal wider than 4":        body(c, long(0), long(0), amt(10000)),
		"negative decimal too wide":   body(c, long(0), long(0), long(2), []byte{0xd8, 0xf0}), // -10000
	} {
		t.Run(name, func(t *testing.T) {
			var v bounded
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			err := c.Decode(b, &v)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("Decode(% x) = %v, want ErrMalformed", b, err)
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
				t.Errorf("Decode(% x) allocated %d bytes", b, n)
			}
			if _, _, err := reg.DecodeAny(t.Context(), b); !errors.Is(err, ErrMalformed) {
				t.Errorf("DecodeAny(% x) = %v, want ErrMalformed", b, err)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	reg, _ := newRegistry(f)
	clean, err := NewCodec[users.Clean](f.Context(), reg, "clean.users", schemas.MustSchema("users/clean"))
	if err != nil {
		f.Fatal(err)
	}
	raw, err := NewCodec[users.Raw](f.Context(), reg, "raw.users", schemas.MustSchema("users/raw"))
	if err != nil {
		f.Fatal(err)
	}
	bc, err := NewCodec[bounded](f.Context(), reg, "bounded", boundedSchema)
	if err != nil {
		f.Fatal(err)
	}
	in := sampleClean()
	good, _ := clean.Encode(&in)
	in.QualityFlags = []string{"age:out_of_range", "email:malformed_email"}
	in.MonthlySpend = ptr(big.NewRat(-99999999999, 100))
	flagged, _ := clean.Encode(&in)
	r, _ := raw.Encode(&users.Raw{ID: ptr("7"), Age: ptr(" 31 "), MonthlySpend: ptr("€12,50"), EventID: "e", Source: "http", IngestedAt: time.UnixMicro(1700000000000000).UTC()})
	for _, b := range [][]byte{
		good, flagged, r, nil,
		{0, 0, 0},
		append([]byte{1}, good[1:]...), good[:len(good)-3], append(bytes.Clone(good), 0),
		body(bc, long(1<<28)), body(bc, long(0), long(0), long(2), []byte{0x27, 0x10}),
		body(bc, long(-2), long(4), []byte{2, 'a', 2, 'b'}, long(0), long(1), []byte{2, 'k', 4}, long(0), long(1), []byte{1}),
	} {
		f.Add(b)
	}
	ids := []int{clean.ID(), raw.ID(), bc.ID()}
	f.Fuzz(func(t *testing.T, b []byte) {
		// Ids the registry lacks are a unit test's (TestMalformedValues):
		// here every id is one of the three schemas, so that the fuzzer
		// spends its time on bodies, not on registry round trips.
		if len(b) >= 5 && int(binary.BigEndian.Uint32(b[1:5])) > ids[2] {
			b = bytes.Clone(b)
			binary.BigEndian.PutUint32(b[1:5], uint32(ids[int(b[4])%len(ids)]))
		}
		var v users.Clean
		err := clean.Decode(b, &v)
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("Decode(% x) = %v, want nil or ErrMalformed", b, err)
		}
		if err == nil {
			// What decodes encodes again, to the same value.
			again, err := clean.Encode(&v)
			if err != nil {
				t.Fatalf("Decode(% x) = %+v, which does not encode: %v", b, v, err)
			}
			var w users.Clean
			if err := clean.Decode(again, &w); err != nil {
				t.Fatalf("re-encoded % x does not decode: %v", again, err)
			}
			if diff := cmp.Diff(v, w, ratEqual); diff != "" {
				t.Fatalf("Decode(% x) round trip (-first +second):\n%s", b, diff)
			}
		}
		var rv users.Raw
		if err := raw.Decode(b, &rv); err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("Decode raw(% x) = %v, want nil or ErrMalformed", b, err)
		}
		var bv bounded
		if err := bc.Decode(b, &bv); err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("Decode bounded(% x) = %v, want nil or ErrMalformed", b, err)
		}
		if _, _, err := reg.DecodeAny(t.Context(), b); err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("DecodeAny(% x) = %v, want nil or ErrMalformed", b, err)
		}
	})
}
