package gen

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
)

// Write writes every row of g to w as csv (with a header row), ndjson or
// json (one array), calling progress now and then with the rows written.
// Missing values are empty CSV cells and JSON nulls. JSON cannot carry
// invalid UTF-8: encoding/json writes U+FFFD instead, so that dirt is only
// exact in CSV.
func Write(w io.Writer, g *Generator, format string, progress func(rows int)) error {
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

func writeCSV(w io.Writer, g *Generator, progress func(int)) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(Columns); err != nil {
		return err
	}
	rec := make([]string, len(Columns))
	for n := 1; ; n++ {
		row, ok := g.Next()
		if !ok {
			break
		}
		for i, v := range row.Values {
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

func writeJSON(w *bufio.Writer, g *Generator, array bool, progress func(int)) error {
	if array {
		w.WriteString("[\n")
	}
	obj := make(map[string]*string, len(Columns))
	for n := 1; ; n++ {
		row, ok := g.Next()
		if !ok {
			break
		}
		if array && n > 1 {
			w.WriteString(",\n")
		}
		for i, c := range Columns {
			obj[c] = row.Values[i]
		}
		b, err := json.Marshal(obj)
		if err != nil {
			return err
		}
		w.Write(b)
		if !array {
			w.WriteByte('\n')
		}
		if n%10000 == 0 && progress != nil {
			progress(n)
		}
	}
	if array {
		w.WriteString("\n]\n")
	}
	return nil
}
