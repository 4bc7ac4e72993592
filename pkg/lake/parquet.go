package lake

import (
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/parquet-go/parquet-go"
)

// A Writer's row groups hold at most RowGroupRows rows, and are cut
// earlier once about RowGroupBytes bytes of values are buffered: that is
// what a Writer holds in memory, whatever the size of the object.
//
// A column's values are buffered until they make PageBytes, then
// compressed into a page; every column has such a buffer and its encoding
// scratch, so the writer of a raw schema of 19 columns held 11.5 MiB with
// parquet-go's default of 256 KiB and holds 4.8 MiB with 64 KiB, for
// objects about a fifth larger on the generated users records
// (BenchmarkWriterHeap).
const (
	RowGroupRows  = 64 * 1024
	RowGroupBytes = 8 << 20
	PageBytes     = 64 << 10
)

// The names of the key-value metadata of a lake object.
const (
	kvSchema    = "avro.schema"
	kvDataset   = "datamill.dataset"
	kvTopic     = "datamill.topic"
	kvTopicID   = "datamill.topic_id"
	kvPartition = "datamill.partition"
	kvStart     = "datamill.start_offset"
	kvEnd       = "datamill.end_offset"
	kvRecords   = "datamill.records"
)

// Writer writes one lake object: Parquet (zstd), a column for every field
// of the raw schema plus the envelope columns, the Avro schema and the
// offset range in the file's key-value metadata. It is not safe for
// concurrent use.
type Writer struct {
	pw      *parquet.GenericWriter[any]
	out     *counter
	root    *node
	schema  avro.Schema
	cols    [][]parquet.Value // the row being shredded, by column
	row     parquet.Row
	records int64
	closed  bool
	// groupRows and groupBytes are where a row group is cut:
	// RowGroupRows and RowGroupBytes but in tests; inGroup counts the
	// rows of the current one.
	groupRows, groupBytes, inGroup int64
}

// counter counts the bytes written through it.
type counter struct {
	w io.Writer
	n int64
}

func (c *counter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

// NewWriter starts an object of rows of raw schema s on w. A field whose
// Avro type the lake does not keep is an error naming it.
func NewWriter(w io.Writer, s avro.Schema) (*Writer, error) {
	root, err := rowSchema(s)
	if err != nil {
		return nil, fmt.Errorf("lake schema: %w", err)
	}
	codec, err := newZstdCodec()
	if err != nil {
		return nil, err
	}
	out := &counter{w: w}
	pw := parquet.NewGenericWriter[any](out,
		parquet.NewSchema(schemaName(s), root.pq),
		parquet.Compression(codec),
		parquet.MaxRowsPerRowGroup(RowGroupRows),
		parquet.PageBufferSize(PageBytes),
		parquet.CreatedBy("datamill", "", ""),
		parquet.KeyValueMetadata(kvSchema, s.String()),
	)
	return &Writer{
		pw: pw, out: out, root: root, schema: s, cols: make([][]parquet.Value, root.leaves),
		groupRows: RowGroupRows, groupBytes: RowGroupBytes,
	}, nil
}

func schemaName(s avro.Schema) string {
	if n, ok := s.(avro.NamedSchema); ok {
		return n.FullName()
	}
	return "raw"
}

// Write appends one decoded raw record (as serde decodes into
// map[string]any) and where it was. A record that does not follow the
// schema is an error naming the field, and is not written.
func (w *Writer) Write(rec map[string]any, env Envelope) error {
	if w.closed {
		return errors.New("lake writer: write after close")
	}
	if env.SchemaID < math.MinInt32 || env.SchemaID > math.MaxInt32 {
		return fmt.Errorf("record at %s/%d@%d: schema id %d out of range", env.Topic, env.Partition, env.Offset, env.SchemaID)
	}
	for i := range w.cols {
		w.cols[i] = w.cols[i][:0]
	}
	if err := w.record(w.root, rec, 0, 0); err != nil {
		return fmt.Errorf("record at %s/%d@%d: %w", env.Topic, env.Partition, env.Offset, err)
	}
	envelope := w.root.fields[len(w.root.fields)-6:]
	w.add(envelope[0], parquet.ByteArrayValue([]byte(env.Topic)), 0, 0)
	w.add(envelope[1], parquet.Int32Value(env.Partition), 0, 0)
	w.add(envelope[2], parquet.Int64Value(env.Offset), 0, 0)
	w.add(envelope[3], parquet.Int64Value(env.Timestamp.UnixMicro()), 0, 0)
	w.add(envelope[4], parquet.Int32Value(int32(env.SchemaID)), 0, 0)
	if env.Key == nil {
		w.nulls(envelope[5], 0, 0)
	} else {
		w.add(envelope[5].elem, parquet.ByteArrayValue(slices.Clone(env.Key)), 0, 1)
	}
	w.row = w.row[:0]
	for _, c := range w.cols {
		w.row = append(w.row, c...)
	}
	if _, err := w.pw.WriteRows([]parquet.Row{w.row}); err != nil {
		return fmt.Errorf("write parquet row: %w", err)
	}
	w.records++
	w.inGroup++
	if w.inGroup >= w.groupRows || w.pw.Size()-w.out.n >= w.groupBytes {
		if err := w.pw.Flush(); err != nil {
			return fmt.Errorf("write parquet row group: %w", err)
		}
		w.inGroup = 0
	}
	return nil
}

// add appends v to the column of leaf n at levels rep and def.
func (w *Writer) add(n *node, v parquet.Value, rep, def int) {
	w.cols[n.first] = append(w.cols[n.first], v.Level(rep, def, n.first))
}

// nulls appends a null at levels rep and def to every leaf column of n: n
// is null, or an empty list or map.
func (w *Writer) nulls(n *node, rep, def int) {
	for c := n.first; c < n.first+n.leaves; c++ {
		w.cols[c] = append(w.cols[c], parquet.NullValue().Level(rep, def, c))
	}
}

// record shreds the fields of group n from m, at repetition level rep for
// the first value of each column and definition level def.
func (w *Writer) record(n *node, m map[string]any, rep, def int) error {
	for _, f := range n.fields {
		if f.path == f.name && envelopeColumn(f.name) {
			break // the envelope, which follows the raw fields at the root
		}
		v, ok := m[f.name]
		if !ok && f.kind != kindOptional {
			return fmt.Errorf("field %s: missing", f.path)
		}
		if err := w.value(f, v, rep, def); err != nil {
			return err
		}
	}
	return nil
}

// value shreds v as a value of n.
func (w *Writer) value(n *node, v any, rep, def int) error {
	switch n.kind {
	case kindOptional:
		if v == nil {
			w.nulls(n, rep, def)
			return nil
		}
		if m, ok := v.(map[string]any); ok && n.wrap != "" && len(m) == 1 {
			if inner, ok := m[n.wrap]; ok {
				v = inner
			}
		}
		return w.value(n.elem, v, rep, def+1)
	case kindGroup:
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("field %s: want a record as map[string]any, got %T", n.path, v)
		}
		return w.record(n, m, rep, def)
	case kindList:
		items, ok := v.([]any)
		if !ok {
			return fmt.Errorf("field %s: want an array as []any, got %T", n.path, v)
		}
		if len(items) == 0 {
			w.nulls(n, rep, def)
			return nil
		}
		for i, it := range items {
			r := n.rep
			if i == 0 {
				r = rep
			}
			if err := w.value(n.elem, it, r, def+1); err != nil {
				return err
			}
		}
		return nil
	case kindMap:
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("field %s: want a map as map[string]any, got %T", n.path, v)
		}
		if len(m) == 0 {
			w.nulls(n, rep, def)
			return nil
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys) // the same map makes the same bytes
		for i, k := range keys {
			r := n.rep
			if i == 0 {
				r = rep
			}
			w.cols[n.first] = append(w.cols[n.first], parquet.ByteArrayValue([]byte(k)).Level(r, def+1, n.first))
			if err := w.value(n.elem, m[k], r, def+1); err != nil {
				return err
			}
		}
		return nil
	}
	pv, err := leafValue(n, v)
	if err != nil {
		return err
	}
	w.add(n, pv, rep, def)
	return nil
}

// leafValue is v as the Parquet value of leaf n.
func leafValue(n *node, v any) (parquet.Value, error) {
	bad := func() (parquet.Value, error) {
		return parquet.Value{}, fmt.Errorf("field %s: unexpected %T", n.path, v)
	}
	switch n.kind {
	case kindString:
		if s, ok := v.(string); ok {
			return parquet.ByteArrayValue([]byte(s)), nil
		}
	case kindBytes:
		if b, ok := v.([]byte); ok {
			return parquet.ByteArrayValue(slices.Clone(b)), nil
		}
	case kindInt:
		i, ok := integer(v)
		if !ok {
			return bad()
		}
		if i < math.MinInt32 || i > math.MaxInt32 {
			return parquet.Value{}, fmt.Errorf("field %s: %d out of the range of an Avro int", n.path, i)
		}
		return parquet.Int32Value(int32(i)), nil
	case kindLong:
		if i, ok := integer(v); ok {
			return parquet.Int64Value(i), nil
		}
	case kindMicros:
		if t, ok := v.(time.Time); ok {
			return parquet.Int64Value(t.UnixMicro()), nil
		}
	case kindMillis:
		if t, ok := v.(time.Time); ok {
			return parquet.Int64Value(t.UnixMilli()), nil
		}
	case kindFloat:
		switch f := v.(type) {
		case float32:
			return parquet.FloatValue(f), nil
		case float64:
			return parquet.FloatValue(float32(f)), nil
		}
	case kindDouble:
		switch f := v.(type) {
		case float64:
			return parquet.DoubleValue(f), nil
		case float32:
			return parquet.DoubleValue(float64(f)), nil
		}
	case kindBool:
		if b, ok := v.(bool); ok {
			return parquet.BooleanValue(b), nil
		}
	}
	return bad()
}

func integer(v any) (int64, bool) {
	switch i := v.(type) {
	case int:
		return int64(i), true
	case int64:
		return i, true
	case int32:
		return int64(i), true
	case int16:
		return int64(i), true
	case int8:
		return int64(i), true
	}
	return 0, false
}

// Size is about how many bytes the object has so far: those written to w
// and those buffered for the current row group, without the footer. The
// buffered bytes are not yet compressed, so Size may shrink when a row
// group is written. The same rows give the same Size, for deterministic
// cuts.
func (w *Writer) Size() int64 { return w.pw.Size() }

// Close writes m into the file's metadata and ends the file; m.Records is
// set to the number of rows written, and m.Schema is not used (the
// Writer's schema is).
func (w *Writer) Close(m Meta) error {
	if w.closed {
		return errors.New("lake writer: closed twice")
	}
	w.closed = true
	for k, v := range map[string]string{
		kvDataset:   m.Dataset,
		kvTopic:     m.Topic,
		kvTopicID:   m.TopicID,
		kvPartition: strconv.FormatInt(int64(m.Partition), 10),
		kvStart:     strconv.FormatInt(m.Start, 10),
		kvEnd:       strconv.FormatInt(m.End, 10),
		kvRecords:   strconv.FormatInt(w.records, 10),
	} {
		w.pw.SetKeyValueMetadata(k, v)
	}
	if err := w.pw.Close(); err != nil {
		return fmt.Errorf("end parquet file: %w", err)
	}
	return nil
}

// File is an opened lake object.
type File struct {
	Meta Meta
	pf   *parquet.File
	root *node
}

// Open reads a lake object's metadata: its schema and offset range. A
// corrupt object is an error, also where the Parquet library would panic.
func Open(r io.ReaderAt, size int64) (f *File, err error) {
	defer func() {
		if p := recover(); p != nil {
			f, err = nil, fmt.Errorf("open parquet file: corrupt: %v", p)
		}
	}()
	pf, err := parquet.OpenFile(r, size, parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return nil, fmt.Errorf("open parquet file: %w", err)
	}
	var errs []error
	kv := func(key string) string {
		v, ok := pf.Lookup(key)
		if !ok {
			errs = append(errs, fmt.Errorf("%s missing", key))
		}
		return v
	}
	num := func(key string, bits int) int64 {
		v := kv(key)
		if v == "" {
			return 0
		}
		n, err := strconv.ParseInt(v, 10, bits)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
		}
		return n
	}
	m := Meta{
		Dataset:   kv(kvDataset),
		Topic:     kv(kvTopic),
		TopicID:   kv(kvTopicID),
		Partition: int32(num(kvPartition, 32)), // #nosec G115 -- num parsed it with bitSize 32
		Start:     num(kvStart, 64),
		End:       num(kvEnd, 64),
		Records:   num(kvRecords, 64),
	}
	if text := kv(kvSchema); text != "" {
		if m.Schema, err = avro.Parse(text); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", kvSchema, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("lake object metadata: %w", err)
	}
	root, err := rowSchema(m.Schema)
	if err != nil {
		return nil, fmt.Errorf("lake object schema: %w", err)
	}
	if want, got := parquet.NewSchema("", root.pq), pf.Schema(); !parquet.EqualNodes(want, got) {
		return nil, fmt.Errorf("lake object columns do not follow its Avro schema:\n%s\nwant:\n%s", got, want)
	}
	if n := pf.NumRows(); n != m.Records {
		return nil, fmt.Errorf("lake object has %d rows, its metadata says %d", n, m.Records)
	}
	return &File{Meta: m, pf: pf, root: root}, nil
}

// Rows yields the object's rows in offset order (the order they were
// written in); it stops at the first error. A corrupt object is an error,
// also where the Parquet library would panic.
func (f *File) Rows() iter.Seq2[Row, error] {
	return func(yield func(Row, error) bool) {
		buf := make([]parquet.Row, 64)
		cols := make([][]parquet.Value, f.root.leaves)
		cur := make([]int, f.root.leaves)
		for _, rg := range f.pf.RowGroups() {
			rows := rg.Rows()
			for {
				n, err := readRows(rows, buf)
				for _, row := range buf[:n] {
					r, err := f.assemble(row, cols, cur)
					if !yield(r, err) || err != nil {
						_ = rows.Close()
						return
					}
				}
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					_ = rows.Close()
					yield(Row{}, fmt.Errorf("read parquet rows: %w", err))
					return
				}
			}
			if err := rows.Close(); err != nil {
				yield(Row{}, fmt.Errorf("read parquet rows: %w", err))
				return
			}
		}
	}
}

// readRows is rows.ReadRows(buf), with a panic of the Parquet library on
// corrupt data made an error.
func readRows(rows parquet.Rows, buf []parquet.Row) (n int, err error) {
	defer func() {
		if p := recover(); p != nil {
			n, err = 0, fmt.Errorf("corrupt: %v", p)
		}
	}()
	return rows.ReadRows(buf)
}

// assemble is the Row of Parquet row pr.
func (f *File) assemble(pr parquet.Row, cols [][]parquet.Value, cur []int) (Row, error) {
	for i := range cols {
		cols[i], cur[i] = cols[i][:0], 0
	}
	for _, v := range pr {
		c := v.Column()
		if c < 0 || c >= len(cols) {
			return Row{}, fmt.Errorf("parquet value of column %d, want fewer than %d", c, len(cols))
		}
		cols[c] = append(cols[c], v)
	}
	a := assembler{cols: cols, cur: cur}
	rec := make(map[string]any, len(f.root.fields)-6)
	var env Envelope
	for _, n := range f.root.fields {
		v, err := a.value(n)
		if err != nil {
			return Row{}, err
		}
		switch n.name {
		case ColTopic:
			env.Topic = v.(string)
		case ColPartition:
			env.Partition = int32(v.(int)) // #nosec G115 -- read from an INT32 column
		case ColOffset:
			env.Offset = v.(int64)
		case ColTimestamp:
			env.Timestamp = v.(time.Time)
		case ColSchemaID:
			env.SchemaID = v.(int)
		case ColKey:
			if v != nil {
				env.Key = v.([]byte)
			}
		default:
			rec[n.name] = v
		}
	}
	return Row{Record: rec, Envelope: env}, nil
}

// assembler reads values back from the columns of one row, cur[c] being
// the next value of column c.
type assembler struct {
	cols [][]parquet.Value
	cur  []int
}

// peek is the next value of column c.
func (a *assembler) peek(n *node) (parquet.Value, error) {
	c := n.first
	if a.cur[c] >= len(a.cols[c]) {
		return parquet.Value{}, fmt.Errorf("field %s: column %d ends early", n.path, c)
	}
	return a.cols[c][a.cur[c]], nil
}

// skip passes the one value every leaf column of n has when n is null or
// empty.
func (a *assembler) skip(n *node) {
	for c := n.first; c < n.first+n.leaves; c++ {
		a.cur[c]++
	}
}

// value reads one value of n, shaped as hamba/avro decodes it into any.
func (a *assembler) value(n *node) (any, error) {
	switch n.kind {
	case kindOptional:
		v, err := a.peek(n)
		if err != nil {
			return nil, err
		}
		if v.DefinitionLevel() < n.def {
			a.skip(n)
			return nil, nil
		}
		e, err := a.value(n.elem)
		if err != nil || n.wrap == "" {
			return e, err
		}
		return map[string]any{n.wrap: e}, nil
	case kindGroup:
		m := make(map[string]any, len(n.fields))
		for _, f := range n.fields {
			v, err := a.value(f)
			if err != nil {
				return nil, err
			}
			m[f.name] = v
		}
		return m, nil
	case kindList, kindMap:
		v, err := a.peek(n)
		if err != nil {
			return nil, err
		}
		if v.DefinitionLevel() < n.def {
			a.skip(n)
			if n.kind == kindList {
				return []any{}, nil
			}
			return map[string]any{}, nil
		}
		var list []any
		m := map[string]any{}
		for {
			if n.kind == kindList {
				e, err := a.value(n.elem)
				if err != nil {
					return nil, err
				}
				list = append(list, e)
			} else {
				kv, err := a.peek(n)
				if err != nil {
					return nil, err
				}
				k := string(kv.ByteArray())
				a.cur[n.first]++
				e, err := a.value(n.elem)
				if err != nil {
					return nil, err
				}
				m[k] = e
			}
			c := n.first
			if a.cur[c] >= len(a.cols[c]) || a.cols[c][a.cur[c]].RepetitionLevel() != n.rep {
				break
			}
		}
		if n.kind == kindList {
			return list, nil
		}
		return m, nil
	}
	v, err := a.peek(n)
	if err != nil {
		return nil, err
	}
	a.cur[n.first]++
	if v.IsNull() {
		return nil, fmt.Errorf("field %s: null in a column that may not be", n.path)
	}
	switch n.kind {
	case kindString:
		return string(v.ByteArray()), nil
	case kindBytes:
		return append([]byte{}, v.ByteArray()...), nil
	case kindInt:
		return int(v.Int32()), nil
	case kindLong:
		return v.Int64(), nil
	case kindMicros:
		return time.UnixMicro(v.Int64()).UTC(), nil
	case kindMillis:
		return time.UnixMilli(v.Int64()).UTC(), nil
	case kindFloat:
		return v.Float(), nil
	case kindDouble:
		return v.Double(), nil
	case kindBool:
		return v.Boolean(), nil
	}
	return nil, fmt.Errorf("field %s: unknown kind %d", n.path, n.kind)
}
