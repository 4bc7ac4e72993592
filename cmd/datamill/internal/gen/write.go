package gen

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
)

// Source is a generator Write can write: the users' Generator or the
// JobsGenerator.
type Source interface {
	// Header returns the column names.
	Header() []string
	// NextValues returns the next row's values, one per column (nil when
	// missing), or false at the end.
	NextValues() ([]*string, bool)
}

// Write writes every row of g to w as csv (with a header row), ndjson or
// json (one array), calling progress now and then with the rows written.
// Missing values are empty CSV cells and JSON nulls. JSON cannot carry
// invalid UTF-8: encoding/json writes U+FFFD instead, so that dirt is only
// exact in CSV.
func Write(w io.Writer, g Source, format string, progress func(rows int)) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	var err error
	switch format {
	case "csv":
		err = writeCSV(bw, g, progress)
	case "ndjson", "json":
		err = writeJSON(bw, g, format == "json", progress)
	default:
		return fmt.Errorf("format %q: want csv, ndjson or json", format)
	}
	if err != nil {
		return err
	}
	return bw.Flush()
}

func writeCSV(w io.Writer, g Source, progress func(int)) error {
	cw := csv.NewWriter(w)
	columns := g.Header()
	if err := cw.Write(columns); err != nil {
		return err
	}
	rec := make([]string, len(columns))
	for n := 1; ; n++ {
		values, ok := g.NextValues()
		if !ok {
			break
		}
		for i, v := range values {
			rec[i] = ""
			if v != nil {
				rec[i] = *v
			}
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
		if n%10000 == 0 && progress != nil {
			progress(n)
		}
	}
	cw.Flush()
	return cw.Error()
}

func writeJSON(w *bufio.Writer, g Source, array bool, progress func(int)) error {
	if array {
		_, _ = w.WriteString("[\n") // bufio.Writer keeps its first error: Write's Flush returns it
	}
	columns := g.Header()
	obj := make(map[string]*string, len(columns))
	for n := 1; ; n++ {
		values, ok := g.NextValues()
		if !ok {
			break
		}
		if array && n > 1 {
			_, _ = w.WriteString(",\n")
		}
		for i, c := range columns {
			obj[c] = values[i]
		}
		b, err := json.Marshal(obj)
		if err != nil {
			return err
		}
		_, _ = w.Write(b)
		if !array {
			_ = w.WriteByte('\n')
		}
		if n%10000 == 0 && progress != nil {
			progress(n)
		}
	}
	if array {
		_, _ = w.WriteString("\n]\n")
	}
	return nil
}
