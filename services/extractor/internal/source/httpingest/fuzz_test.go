package httpingest

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/datamill/datamill/pkg/ingest"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/schemas"
	"github.com/datamill/datamill/schemas/users"
	"github.com/datamill/datamill/services/extractor/internal/publish"
)

// FuzzParseBody feeds the ingest endpoint's body parser arbitrary bytes: it
// never panics, a body is taken whole or refused whole with an error
// naming the record, and every record it takes decodes as a raw user.
func FuzzParseBody(f *testing.F) {
	for _, s := range []string{
		`{"id":"1","age":"31","country":"FR"}`,
		`[{"id":"1","age":"31"},{"id":2,"email":"a@b.org"}]`,
		"{\"id\":\"1\"}\n\n{\"id\":\"2\",\"city\":null}\n",
		`{"id":"1","shoe_size":44}`,
		`[{"id":"1"}, 7]`,
		`[{"id":"1"}`,
		`{"id":{"a":1}}`,
		"",
		"  \n",
		`[]`,
		`{"id":"\xff"}`,
		"{\"id\":\"1\"}\n{\"age\":\"31\"}\n",
	} {
		f.Add([]byte(s))
	}
	fake := srfake.New()
	f.Cleanup(fake.Close)
	reg, err := serde.NewRegistry(serde.Config{RegistryURL: fake.URL()})
	if err != nil {
		f.Fatal(err)
	}
	src, err := publish.NewDataset(f.Context(), reg, "users", schemas.MustSchema("users/raw"), "id")
	if err != nil {
		f.Fatal(err)
	}
	decoder, err := serde.NewCodec[users.Raw](f.Context(), reg, src.Topic(), schemas.MustSchema("users/raw"))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		recs, err := parse(src, body)
		if err != nil {
			var e *ingest.Error
			var keyless *keylessError
			if len(recs) > 0 {
				t.Fatalf("parse(%q) = %d records and %v", body, len(recs), err)
			}
			if !errors.As(err, &e) && !errors.As(err, &keyless) && len(bytes.TrimSpace(body)) > 0 && !strings.Contains(err.Error(), "no records") {
				t.Fatalf("parse(%q) = %v, want an *ingest.Error naming the record", body, err)
			}
			return
		}
		if len(recs) == 0 {
			t.Fatalf("parse(%q) took no records and gave no error", body)
		}
		for _, r := range recs {
			var u users.Raw
			if err := decoder.Decode(r.Value, &u); err != nil {
				t.Fatalf("parse(%q): a record does not decode: %v", body, err)
			}
			if u.ID == nil || strings.TrimSpace(*u.ID) == "" || r.Key == nil {
				t.Fatalf("parse(%q): took a record without a key: %+v", body, u)
			}
			if r.Topic != src.Topic() {
				t.Fatalf("parse(%q): record for %s", body, r.Topic)
			}
		}
	})
}
