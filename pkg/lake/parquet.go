package lake

import (
	"io"
	"iter"

	"github.com/hamba/avro/v2"
)

// Writer writes one lake object: Parquet (zstd), a column for every field
// of the raw schema plus the envelope columns, the Avro schema and the
// offset range in the file's key-value metadata.
type Writer struct{}

// NewWriter starts an object of rows of raw schema s on w.
func NewWriter(w io.Writer, s avro.Schema) (*Writer, error) { panic("lake: not yet") }

// Write appends one decoded raw record (as serde decodes into
// map[string]any) and where it was.
func (w *Writer) Write(rec map[string]any, env Envelope) error { panic("lake: not yet") }

// Close writes m into the file's metadata and ends the file.
func (w *Writer) Close(m Meta) error { panic("lake: not yet") }

// File is an opened lake object.
type File struct{ Meta Meta }

// Open reads a lake object's metadata.
func Open(r io.ReaderAt, size int64) (*File, error) { panic("lake: not yet") }

// Rows yields the object's rows in offset order.
func (f *File) Rows() iter.Seq2[Row, error] { panic("lake: not yet") }
