package profile

import (
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The readers below accept what the cleaner's rules accept
// (services/cleaner/internal/rules), so that a type inferred here is one
// whose values the cleaner reads, and a range measured here is the range
// of the values it would load.

// normalise trims a value and collapses its inner whitespace, as the
// cleaner does first; "" is a missing value.
func normalise(s string) string {
	if plain(s) {
		return s
	}
	if strings.TrimSpace(s) == "" {
		return ""
	}
	return strings.Join(strings.Fields(s), " ")
}

// plain reports whether s is printable ASCII without spaces at its ends or
// two in a row: normalised already, as most values are.
func plain(s string) bool {
	if s == "" || s[0] == ' ' || s[len(s)-1] == ' ' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' || s[i] == ' ' && s[i+1] == ' ' {
			return false
		}
	}
	return true
}

// parseInt reads an integer as the cleaner's int rule does: decimal
// digits with an optional sign and an optional ".0".
func parseInt(s string) (int64, bool) {
	n, err := strconv.ParseInt(strings.TrimSuffix(s, ".0"), 10, 64)
	return n, err == nil
}

// parseDecimal reads an amount as the cleaner's decimal rule does: an
// optional currency sign or upper-case code before or after the number,
// spaces or apostrophes between digit groups, and the last of '.' and ','
// as the decimal separator. The amount is cut to two decimals, as the
// cleaner stores it.
func parseDecimal(s string) (*big.Rat, bool) {
	var digits strings.Builder
	seen, trailing := false, false
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9' || r == '.' || r == ',' || r == '-':
			if trailing {
				return nil, false
			}
			seen = seen || r >= '0' && r <= '9'
			digits.WriteRune(r)
		case r == ' ' || r == '\u00a0' || r == '\u202f' || r == '\'':
		case strings.ContainsRune("€$£¥", r) || r >= 'A' && r <= 'Z':
			trailing = seen
		default:
			return nil, false
		}
	}
	n := digits.String()
	if n == "" || strings.Count(n, "-") > 1 || strings.Contains(n[1:], "-") {
		return nil, false
	}
	dot, comma := strings.LastIndexByte(n, '.'), strings.LastIndexByte(n, ',')
	if comma > dot {
		n = strings.ReplaceAll(n[:comma], ".", "") + "." + n[comma+1:]
	} else if dot > comma {
		n = strings.ReplaceAll(n[:dot], ",", "") + n[dot:]
	}
	if strings.Count(n, ".") > 1 || strings.Contains(n, ",") {
		return nil, false
	}
	r, ok := new(big.Rat).SetString(n)
	if !ok {
		return nil, false
	}
	cents := new(big.Rat).Mul(r, big.NewRat(100, 1))
	q := new(big.Int).Quo(cents.Num(), cents.Denom())
	return new(big.Rat).SetFrac(q, big.NewInt(100)), true
}

// currencies are the codes an amount may carry. The cleaner takes any
// upper-case letters around a number for one; inferring that a column
// holds amounts takes only these, so that ORD-1001 is no amount of -1001.
var currencies = map[string]bool{
	"EUR": true, "USD": true, "GBP": true, "CHF": true, "JPY": true, "CAD": true, "AUD": true, "NZD": true,
	"SEK": true, "NOK": true, "DKK": true, "PLN": true, "CZK": true, "HUF": true, "CNY": true, "INR": true,
	"BRL": true, "MXN": true, "ZAR": true, "HKD": true, "SGD": true, "KRW": true, "TRY": true, "RON": true,
}

// amountLike reports whether the letters of s are currency codes.
func amountLike(s string) bool {
	for i := 0; i < len(s); {
		if s[i] < 'A' || s[i] > 'Z' {
			i++
			continue
		}
		j := i
		for j < len(s) && s[j] >= 'A' && s[j] <= 'Z' {
			j++
		}
		if !currencies[s[i:j]] {
			return false
		}
		i = j
	}
	return true
}

// dateLayouts are the calendar date formats the cleaner's date rule reads,
// slashed dates day first; timeLayouts are those with a time of day, which
// the date rule reads as their day.
var (
	dateLayouts = []string{
		time.DateOnly, "2006/01/02", "02/01/2006", "2/1/2006", "02.01.2006", "02-01-2006",
		"20060102", "2 Jan 2006", "2 January 2006", "Jan 2, 2006", "January 2, 2006",
	}
	timeLayouts = []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02 15:04:05"}
)

// parseTime reads a date or a timestamp, in the zone it names; withTime
// tells which it was.
func parseTime(s string) (t time.Time, withTime, ok bool) {
	// Every layout has 6 to 35 characters, digits, and starts with a digit
	// or a month's capital: most values that are no dates are told at once.
	if len(s) < 6 || len(s) > 35 || !(s[0] >= '0' && s[0] <= '9' || s[0] >= 'A' && s[0] <= 'Z') || !strings.ContainsAny(s, "0123456789") {
		return time.Time{}, false, false
	}
	for _, layout := range dateLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t, false, true
		}
	}
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true, true
		}
	}
	return time.Time{}, false, false
}

// boolWords are the spellings of a boolean, by value; "1" and "0" count
// too, but a column of only digits is an int.
var boolWords = map[string]bool{
	"true": true, "yes": true, "y": true, "t": true,
	"false": false, "no": false, "n": false, "f": false,
}

// BoolSpellings are the spellings a boolean column's values may take.
func BoolSpellings(v bool) []string {
	var out []string
	for _, w := range []string{"true", "yes", "y", "t", "1", "false", "no", "n", "f", "0"} {
		if b, ok := boolWords[w]; ok && b == v || w == "1" && v || w == "0" && !v {
			out = append(out, w)
		}
	}
	return out
}

// email is the address form the cleaner's email rule accepts.
var email = regexp.MustCompile(`^[a-z0-9._%+-]+@[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}$`)

func isEmail(s string) bool {
	if !strings.Contains(s, "@") {
		return false
	}
	e := strings.ToLower(s)
	return email.MatchString(e) && !strings.Contains(e, "..")
}
