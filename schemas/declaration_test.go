package schemas

import (
	"io/fs"
	"strings"
	"testing"
)

// FuzzParseDeclaration feeds dataset.yaml texts to the parser: it never
// panics, every error names the file, and a declaration it accepts is one a
// service can follow.
func FuzzParseDeclaration(f *testing.F) {
	users, err := fs.ReadFile(Files, "avro/users/dataset.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(users)
	f.Add([]byte(ordersDecl))
	f.Add([]byte("sources: [{kind: files, path: /x}]\nviews: [{name: v, sql: select 1}]\n"))
	f.Add([]byte("model: {kind: ridge, label: {column: amount}, features: [{column: gift, kind: boolean}]}\n"))
	clean, err := Parse(ordersClean)
	if err != nil {
		f.Fatal(err)
	}
	fields := map[string]bool{}
	for _, c := range []string{"order_no", "amount", "channel", "ordered_on", "gift", "note", "returned", "quality_flags", "event_id", "source", "event_time", "content_hash"} {
		fields[c] = true
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		d, err := ParseDeclaration("orders/dataset.yaml", "orders", text, clean)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "orders/dataset.yaml: ") {
				t.Fatalf("error %q does not start with the file", err)
			}
			return
		}
		for i, s := range d.Sources {
			if s.Kind == "" {
				t.Errorf("source %d has no kind", i)
			}
		}
		for _, v := range d.Views {
			if v.Name == "" || strings.TrimSpace(v.SQL) == "" {
				t.Errorf("view %+v accepted", v)
			}
		}
		m := d.Model
		if m == nil {
			return
		}
		if m.Kind != Logistic && m.Kind != Ridge || m.Name == "" || !fields[m.Label.Column] || len(m.Features) == 0 {
			t.Errorf("model %+v accepted", m)
		}
		names := map[string]bool{}
		for _, ft := range m.Features {
			if !fields[ft.Column] || ft.Name == "" || names[ft.Name] || ft.Column == m.Label.Column {
				t.Errorf("feature %+v accepted", ft)
			}
			names[ft.Name] = true
		}
		if m.Train.TestShare <= 0 || m.Train.TestShare >= 1 {
			t.Errorf("test share %g accepted", m.Train.TestShare)
		}
	})
}
