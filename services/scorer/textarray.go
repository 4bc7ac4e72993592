package main

import (
	"errors"
	"strings"

	"github.com/datamill/datamill/services/scorer/internal/model"
)

// parseTextArray reads a one-dimensional PostgreSQL text[] in its text
// form, as a CSV export of a table writes it: {DE,EU}, {"New York",US},
// {} for an empty list. An item is quoted when it holds a comma, a brace,
// a quote, a backslash or white space, or is empty or NULL, with \" and
// \\ inside the quotes; an unquoted NULL is a missing item, which a list
// of strings leaves out.
func parseTextArray(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' {
		return nil, errors.New("a list is written {item,item}")
	}
	body := s[1 : len(s)-1]
	items := []string{}
	if strings.TrimSpace(body) == "" {
		return items, nil
	}
	for i := 0; ; {
		for i < len(body) && isSpace(body[i]) {
			i++
		}
		var b strings.Builder
		quoted := i < len(body) && body[i] == '"'
		if quoted {
			i++
			for ; i < len(body) && body[i] != '"'; i++ {
				if body[i] == '\\' {
					i++
					if i == len(body) {
						break
					}
				}
				b.WriteByte(body[i])
			}
			if i >= len(body) {
				return nil, errors.New("an item's quote is not closed")
			}
			i++
			for i < len(body) && isSpace(body[i]) {
				i++
			}
		} else {
			for ; i < len(body) && body[i] != ','; i++ {
				switch body[i] {
				case '{', '}', '"':
					return nil, errors.New("a list of lists or a stray quote: want one level of items")
				case '\\':
					i++
					if i == len(body) {
						return nil, errors.New("a backslash ends the list")
					}
				}
				b.WriteByte(body[i])
			}
		}
		item := b.String()
		if !quoted {
			item = strings.TrimRight(item, " \t\n\r\v\f")
			if item == "" {
				return nil, errors.New("an empty item: want it quoted, \"\"")
			}
		}
		if quoted || !strings.EqualFold(item, "NULL") {
			items = append(items, item)
		}
		if i == len(body) {
			return items, nil
		}
		if body[i] != ',' {
			return nil, errors.New("text after a quoted item")
		}
		i++
	}
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// formatTextArray writes a list value as PostgreSQL writes a text[]
// (parseTextArray reads it back): a []string, or a []any of strings and
// nils as a text[] column reads; "" when the value is missing.
func formatTextArray(v any) string {
	var items []*string
	switch x := v.(type) {
	case nil:
		return ""
	case []string:
		for i := range x {
			items = append(items, &x[i])
		}
	case *[]string:
		if x == nil {
			return ""
		}
		return formatTextArray(*x)
	case []any:
		for _, item := range x {
			if s, ok := model.Text(item); ok {
				items = append(items, &s)
			} else {
				items = append(items, nil)
			}
		}
	default:
		s, ok := model.Text(v)
		if !ok {
			return ""
		}
		items = append(items, &s)
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, item := range items {
		if i > 0 {
			b.WriteByte(',')
		}
		switch {
		case item == nil:
			b.WriteString("NULL")
		case *item == "" || strings.EqualFold(*item, "NULL") || strings.ContainsAny(*item, "{},\"\\ \t\n\r\v\f"):
			b.WriteByte('"')
			for _, c := range []byte(*item) {
				if c == '"' || c == '\\' {
					b.WriteByte('\\')
				}
				b.WriteByte(c)
			}
			b.WriteByte('"')
		default:
			b.WriteString(*item)
		}
	}
	b.WriteByte('}')
	return b.String()
}
