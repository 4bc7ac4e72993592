package serde

import (
	"fmt"
	"math/big"

	"github.com/hamba/avro/v2"
)

// maxItems bounds the array items and map entries of one value, all
// blocks together. An Avro block states its item count before its items,
// and the decoder sizes a slice by it up front: without a bound, a few
// bytes could ask for gigabytes.
const maxItems = 1 << 20

// check walks body as written with schema s, before it is decoded, and
// refuses what the decoder would take on trust: block counts past
// maxItems, a decimal wider than its precision, a union branch or enum
// symbol out of range, a body that ends early.
func check(s avro.Schema, body []byte) error {
	r := readers.Get().(*avro.Reader)
	defer func() {
		r.Reset(nil)
		r.Error = nil
		readers.Put(r)
	}()
	r.Error = nil
	r.Reset(body)
	items := 0
	walk(s, r, &items)
	return r.Error
}

func walk(s avro.Schema, r *avro.Reader, items *int) {
	if r.Error != nil {
		return
	}
	switch s := s.(type) {
	case *avro.NullSchema:
	case *avro.RefSchema:
		walk(s.Schema(), r, items)
	case *avro.RecordSchema:
		for _, f := range s.Fields() {
			walk(f.Type(), r, items)
		}
	case *avro.UnionSchema:
		i := r.ReadLong()
		if r.Error == nil && (i < 0 || i >= int64(len(s.Types()))) {
			r.Error = fmt.Errorf("union branch %d of %d", i, len(s.Types()))
			return
		}
		if r.Error == nil {
			walk(s.Types()[i], r, items)
		}
	case *avro.ArraySchema:
		blocks(r, items, func() { walk(s.Items(), r, items) })
	case *avro.MapSchema:
		blocks(r, items, func() {
			r.SkipString()
			walk(s.Values(), r, items)
		})
	case *avro.EnumSchema:
		i := r.ReadInt()
		if r.Error == nil && (i < 0 || int(i) >= len(s.Symbols())) {
			r.Error = fmt.Errorf("enum symbol %d of %d", i, len(s.Symbols()))
		}
	case *avro.FixedSchema:
		b := make([]byte, s.Size())
		r.Read(b)
		if d, ok := s.Logical().(*avro.DecimalLogicalSchema); ok && r.Error == nil {
			r.Error = checkDecimal(d, b)
		}
	case *avro.PrimitiveSchema:
		switch s.Type() {
		case avro.Null:
		case avro.Boolean:
			r.SkipBool()
		case avro.Int:
			r.SkipInt()
		case avro.Long:
			r.SkipLong()
		case avro.Float:
			r.SkipFloat()
		case avro.Double:
			r.SkipDouble()
		case avro.String:
			r.SkipString()
		case avro.Bytes:
			if d, ok := s.Logical().(*avro.DecimalLogicalSchema); ok {
				b := r.ReadBytes()
				if r.Error == nil {
					r.Error = checkDecimal(d, b)
				}
				return
			}
			r.SkipBytes()
		}
	default:
		r.Error = fmt.Errorf("schema type %s cannot be checked", s.Type())
	}
}

// blocks reads the blocks of an array or map, calling item for each item.
func blocks(r *avro.Reader, items *int, item func()) {
	for r.Error == nil {
		n, _ := r.ReadBlockHeader()
		switch {
		case r.Error != nil || n == 0:
			return
		case n < 0 || n > int64(maxItems-*items):
			r.Error = fmt.Errorf("block of %d items: more than %d in one value", n, maxItems)
			return
		}
		*items += int(n)
		for range n {
			item()
			if r.Error != nil {
				return
			}
		}
	}
}

// checkDecimal refuses a decimal whose unscaled value, two's-complement
// big-endian b, has more digits than the schema's precision.
func checkDecimal(d *avro.DecimalLogicalSchema, b []byte) error {
	if p := d.Precision(); len(b) <= 8 && p <= 18 {
		// Fits an int64: no big numbers for the common case.
		var v int64
		if len(b) > 0 && b[0]&0x80 != 0 {
			v = -1
		}
		for _, c := range b {
			v = v<<8 | int64(c)
		}
		limit := int64(1)
		for range p {
			limit *= 10
		}
		if v <= -limit || v >= limit {
			return fmt.Errorf("decimal wider than its precision %d", p)
		}
		return nil
	}
	v := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		v.Sub(v, new(big.Int).Lsh(big.NewInt(1), uint(len(b))*8))
	}
	limit := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(d.Precision())), nil)
	if v.CmpAbs(limit) >= 0 {
		return fmt.Errorf("decimal wider than its precision %d", d.Precision())
	}
	return nil
}
