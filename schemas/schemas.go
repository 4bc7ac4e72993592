// Package schemas holds datamill's Avro contracts: the .avsc files under
// avro/ (the single source of truth for every record on every topic),
// embedded in the binary, and the Go types generated from them.
//
// Types of the envelopes every dataset shares (DeadLetter, EcoSample) live
// here; each dataset's records live in a package of their own (users).
// Released versions of every schema are kept under avro/released/; each
// current schema must stay BACKWARD compatible with all of them, which
// CheckBackward decides and the tests enforce.
package schemas

//go:generate go tool avrogen -pkg schemas -o envelopes_gen.go -encoders -fullschema -strict-types -tags json:snake avro/deadletter.avsc avro/ecosample.avsc
//go:generate go tool avrogen -pkg users -o users/users_gen.go -encoders -fullschema -strict-types -enums -tags json:snake avro/users/raw.avsc avro/users/clean.avsc avro/users/persisted.avsc avro/users/scored.avsc

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
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

// Schema returns the parsed schema at path, relative to avro/ and without
// the .avsc extension: "users/raw", "deadletter", "ecosample".
func Schema(path string) (avro.Schema, error) {
	if s, ok := parsed.Load(path); ok {
		return s.(avro.Schema), nil
	}
	b, err := fs.ReadFile(Files, "avro/"+path+".avsc")
	if err != nil {
		return nil, fmt.Errorf("schema %s: %w", path, err)
	}
	s, err := Parse(string(b))
	if err != nil {
		return nil, fmt.Errorf("schema %s: %w", path, err)
	}
	parsed.Store(path, s)
	return s, nil
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
// says what broke.
func CheckBackward(next avro.Schema, prev ...avro.Schema) error {
	compat := avro.NewSchemaCompatibility()
	var errs []error
	for i, p := range prev {
		if err := compat.Compatible(next, p); err != nil {
			errs = append(errs, fmt.Errorf("%w: cannot read data written with previous version %d: %w", ErrIncompatible, i+1, err))
		}
	}
	return errors.Join(errs...)
}

// KeyAttribute names, on a dataset's clean schema, the field whose value
// keys the dataset's records on every topic ("datamill.key": "id").
const KeyAttribute = "datamill.key"

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
