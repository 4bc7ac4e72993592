// Package schemas holds datamill's Avro contracts: the .avsc files under
// avro/ (the single source of truth for every record on every topic),
// embedded in the binary, and the Go types generated from them.
//
// A dataset is a folder: the built-in ones under avro/<dataset>/, a user's
// own under the directory DATASETS_DIR names. The folder holds raw.avsc (the
// record as its source gave it), clean.avsc (typed, with the cleaning rules
// in each field's datamill.clean and the key in the record's datamill.key)
// and dataset.yaml (its sources, model and views: a Declaration). Its
// persisted and scored schemas are derived from clean.avsc by PersistedOf
// and ScoredOf, never written by hand. A Catalog answers Dataset(name) with
// all of it.
//
// Types of the envelopes every dataset shares (DeadLetter, EcoSample) live
// here; the users dataset's records have generated types of their own
// (package users), made from its derived schemas by internal/gentypes.
// Released versions of every schema, derived ones included, are kept under
// avro/released/; each current schema must stay BACKWARD compatible with
// all of them, which CheckBackward decides and the tests enforce.
package schemas

//go:generate go tool avrogen -pkg schemas -o envelopes_gen.go -encoders -fullschema -strict-types -tags json:snake avro/deadletter.avsc avro/ecosample.avsc
//go:generate go run ./internal/gentypes -pkg users -o users/users_gen.go -encoders -fullschema -strict-types -enums -tags json:snake users/raw users/clean users/persisted users/scored

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"

	"github.com/hamba/avro/v2"
)

// Files holds the .avsc files, under avro/.
//
//go:embed avro
var Files embed.FS

// ErrIncompatible reports a schema that cannot read data written with a
// previous version of itself.
var ErrIncompatible = errors.New("schema is not backward compatible")

var parsed sync.Map // path → avro.Schema

// Schema returns the parsed built-in schema at path, relative to avro/ and
// without the .avsc extension: "users/raw", "deadletter", "ecosample". A
// dataset's "<dataset>/persisted" and "<dataset>/scored" are derived from
// its clean schema by PersistedOf and ScoredOf (with the model its
// dataset.yaml declares).
func Schema(path string) (avro.Schema, error) {
	if s, ok := parsed.Load(path); ok {
		return s.(avro.Schema), nil
	}
	var s avro.Schema
	if ds, kind, ok := strings.Cut(path, "/"); ok && (kind == "persisted" || kind == "scored") {
		clean, err := Schema(ds + "/clean")
		if err != nil {
			return nil, fmt.Errorf("schema %s: %w", path, err)
		}
		if kind == "persisted" {
			s, err = PersistedOf(clean)
		} else {
			s, err = builtInScored(ds, clean)
		}
		if err != nil {
			return nil, fmt.Errorf("schema %s: %w", path, err)
		}
	} else {
		b, err := fs.ReadFile(Files, "avro/"+path+".avsc")
		if err != nil {
			return nil, fmt.Errorf("schema %s: %w", path, err)
		}
		if s, err = Parse(string(b)); err != nil {
			return nil, fmt.Errorf("schema %s: %w", path, err)
		}
	}
	parsed.Store(path, s)
	return s, nil
}

// builtInScored derives the scored schema of the built-in dataset ds from
// its clean schema and the model of its built-in dataset.yaml, if any.
func builtInScored(ds string, clean avro.Schema) (avro.Schema, error) {
	name := "avro/" + ds + "/" + DeclarationFile
	text, err := fs.ReadFile(Files, name)
	if errors.Is(err, fs.ErrNotExist) {
		return ScoredOf(clean, nil)
	}
	if err != nil {
		return nil, err
	}
	decl, err := ParseDeclaration(builtInPrefix+name, ds, text, clean)
	if err != nil {
		return nil, err
	}
	return ScoredOf(clean, decl.Model)
}

// MustSchema is Schema for schemas known to exist; it panics otherwise.
func MustSchema(path string) avro.Schema {
	s, err := Schema(path)
	if err != nil {
		panic(err)
	}
	return s
}

// Parse parses one schema on its own, so that the same named types in
// different files or versions never clash in a shared cache.
func Parse(text string) (avro.Schema, error) {
	return avro.ParseWithCache(text, "", &avro.SchemaCache{})
}

// CheckBackward returns nil when data written with every schema in prev can
// be read with next, and otherwise an error wrapping ErrIncompatible that
// names the fields that broke, e.g. "field tier: added without a default".
func CheckBackward(next avro.Schema, prev ...avro.Schema) error {
	compat := avro.NewSchemaCompatibility()
	var errs []error
	for i, p := range prev {
		err := compat.Compatible(next, p)
		if err == nil {
			continue
		}
		what := err.Error()
		if broken := brokenFields(compat, next, p, ""); len(broken) > 0 {
			what = strings.Join(broken, "; ")
		}
		errs = append(errs, fmt.Errorf("%w: %s cannot read data written with the previous schema (%d of %d): %s",
			ErrIncompatible, typeName(next), i+1, len(prev), what))
	}
	return errors.Join(errs...)
}

// brokenFields explains why reader, a record, cannot read writer's data,
// field by field, recursing into records nested directly in fields. It
// returns nothing when both are not records.
func brokenFields(compat *avro.SchemaCompatibility, reader, writer avro.Schema, prefix string) []string {
	r, ok := reader.(*avro.RecordSchema)
	if !ok {
		return nil
	}
	w, ok := writer.(*avro.RecordSchema)
	if !ok {
		return nil
	}
	written := make(map[string]*avro.Field, len(w.Fields()))
	for _, f := range w.Fields() {
		written[f.Name()] = f
	}
	var broken []string
	for _, f := range r.Fields() {
		name := prefix + f.Name()
		wf := written[f.Name()]
		for _, alias := range f.Aliases() {
			if wf == nil {
				wf = written[alias]
			}
		}
		switch {
		case wf == nil && !f.HasDefault():
			broken = append(broken, fmt.Sprintf("field %s: added without a default", name))
		case wf == nil:
		default:
			if err := compat.Compatible(f.Type(), wf.Type()); err != nil {
				if nested := brokenFields(compat, f.Type(), wf.Type(), name+"."); len(nested) > 0 {
					broken = append(broken, nested...)
					continue
				}
				broken = append(broken, fmt.Sprintf("field %s: %s cannot read %s", name, typeName(f.Type()), typeName(wf.Type())))
			}
		}
	}
	return broken
}

// typeName names a schema in messages: "string", "datamill.users.Clean",
// "union[null,int]", "int(date)".
func typeName(s avro.Schema) string {
	switch t := s.(type) {
	case avro.NamedSchema:
		return t.FullName()
	case *avro.UnionSchema:
		names := make([]string, len(t.Types()))
		for i, u := range t.Types() {
			names[i] = typeName(u)
		}
		return "union[" + strings.Join(names, ",") + "]"
	case avro.LogicalTypeSchema:
		if l := t.Logical(); l != nil {
			return string(s.Type()) + "(" + string(l.Type()) + ")"
		}
	}
	return string(s.Type())
}

// NonNull returns the types a field of type s holds besides null: the
// branches of a union that are not null, or s itself when it is no union.
// A field that may be null is a union of null and one other type.
func NonNull(s avro.Schema) []avro.Schema {
	u, ok := s.(*avro.UnionSchema)
	if !ok {
		return []avro.Schema{s}
	}
	var types []avro.Schema
	for _, t := range u.Types() {
		if t.Type() != avro.Null {
			types = append(types, t)
		}
	}
	return types
}

// KeyAttribute names, on a dataset's clean schema, the field whose value
// keys the dataset's records on every topic ("datamill.key": "id").
const KeyAttribute = "datamill.key"

// The lineage fields every clean record carries after its dataset's own
// fields: what the cleaner keeps of the raw event it cleaned.
const (
	// FieldEventID is the raw event's id.
	FieldEventID = "event_id"
	// FieldSource is where the raw event came from.
	FieldSource = "source"
	// FieldEventTime is when the raw event was ingested.
	FieldEventTime = "event_time"
	// FieldContentHash is the hex SHA-256 of the clean content.
	FieldContentHash = "content_hash"
)

// KeyField returns the key field a clean schema declares.
func KeyField(clean avro.Schema) (string, error) {
	rec, ok := clean.(*avro.RecordSchema)
	if !ok {
		return "", errors.New("a clean schema must be a record")
	}
	key, _ := rec.Prop(KeyAttribute).(string)
	if key == "" {
		return "", fmt.Errorf("clean schema %s declares no key field (%s)", rec.FullName(), KeyAttribute)
	}
	return key, nil
}
