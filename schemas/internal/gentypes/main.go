// Command gentypes is avrogen over the schemas of the catalog rather than
// over files: it takes schema paths ("users/raw", "users/persisted"), so
// that it can generate the Go types of a dataset's derived schemas, which
// have no file. Its flags are avrogen's that schemas.go uses.
//
//	go run ./internal/gentypes -pkg users -o users/users_gen.go -encoders users/raw users/clean
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/hamba/avro/v2/gen"
	"golang.org/x/tools/imports"

	"github.com/datamill/datamill/schemas"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "gentypes:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("gentypes", flag.ContinueOnError)
	pkg := fs.String("pkg", "", "package of the generated code")
	out := fs.String("o", "", "file to write")
	encoders := fs.Bool("encoders", false, "generate encoders")
	full := fs.Bool("fullschema", false, "use the full schema in the encoders")
	strict := fs.Bool("strict-types", false, "use strict type sizes")
	enums := fs.Bool("enums", false, "generate Go enums for Avro enums")
	tagsFlag := fs.String("tags", "", "additional field tags, name:style[,...]")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *pkg == "" || *out == "" || fs.NArg() == 0 {
		return errors.New("usage: gentypes -pkg name -o file [flags] schema-path")
	}
	tags := map[string]gen.TagStyle{}
	for _, t := range strings.Split(*tagsFlag, ",") {
		if t == "" {
			continue
		}
		name, style, _ := strings.Cut(t, ":")
		tags[name] = gen.TagStyle(style)
	}
	g := gen.NewGenerator(*pkg, tags, gen.WithEncoders(*encoders), gen.WithFullSchema(*full),
		gen.WithStrictTypes(*strict), gen.WithEnums(*enums))
	for _, p := range fs.Args() {
		s, err := schemas.Schema(p)
		if err != nil {
			return err
		}
		g.Parse(s)
	}
	var buf bytes.Buffer
	if err := g.Write(&buf); err != nil {
		return fmt.Errorf("generate %s: %w", *out, err)
	}
	formatted, err := imports.Process("", buf.Bytes(), nil)
	if err != nil {
		return fmt.Errorf("format %s: %w", *out, err)
	}
	return os.WriteFile(*out, formatted, 0o644) // #nosec G306 -- a Go source file of the repository, readable like the others
}
