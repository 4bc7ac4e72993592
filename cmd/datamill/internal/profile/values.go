package profile

// Values are read by the cleaner's own readers (pkg/rules), so that a
// type inferred here is one whose values the cleaner reads, and a range
// measured here is the range of the values it would load. What is below
// is the profile's own: the guesses the cleaner makes no rule for.

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
