package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// flatObject reads b, one JSON object whose values are scalars and nothing
// else but white space around it. Scalars keep their JSON text (numbers as
// written, true and false), null is absent, and strings keep their bytes
// as they came: invalid UTF-8 is not replaced, and an escaped lone
// surrogate is written as its three bytes, invalid UTF-8 too, so that the
// cleaner flags such text as it flags invalid UTF-8 in CSV. Field names
// are lower-cased and trimmed; two that are then the same name are an
// error naming both.
//
// encoding/json would replace invalid UTF-8 and let the last of duplicate
// names win, hence a reader of its own for this one shape.
func flatObject(b []byte) (map[string]*string, error) {
	p := &parser{b: b}
	p.space()
	if !p.at('{') {
		return nil, fmt.Errorf("not a JSON object: %s", p.what())
	}
	p.i++
	out := make(map[string]*string, 8)
	names := make(map[string]string, 8) // lower-cased name → as written
	p.space()
	if p.at('}') {
		p.i++
		return out, p.end()
	}
	for {
		p.space()
		if !p.at('"') {
			return nil, fmt.Errorf("not a JSON object: want a field name, got %s", p.what())
		}
		name, err := p.str()
		if err != nil {
			return nil, fmt.Errorf("not a JSON object: %w", err)
		}
		p.space()
		if !p.at(':') {
			return nil, fmt.Errorf("not a JSON object: want ':' after field %q, got %s", name, p.what())
		}
		p.i++
		p.space()
		v, null, err := p.scalar(name)
		if err != nil {
			return nil, err
		}
		key := strings.ToLower(strings.TrimSpace(name))
		if first, dup := names[key]; dup {
			if first == name {
				return nil, fmt.Errorf("field %q appears twice", name)
			}
			return nil, fmt.Errorf("fields %q and %q are both the field %q", first, name, key)
		}
		names[key] = name
		if !null {
			out[key] = &v
		}
		p.space()
		switch {
		case p.at(','):
			p.i++
		case p.at('}'):
			p.i++
			return out, p.end()
		default:
			return nil, fmt.Errorf("not a JSON object: want ',' or '}' after field %q, got %s", name, p.what())
		}
	}
}

// parser reads JSON from b, at byte i.
type parser struct {
	b []byte
	i int
}

func (p *parser) at(c byte) bool { return p.i < len(p.b) && p.b[p.i] == c }

func (p *parser) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// end checks that only white space follows the object.
func (p *parser) end() error {
	p.space()
	if p.i < len(p.b) {
		return fmt.Errorf("data after the JSON object, at byte %d: one object per line", p.i+1)
	}
	return nil
}

// what names the JSON value starting at i, or the byte there.
func (p *parser) what() string {
	if p.i >= len(p.b) {
		return "the end of the line"
	}
	switch c := p.b[p.i]; {
	case c == '[':
		return "an array"
	case c == '"':
		return "a string"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == 'n':
		return "null"
	case c == '-' || c >= '0' && c <= '9':
		return "a number"
	case c > ' ' && c < utf8.RuneSelf:
		return fmt.Sprintf("%q at byte %d", c, p.i+1)
	default:
		return fmt.Sprintf("byte 0x%02x at byte %d", c, p.i+1)
	}
}

var errEnd = errors.New("unexpected end of the line")

// scalar reads the value of field name: its text, or null.
func (p *parser) scalar(name string) (v string, null bool, err error) {
	if p.i >= len(p.b) {
		return "", false, fmt.Errorf("not a JSON object: %w", errEnd)
	}
	switch c := p.b[p.i]; {
	case c == '"':
		s, err := p.str()
		if err != nil {
			return "", false, fmt.Errorf("not a JSON object: field %q: %w", name, err)
		}
		return s, false, nil
	case c == '{':
		return "", false, fmt.Errorf("field %q holds a nested object, want a scalar", name)
	case c == '[':
		return "", false, fmt.Errorf("field %q holds a nested array, want a scalar", name)
	case c == '-' || c >= '0' && c <= '9':
		s, ok := p.number()
		if !ok {
			return "", false, fmt.Errorf("not a JSON object: field %q: malformed number at byte %d", name, p.i+1)
		}
		return s, false, nil
	}
	for _, lit := range []string{"true", "false", "null"} {
		if bytes.HasPrefix(p.b[p.i:], []byte(lit)) {
			p.i += len(lit)
			return lit, lit == "null", nil
		}
	}
	return "", false, fmt.Errorf("not a JSON object: field %q: want a value, got %s", name, p.what())
}

// number reads a JSON number as written.
func (p *parser) number() (string, bool) {
	start := p.i
	digits := func() int {
		n := 0
		for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	if p.at('-') {
		p.i++
	}
	switch {
	case p.at('0'):
		p.i++
	case digits() == 0:
		return "", false
	}
	if p.at('.') {
		p.i++
		if digits() == 0 {
			return "", false
		}
	}
	if p.at('e') || p.at('E') {
		p.i++
		if p.at('+') || p.at('-') {
			p.i++
		}
		if digits() == 0 {
			return "", false
		}
	}
	return string(p.b[start:p.i]), true
}

// str reads a JSON string starting at its opening quote, keeping every
// byte that is not an escape as it is.
func (p *parser) str() (string, error) {
	p.i++
	start := p.i
	for p.i < len(p.b) {
		switch c := p.b[p.i]; {
		case c == '"':
			p.i++
			return string(p.b[start : p.i-1]), nil
		case c == '\\':
			return p.escaped(start)
		case c < ' ':
			return "", fmt.Errorf("control character 0x%02x in a string at byte %d", c, p.i+1)
		}
		p.i++
	}
	return "", errEnd
}

// escaped goes on reading a string that holds escapes, from its first.
func (p *parser) escaped(start int) (string, error) {
	buf := append(make([]byte, 0, p.i-start+16), p.b[start:p.i]...)
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return string(buf), nil
		case c < ' ':
			return "", fmt.Errorf("control character 0x%02x in a string at byte %d", c, p.i+1)
		case c != '\\':
			buf = append(buf, c)
			p.i++
			continue
		}
		if p.i+1 >= len(p.b) {
			return "", errEnd
		}
		p.i += 2
		switch e := p.b[p.i-1]; e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return "", fmt.Errorf("malformed \\u escape at byte %d", p.i-1)
			}
			if r >= 0xd800 && r < 0xdc00 && p.i+1 < len(p.b) && p.b[p.i] == '\\' && p.b[p.i+1] == 'u' {
				save := p.i
				p.i += 2
				if lo, ok := p.hex4(); ok && lo >= 0xdc00 && lo < 0xe000 {
					buf = utf8.AppendRune(buf, 0x10000+(r-0xd800)<<10+(lo-0xdc00))
					continue
				}
				p.i = save
			}
			if r >= 0xd800 && r < 0xe000 {
				// A lone surrogate is no character: keep it as the
				// invalid UTF-8 it encodes to.
				buf = append(buf, 0xe0|byte(r>>12), 0x80|byte(r>>6)&0x3f, 0x80|byte(r)&0x3f) // #nosec G115 -- each byte is masked or shifted into range, as UTF-8 encodes
				continue
			}
			buf = utf8.AppendRune(buf, r)
		default:
			return "", fmt.Errorf("unknown escape %q at byte %d", []byte{'\\', e}, p.i-1)
		}
	}
	return "", errEnd
}

// hex4 reads the four hex digits of a \u escape.
func (p *parser) hex4() (rune, bool) {
	if p.i+4 > len(p.b) {
		return 0, false
	}
	var r rune
	for _, c := range p.b[p.i : p.i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	p.i += 4
	return r, true
}
