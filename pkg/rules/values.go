package rules

import (
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The readers below are how the rules read a value of each type. They are
// exported for what must read values exactly as the cleaner will: the
// profile that `datamill profile` and `datamill init` infer types from.

// Normalise trims s and collapses its inner whitespace to single spaces,
// as every rule does before it reads a value; "" is a missing value.
func Normalise(s string) string {
	if plain(s) {
		return s
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

// ParseInt reads an integer as the int rule does: decimal digits with an
// optional sign and an optional ".0". A number past int64 is an error
// wrapping strconv.ErrRange.
func ParseInt(s string) (int64, error) {
	return strconv.ParseInt(strings.TrimSuffix(s, ".0"), 10, 64)
}

// ParseDecimal reads an amount as the decimal rule does: an optional
// currency sign or code, spaces or apostrophes as thousands separators and
// a decimal point or comma; the last of '.' and ',' is the decimal
// separator when both appear. A currency code is upper-case letters before
// or after the number, never inside it: "1e9" and "12abc" are not numbers.
// The amount is cut to two decimals, as the money type stores it.
func ParseDecimal(s string) (*big.Rat, bool) {
	var b strings.Builder
	digits, after := false, false // a digit seen; a sign or code after one
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9', r == '.', r == ',', r == '-':
			if after {
				return nil, false
			}
			digits = digits || r >= '0' && r <= '9'
			b.WriteRune(r)
		case r == ' ', r == '\u00a0', r == '\u202f', r == '\'':
		case strings.ContainsRune("€$£¥", r), r >= 'A' && r <= 'Z':
			// currency signs and codes (EUR, USD, ...)
			after = digits
		default:
			return nil, false
		}
	}
	n := b.String()
	if n == "" || strings.Count(n, "-") > 1 || strings.Contains(n[1:], "-") {
		return nil, false
	}
	dot, comma := strings.LastIndex(n, "."), strings.LastIndex(n, ",")
	switch {
	case comma > dot:
		n = strings.ReplaceAll(n[:comma], ".", "") + "." + n[comma+1:]
	case dot > comma:
		n = strings.ReplaceAll(n[:dot], ",", "") + n[dot:]
	}
	if strings.Count(n, ".") > 1 || strings.Contains(n, ",") {
		return nil, false
	}
	r, ok := new(big.Rat).SetString(n)
	if !ok {
		return nil, false
	}
	// Two decimals, as the money type stores them.
	cents := new(big.Rat).Mul(r, big.NewRat(100, 1))
	q := new(big.Int).Quo(cents.Num(), cents.Denom())
	return new(big.Rat).SetFrac(q, big.NewInt(100)), true
}

// dateLayouts are the date formats real exports use, tried in order.
// Slashed dates are read day first (dd/mm/yyyy), as European sources write
// them; year-first slashed dates are unambiguous. timeLayouts have a time
// of day too, and are tried after them.
var (
	dateLayouts = []string{
		time.DateOnly, "2006/01/02", "02/01/2006", "2/1/2006", "02.01.2006", "02-01-2006",
		"20060102", "2 Jan 2006", "2 January 2006", "Jan 2, 2006", "January 2, 2006",
	}
	timeLayouts = []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02 15:04:05"}
)

// ParseDate reads a date or a timestamp in one of the layouts real exports
// use, a timestamp in the zone it names; withTime tells which it was.
// Impossible dates (2023-02-30) fail. The date rule keeps the value's Day.
func ParseDate(s string) (t time.Time, withTime, ok bool) {
	// Every layout takes 8 characters or more, a year's digits, and starts
	// with a digit or a month's name: most values that are no dates are
	// told at once.
	if len(s) < 8 || !isDigit(s[0]) && !isLetter(s[0]) || !strings.ContainsAny(s, "0123456789") {
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

// Day is the calendar day t names in its own zone, at midnight UTC: the
// value of a date field.
func Day(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

func isDigit(b byte) bool  { return b >= '0' && b <= '9' }
func isLetter(b byte) bool { return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' }

var email = regexp.MustCompile(`^[a-z0-9._%+-]+@[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}$`)

// Email reads an email address as the email rule does: lower-cased; ok is
// false when s is not one.
func Email(s string) (string, bool) {
	if !strings.Contains(s, "@") {
		return "", false
	}
	e := strings.ToLower(s)
	if !email.MatchString(e) || strings.Contains(e, "..") {
		return "", false
	}
	return e, true
}
