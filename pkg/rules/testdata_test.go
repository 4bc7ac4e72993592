package rules

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The parsers' table tests read their cases from testdata/*.tsv through
// readTSV.

// tsvCase is a line of a testdata table: its number and its fields.
type tsvCase struct {
	line   int
	fields []string
}

// readTSV reads testdata/name: one case a line, its tab-separated fields
// as many as one of cols, their escapes decoded; blank lines and lines
// starting with '#' are skipped.
func readTSV(t testing.TB, name string, cols ...int) []tsvCase {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cases []tsvCase
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Split(line, "\t")
		if !slices.Contains(cols, len(fields)) {
			t.Fatalf("%s:%d: %d fields, want %v", name, n, len(fields), cols)
		}
		for i, fl := range fields {
			if fields[i], err = unescapeTSV(fl); err != nil {
				t.Fatalf("%s:%d: field %d: %v", name, n, i+1, err)
			}
		}
		cases = append(cases, tsvCase{line: n, fields: fields})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return cases
}

// unescapeTSV decodes the escapes of a testdata field: \t \n \r \\,
// \xHH (a byte, which may be invalid UTF-8), \uHHHH and \UHHHHHHHH.
func unescapeTSV(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch c := s[i]; c {
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case '\\':
			b.WriteByte('\\')
		case 'x', 'u', 'U':
			n := map[byte]int{'x': 2, 'u': 4, 'U': 8}[c]
			if i+n >= len(s) {
				return "", strconv.ErrSyntax
			}
			v, err := strconv.ParseUint(s[i+1:i+1+n], 16, 32)
			if err != nil {
				return "", err
			}
			if c == 'x' {
				b.WriteByte(byte(v))
			} else {
				b.WriteRune(rune(v))
			}
			i += n
		default:
			b.WriteByte('\\')
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}
