package lake

import (
	"fmt"
	"reflect"

	"github.com/hamba/avro/v2"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/encoding"
)

// kind is what a node of a lake object's schema holds.
type kind int

const (
	kindString kind = iota // Avro string and enum
	kindInt                // Avro int, as int
	kindLong               // Avro long, as int64
	kindMicros             // Avro long timestamp-micros, as time.Time
	kindMillis             // Avro long timestamp-millis, as time.Time
	kindFloat
	kindDouble
	kindBool
	kindBytes
	kindOptional // a ["null", T] union: elem
	kindList     // an array of elem
	kindMap      // a map of string keys to elem
	kindGroup    // a record of fields
)

// node is one column, or group of columns, of a lake object, with what it
// takes to shred values into Parquet levels and to assemble them back.
type node struct {
	name   string // the field's name
	path   string // where it is in the record, for errors
	kind   kind
	elem   *node   // kindOptional, kindList, kindMap
	fields []*node // kindGroup
	pq     parquet.Node
	// wrap, for a kindOptional, is the name hamba/avro gives its value
	// when decoding into any: a union of null and a record, enum, array or
	// map is decoded as map[string]any{wrap: value}; empty for a union of
	// null and a primitive type, decoded as the value itself.
	wrap string

	// def is the definition level a value of this node has when present
	// (for kindOptional: when not null; for kindList and kindMap: when it
	// has at least one entry); rep is the repetition level of the entries
	// of a kindList or kindMap after the first.
	def, rep int
	// first is the index of the node's first leaf column, leaves how many
	// leaf columns it has (a map's key column first).
	first, leaves int
}

// builder turns an Avro schema into nodes, numbering leaf columns.
type builder struct {
	column int
	inside map[string]bool // records being built, to refuse recursive types
}

// rowSchema is the node of a whole row of raw schema s: its fields, then
// the envelope columns.
func rowSchema(s avro.Schema) (*node, error) {
	rec, ok := s.(*avro.RecordSchema)
	if !ok {
		return nil, fmt.Errorf("raw schema is a %s, want a record", s.Type())
	}
	b := &builder{inside: map[string]bool{}}
	root, err := b.record("", "", rec, 0, 0)
	if err != nil {
		return nil, err
	}
	for _, f := range root.fields {
		if envelopeColumn(f.name) {
			return nil, fmt.Errorf("field %s: the name of an envelope column", f.name)
		}
	}
	for _, e := range []struct {
		name string
		kind kind
		pq   parquet.Node
	}{
		{ColTopic, kindString, parquet.String()},
		{ColPartition, kindInt, parquet.Int(32)},
		{ColOffset, kindLong, parquet.Int(64)},
		{ColTimestamp, kindMicros, parquet.Timestamp(parquet.Microsecond)},
		{ColSchemaID, kindInt, parquet.Int(32)},
	} {
		root.fields = append(root.fields, b.leaf(e.name, e.name, e.kind, e.pq, 0, 0))
	}
	key := &node{name: ColKey, path: ColKey, kind: kindOptional, def: 1, first: b.column, leaves: 1}
	key.elem = b.leaf(ColKey, ColKey, kindBytes, parquet.Leaf(parquet.ByteArrayType), 1, 0)
	key.pq = parquet.Optional(key.elem.pq)
	root.fields = append(root.fields, key)
	root.leaves = b.column
	root.pq = group(root.fields)
	return root, nil
}

func envelopeColumn(name string) bool {
	switch name {
	case ColTopic, ColPartition, ColOffset, ColTimestamp, ColSchemaID, ColKey:
		return true
	}
	return false
}

func (b *builder) leaf(name, path string, k kind, pq parquet.Node, def, rep int) *node {
	n := &node{name: name, path: path, kind: k, pq: pq, def: def, rep: rep, first: b.column, leaves: 1}
	b.column++
	return n
}

func (b *builder) record(name, path string, rec *avro.RecordSchema, def, rep int) (*node, error) {
	if b.inside[rec.FullName()] {
		return nil, fmt.Errorf("field %s: record %s is recursive", path, rec.FullName())
	}
	b.inside[rec.FullName()] = true
	defer delete(b.inside, rec.FullName())
	n := &node{name: name, path: path, kind: kindGroup, def: def, rep: rep, first: b.column}
	for _, f := range rec.Fields() {
		p := f.Name()
		if path != "" {
			p = path + "." + f.Name()
		}
		c, err := b.build(f.Name(), p, f.Type(), def, rep)
		if err != nil {
			return nil, err
		}
		n.fields = append(n.fields, c)
	}
	n.leaves = b.column - n.first
	n.pq = group(n.fields)
	return n, nil
}

// build makes the node of a field of Avro type s, present at definition
// level def and repetition level rep.
func (b *builder) build(name, path string, s avro.Schema, def, rep int) (*node, error) {
	switch s := s.(type) {
	case *avro.RefSchema:
		return b.build(name, path, s.Schema(), def, rep)
	case *avro.PrimitiveSchema:
		return b.primitive(name, path, s, def, rep)
	case *avro.EnumSchema:
		return b.leaf(name, path, kindString, parquet.String(), def, rep), nil
	case *avro.RecordSchema:
		return b.record(name, path, s, def, rep)
	case *avro.UnionSchema:
		types := s.Types()
		if len(types) != 2 || !s.Nullable() {
			return nil, fmt.Errorf("field %s: union %s: only [\"null\", T] unions are kept", path, s)
		}
		t := types[0]
		if t.Type() == avro.Null {
			t = types[1]
		}
		n := &node{name: name, path: path, kind: kindOptional, def: def + 1, rep: rep, first: b.column}
		elem, err := b.build(name, path, t, def+1, rep)
		if err != nil {
			return nil, err
		}
		if elem.kind == kindOptional {
			return nil, fmt.Errorf("field %s: a union in a union", path)
		}
		n.elem, n.leaves, n.pq = elem, elem.leaves, parquet.Optional(elem.pq)
		n.wrap = unionName(t)
		return n, nil
	case *avro.ArraySchema:
		n := &node{name: name, path: path, kind: kindList, def: def + 1, rep: rep + 1, first: b.column}
		elem, err := b.build("element", path+"[]", s.Items(), def+1, rep+1)
		if err != nil {
			return nil, err
		}
		n.elem, n.leaves, n.pq = elem, elem.leaves, parquet.List(elem.pq)
		return n, nil
	case *avro.MapSchema:
		n := &node{name: name, path: path, kind: kindMap, def: def + 1, rep: rep + 1, first: b.column}
		b.leaf("key", path+"{}", kindString, parquet.String(), def+1, rep+1)
		elem, err := b.build("value", path+"{}", s.Values(), def+1, rep+1)
		if err != nil {
			return nil, err
		}
		n.elem, n.leaves, n.pq = elem, 1+elem.leaves, parquet.Map(parquet.String(), elem.pq)
		return n, nil
	}
	return nil, fmt.Errorf("field %s: Avro type %s is not kept in the lake", path, s.Type())
}

// unionName is the name under which hamba/avro decodes a union's value of
// type s into any ("" when it gives the value itself: hamba resolves the
// primitive types, with their logical types, to Go types, and no other).
func unionName(s avro.Schema) string {
	if r, ok := s.(*avro.RefSchema); ok {
		s = r.Schema()
	}
	switch s := s.(type) {
	case avro.NamedSchema:
		return s.FullName()
	case *avro.ArraySchema:
		return string(avro.Array)
	case *avro.MapSchema:
		return string(avro.Map)
	}
	return ""
}

func (b *builder) primitive(name, path string, s *avro.PrimitiveSchema, def, rep int) (*node, error) {
	logical := ""
	if l := s.Logical(); l != nil {
		logical = string(l.Type())
	}
	switch {
	case s.Type() == avro.String: // a uuid is a string too
		return b.leaf(name, path, kindString, parquet.String(), def, rep), nil
	case s.Type() == avro.Long && logical == string(avro.TimestampMicros):
		return b.leaf(name, path, kindMicros, parquet.Timestamp(parquet.Microsecond), def, rep), nil
	case s.Type() == avro.Long && logical == string(avro.TimestampMillis):
		return b.leaf(name, path, kindMillis, parquet.Timestamp(parquet.Millisecond), def, rep), nil
	case logical != "":
		return nil, fmt.Errorf("field %s: Avro %s with logical type %s is not kept in the lake", path, s.Type(), logical)
	}
	switch s.Type() {
	case avro.Int:
		return b.leaf(name, path, kindInt, parquet.Int(32), def, rep), nil
	case avro.Long:
		return b.leaf(name, path, kindLong, parquet.Int(64), def, rep), nil
	case avro.Float:
		return b.leaf(name, path, kindFloat, parquet.Leaf(parquet.FloatType), def, rep), nil
	case avro.Double:
		return b.leaf(name, path, kindDouble, parquet.Leaf(parquet.DoubleType), def, rep), nil
	case avro.Boolean:
		return b.leaf(name, path, kindBool, parquet.Leaf(parquet.BooleanType), def, rep), nil
	case avro.Bytes:
		return b.leaf(name, path, kindBytes, parquet.Leaf(parquet.ByteArrayType), def, rep), nil
	}
	return nil, fmt.Errorf("field %s: Avro type %s is not kept in the lake", path, s.Type())
}

// orderedGroup is a Parquet group whose fields keep the order they are
// given in (parquet.Group sorts them by name), so that columns follow the
// Avro schema.
type orderedGroup []parquet.Field

func group(fields []*node) orderedGroup {
	g := make(orderedGroup, len(fields))
	for i, f := range fields {
		// A one-field parquet.Group gives a field that reads its value
		// from a map or a struct as parquet-go expects.
		g[i] = parquet.Group{f.name: f.pq}.Fields()[0]
	}
	return g
}

func (g orderedGroup) asGroup() parquet.Group {
	m := make(parquet.Group, len(g))
	for _, f := range g {
		m[f.Name()] = f
	}
	return m
}

func (g orderedGroup) ID() int                     { return 0 }
func (g orderedGroup) String() string              { return g.asGroup().String() }
func (g orderedGroup) Type() parquet.Type          { return parquet.Group{}.Type() }
func (g orderedGroup) Optional() bool              { return false }
func (g orderedGroup) Repeated() bool              { return false }
func (g orderedGroup) Required() bool              { return true }
func (g orderedGroup) Leaf() bool                  { return false }
func (g orderedGroup) Fields() []parquet.Field     { return g }
func (g orderedGroup) Encoding() encoding.Encoding { return nil }
func (g orderedGroup) Compression() compress.Codec { return nil }
func (g orderedGroup) GoType() reflect.Type        { return g.asGroup().GoType() }
