package httpingest

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseTokens(t *testing.T) {
	crm := sha256.Sum256([]byte("crm-token"))
	shop := sha256.Sum256([]byte("shop-token"))
	tests := map[string]struct {
		file    string
		want    []Producer
		wantErr string
	}{
		"two producers, comments and blank lines": {
			file: "# ingest producers\n\ncrm " + hex.EncodeToString(crm[:]) + "\n  # shop\nshop\t" + hex.EncodeToString(shop[:]) + "  \n",
			want: []Producer{{ID: "crm", Hash: crm}, {ID: "shop", Hash: shop}},
		},
		"empty":           {file: "", want: nil},
		"one field":       {file: "# x\ncrm\n", wantErr: "tokens:2: want `<token id> <sha256 hex of the token>`, got 1 fields"},
		"three fields":    {file: "crm " + hex.EncodeToString(crm[:]) + " x\n", wantErr: "tokens:1: want"},
		"not hex":         {file: "crm " + strings.Repeat("z", 64) + "\n", wantErr: `tokens:1: token "crm": the hash is not 64 hex digits`},
		"short hash":      {file: "crm abcd\n", wantErr: `tokens:1: token "crm": the hash is not 64 hex digits`},
		"the token whole": {file: "crm crm-token\n", wantErr: `tokens:1: token "crm": the hash is not 64 hex digits`},
		"id twice": {
			file:    "crm " + hex.EncodeToString(crm[:]) + "\n\ncrm " + hex.EncodeToString(shop[:]) + "\n",
			wantErr: `tokens:3: token id "crm" given again (first on line 1)`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseTokens(strings.NewReader(tc.file), "tokens")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseTokens(%q) = %v, want an error with %q", tc.file, err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "crm-token") {
					t.Errorf("the error %q shows the token", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseTokens(%q): %v", tc.file, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParseTokens(%q) (-want +got):\n%s", tc.file, diff)
			}
		})
	}
}

func TestProducersJoinsTheWholeToken(t *testing.T) {
	crm := Producer{ID: "crm", Hash: sha256.Sum256([]byte("crm-token"))}
	got, err := Producers([]Producer{crm}, "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	want := []Producer{crm, {ID: DefaultProducer, Hash: sha256.Sum256([]byte("s3cret"))}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Producers (-want +got):\n%s", diff)
	}
	if _, err := Producers([]Producer{{ID: DefaultProducer}}, "s3cret"); err == nil || !strings.Contains(err.Error(), `"default" is given twice`) {
		t.Errorf("a tokens file with the id default and a whole token: %v, want an error naming it", err)
	}
}
