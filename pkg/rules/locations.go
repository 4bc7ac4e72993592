package rules

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Region codes that Locations returns besides ISO 3166-1 alpha-2 country
// codes. AF and NA are also the alpha-2 codes of Afghanistan and Namibia:
// "Afghanistan" and "Africa" both give AF, "Namibia" and "North America"
// both give NA.
const (
	LocWorldwide    = "WW"    // worldwide, anywhere
	LocEurope       = "EU"    // Europe, European time zones
	LocEMEA         = "EMEA"  // Europe, the Middle East and Africa
	LocLatinAmerica = "LATAM" // Latin, South and Central America
	LocAmericas     = "AMER"  // the Americas
	LocNorthAmerica = "NA"    // North America, Northern America
	LocAsiaPacific  = "APAC"  // Asia, Oceania
	LocAfrica       = "AF"    // Africa
)

// locMaxText is how much of a location text Locations reads, in bytes.
const locMaxText = 4 << 10

// Locations reads where an offer is, or whom it accepts, as a sorted, de-duplicated list of
// ISO 3166-1 alpha-2 country codes and region codes: WW (worldwide, anywhere), EU (Europe,
// European time zones), EMEA, LATAM, AMER (the Americas), NA (North America, Northern
// America), APAC, AF (Africa); nil when it says nothing (unspecified).
//
// It reads the first 4 KiB of text; invalid UTF-8 and control characters
// count as spaces. The text is a list: ; | / newlines, brackets, " - ",
// " or " and commas separate its places, and a comma also separates the
// steps of one place ("Paris, Île-de-France, FR"). Places are matched on
// whole words, case and accents aside, longest first:
//
//   - country names, alpha-2 and alpha-3 codes and other-language names
//     from the cleaner's country index, plus a few short forms it lacks
//     (Russia, Turkey, Korea…);
//   - region names and codes (Europe, EMEA, LatAm, the Americas, North
//     America, Asia Pacific, Africa, worldwide, "anywhere in the world"…)
//     and groups of countries (DACH, Benelux, Nordics, Baltics, ANZ);
//   - subdivisions: US states, Canadian provinces, French regions, the
//     nations of the United Kingdom, German Länder — their country;
//   - a short list of major cities ("berlin", "Bay Area") — their country;
//   - named time zones written in capitals: CET, CEST, MET, MEST, WET,
//     EET, EEST → EU; EST, CST, MST, PST and their daylight forms,
//     AKST, HST and "Eastern/Central/Mountain/Pacific Time" → US (EST is
//     not Estonia); BST → GB, IST → IN, JST → JP, AEST → AU, WAT, CAT,
//     EAT → AF…; an IANA zone such as Europe/Berlin → its city's country.
//
// Two- and three-letter codes count only in capitals ("US", "IN"), and in
// a text without lower-case letters only as the first or last word of a
// place, so "us" is not the United States, "Remote in Berlin" names no
// India and "REMOTE IN BERLIN" neither; an alpha-3 code counts only as a
// place of its own ("DEU", "Berlin, DEU", not the AND of "US AND
// CANADA"); "UK" and "usa" count in any case.
// The two-letter North American zones ET, CT, MT and PT are not zones
// (PT is Portugal). A two-letter US state code after a town is the United
// States ("San Francisco, CA", "Austin, TX"), unless the town is a known
// city of the country with that code ("Berlin, DE", "Mumbai, IN") or the
// code ends a place of three steps ("Berlin, Berlin, DE"); between a
// town and a country any other code is a region ("München, BY, DE" is
// DE, not Belarus); a Canadian
// province code after a town is Canada ("Toronto, ON"), except NL, PE,
// SK, NU and YT, which stay countries unless the town is Canadian; Georgia
// after a known US city is the state ("Atlanta, Georgia"), else the
// country. A town before a state or a country is not looked up ("Paris,
// TX" is US only).
// France Travail's "NN - Town" (département number, then the town) is FR,
// or the overseas department's own code (971 → GP, 974 → RE…).
//
// "Anywhere" is WW unless its place names something else ("Anywhere in
// the US" is US). UTC or GMT offsets and ranges of them count only when
// the text names nothing else ("USA, CST (UTC-6)" is US): offsets from
// −10 to −2 hours are AMER, from −1 to +3 (bare UTC and GMT too) EU, +3:30
// to +4:30 EMEA, from +5 and below −10 APAC, so "UTC-5 to UTC+1" is AMER
// and EU and "GMT+1" is EU. A tolerance after a zone ("CET ±3h") is not
// read. "Remote", "Hybrid" and the like name no place: "remote" alone is
// nil.
func Locations(text string) []string {
	t := locTablesOnce()
	s := locPrepare(text)
	c := locCollect{strong: map[string]bool{}, weak: map[string]bool{}}
	s = locReadZones(s, t, &c)
	lower := strings.IndexFunc(s, unicode.IsLower) >= 0
	for _, item := range strings.FieldsFunc(s, locItemSep) {
		for _, alt := range locOrRe.Split(item, -1) {
			if code, ok := locDepartement(alt); ok {
				c.strong[code] = true
				continue
			}
			for _, sub := range locDashRe.Split(alt, -1) {
				locReadParts(strings.Split(sub, ","), t, lower, &c)
			}
		}
	}
	return c.result()
}

// locCollect gathers codes: strong ones are named places, weak ones are
// what UTC offsets say, read only when nothing is named.
type locCollect struct {
	strong, weak map[string]bool
}

func (c *locCollect) result() []string {
	set := c.strong
	if len(set) == 0 {
		set = c.weak
	}
	if len(set) == 0 {
		return nil
	}
	out := make([]string, 0, len(set))
	for code := range set {
		out = append(out, code)
	}
	slices.Sort(out)
	return out
}

// locPrepare bounds text to locMaxText bytes, turns invalid UTF-8 and
// control characters other than newlines into spaces, & into "and" and
// curly apostrophes into straight ones.
func locPrepare(text string) string {
	if len(text) > locMaxText {
		cut := locMaxText
		for cut > 0 && !utf8.RuneStart(text[cut]) {
			cut--
		}
		text = text[:cut]
	}
	text = strings.ReplaceAll(strings.ToValidUTF8(text, " "), "&", " and ")
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n':
			return r
		case r == '’' || r == '‘' || r == 'ʼ':
			return '\''
		case unicode.IsControl(r) || unicode.IsSpace(r) || r == unicode.ReplacementChar:
			return ' '
		}
		return r
	}, text)
}

// locItemSep separates the places of a list.
func locItemSep(r rune) bool {
	switch r {
	case ';', '|', '/', '\\', '\n', '(', ')', '[', ']', '{', '}', '<', '>', '•', '·', '+':
		return true
	}
	return false
}

var (
	// locOrRe separates alternatives: "San Francisco, CA or Austin, TX".
	locOrRe = regexp.MustCompile(`(?i)\s+or\s+`)
	// locDashRe separates places written "Remote - Europe".
	locDashRe = regexp.MustCompile(`\s+[-–—]+\s+`)
	// locDepartementRe is France Travail's "75 - Paris 1er Arrondissement".
	locDepartementRe = regexp.MustCompile(`^\s*(97[1-6]|\d{2}|2[AaBb])\s*[-–]\s*\pL`)
	// locOffsetRe is a UTC or GMT offset, or a range of them.
	locOffsetRe = regexp.MustCompile(`(?i)\b(?:UTC|GMT)(?:\s?([+\-−–]\s?\d{1,2}(?:[:.h]?[0-5]\d)?))?(?:\s?(?:to|and|until|through|till|-|–|—|…|\.\.)\s?(?:(?:UTC|GMT)\s?)?([+\-−–]\s?\d{1,2}(?:[:.h]?[0-5]\d)?))?\b`)
	// locIANARe is an IANA time zone such as Europe/Berlin.
	locIANARe = regexp.MustCompile(`\b(Europe|America|Asia|Africa|Australia|Pacific)/([A-Za-z_]+(?:/[A-Za-z_]+)?)\b`)
)

// locOverseas are the codes of France's overseas departments, by their
// France Travail number.
var locOverseas = map[string]string{"971": "GP", "972": "MQ", "973": "GF", "974": "RE", "975": "PM", "976": "YT"}

// locDepartement reads France Travail's "NN - Town".
func locDepartement(s string) (string, bool) {
	m := locDepartementRe.FindStringSubmatch(s)
	if m == nil {
		return "", false
	}
	if code, ok := locOverseas[m[1]]; ok {
		return code, true
	}
	return "FR", true
}

// locIANAAreas are the regions of IANA zone areas whose city is unknown.
var locIANAAreas = map[string]string{
	"Europe": LocEurope, "America": LocAmericas, "Asia": LocAsiaPacific,
	"Africa": LocAfrica, "Australia": "AU", "Pacific": LocAsiaPacific,
}

// locReadZones reads IANA zones and UTC offsets out of s, and returns s
// with them replaced by newlines.
func locReadZones(s string, t *locTables, c *locCollect) string {
	s = locIANARe.ReplaceAllStringFunc(s, func(m string) string {
		sub := locIANARe.FindStringSubmatch(m)
		path := sub[2]
		city := path[strings.LastIndexByte(path, '/')+1:]
		key := fold(strings.ReplaceAll(city, "_", " "))
		if code, ok := t.cities[key]; ok {
			c.strong[code] = true
			return "\n"
		}
		if !strings.Contains(city, "_") {
			return m // a list such as Europe/UK
		}
		code, ok := t.subs[key]
		if !ok {
			code = locIANAAreas[sub[1]]
		}
		c.strong[code] = true
		return "\n"
	})
	return locOffsetRe.ReplaceAllStringFunc(s, func(m string) string {
		sub := locOffsetRe.FindStringSubmatch(m)
		lo, ok := locOffset(sub[1])
		if !ok {
			return "\n"
		}
		hi := lo
		if sub[2] != "" {
			if hi, ok = locOffset(sub[2]); !ok {
				return "\n"
			}
		}
		for _, code := range locBands(min(lo, hi), max(lo, hi)) {
			c.weak[code] = true
		}
		return "\n"
	})
}

// locOffset reads "+1", "-5", "−3:30" or "" (zero) as hours.
func locOffset(s string) (float64, bool) {
	if s == "" {
		return 0, true
	}
	s = strings.ReplaceAll(s, " ", "")
	sign := 1.0
	r, size := utf8.DecodeRuneInString(s)
	if r != '+' {
		sign = -1
	}
	s = s[size:]
	hours, minutes := s, ""
	if i := strings.IndexAny(s, ":.h"); i >= 0 {
		hours, minutes = s[:i], s[i+1:]
	} else if len(s) > 2 {
		hours, minutes = s[:len(s)-2], s[len(s)-2:]
	}
	h, err := strconv.Atoi(hours)
	if err != nil || h > 14 {
		return 0, false
	}
	m := 0
	if minutes != "" {
		if m, err = strconv.Atoi(minutes); err != nil {
			return 0, false
		}
	}
	return sign * (float64(h) + float64(m)/60), true
}

// locOffsetBands are the regions of UTC offsets, in hours.
var locOffsetBands = []struct {
	code     string
	from, to float64
}{
	{LocAsiaPacific, -12, -10.5},
	{LocAmericas, -10, -2},
	{LocEurope, -1.5, 3},
	{LocEMEA, 3.5, 4.5},
	{LocAsiaPacific, 5, 14},
}

// locBands are the regions a range of UTC offsets covers.
func locBands(lo, hi float64) []string {
	var out []string
	for _, b := range locOffsetBands {
		if lo <= b.to && hi >= b.from {
			out = append(out, b.code)
		}
	}
	return out
}

// The kinds of what a word or words name.
type locKind int

const (
	locPlace    locKind = iota // a country
	locRegion                  // a region or a group of countries
	locSub                     // a state, province or region of a country
	locCity                    // a city
	locZone                    // a named time zone
	locAnywhere                // "anywhere", WW unless its place names more
)

type locHit struct {
	kind  locKind
	codes string // comma-separated
}

// locReadParts reads the comma-separated steps of one place.
func locReadParts(parts []string, t *locTables, lower bool, c *locCollect) {
	hits := make([][]locHit, len(parts))
	for i, p := range parts {
		if h, ok := locStateCode(parts, i, hits, t); ok {
			hits[i] = h
			continue
		}
		hits[i] = locMatch(p, t, lower)
	}
	for i := 1; i < len(parts); i++ {
		if locHas(hits[i], locPlace, locSub) {
			// A town or subdivision before its state or country is a
			// step of the same place; before a region it is a place of
			// its own ("Berlin, Europe").
			hits[i-1] = slices.DeleteFunc(hits[i-1], func(h locHit) bool { return h.kind == locCity || h.kind == locSub })
		}
	}
	for _, hs := range hits {
		others := slices.ContainsFunc(hs, func(h locHit) bool { return h.kind != locAnywhere })
		for _, h := range hs {
			if h.kind == locAnywhere && others {
				continue
			}
			for code := range strings.SplitSeq(h.codes, ",") {
				c.strong[code] = true
			}
		}
	}
}

func locHas(hs []locHit, kinds ...locKind) bool {
	return slices.ContainsFunc(hs, func(h locHit) bool { return slices.Contains(kinds, h.kind) })
}

// locStateCode reads a part that is a US state or Canadian province code
// after a town ("San Francisco, CA", "Toronto, ON"), Georgia after a known
// US city ("Atlanta, Georgia"), a US state code alone that no country has
// ("NY"), or another code between a town and a country, which is a region
// of that country ("München, BY, DE"). It reports whether it read the part.
func locStateCode(parts []string, i int, hits [][]locHit, t *locTables) ([]locHit, bool) {
	p := strings.TrimSpace(parts[i])
	code := len(p) == 2 && isUpper(p[0]) && isUpper(p[1])
	georgia := fold(p) == "georgia"
	if !code && !georgia {
		return nil, false
	}
	us := []locHit{{locSub, "US"}}
	country := code && t.countries[strings.ToLower(p)] == p
	if i == 0 || !locTownLike(parts[i-1], hits[i-1]) {
		if code && !country && locUSStates[p] && !locAloneNotStates[p] {
			return us, true
		}
		return nil, false
	}
	in := func(cc string) bool {
		return slices.ContainsFunc(hits[i-1], func(h locHit) bool {
			return (h.kind == locCity || h.kind == locSub) && h.codes == cc
		})
	}
	if georgia {
		return us, in("US")
	}
	last := i == len(parts)-1
	if country && len(parts) >= 3 && last {
		return nil, false // locality, region, country
	}
	switch {
	case country && in(p):
		return []locHit{{locPlace, p}}, true
	case locUSStates[p]:
		return us, true
	case locCAProvinces[p] && (!country || in("CA")):
		return []locHit{{locSub, "CA"}}, true
	case len(parts) >= 3 && !last:
		return nil, true // a region of the country that follows
	}
	return nil, false
}

func isUpper(b byte) bool { return b >= 'A' && b <= 'Z' }

// locTownLike reports whether a part, read as hits, is a town: a known
// city or subdivision, or words that are neither places nor words such as
// "Remote".
func locTownLike(part string, hits []locHit) bool {
	if locHas(hits, locCity, locSub) {
		return true
	}
	if len(hits) > 0 {
		return false
	}
	for _, w := range locWords(part) {
		if f := fold(w); f != "" && !locNoise[f] && strings.IndexFunc(f, unicode.IsLetter) >= 0 {
			return true
		}
	}
	return false
}

// locWords splits s into words: letters, digits, marks, inner dots and
// apostrophes.
func locWords(s string) []string {
	words := strings.FieldsFunc(s, func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.IsMark(r) && r != '.' && r != '\''
	})
	out := words[:0]
	for _, w := range words {
		if w = strings.Trim(w, ".'"); w != "" {
			out = append(out, w)
		}
	}
	return out
}

// locMaxWords is the most words a name has ("Democratic Republic of the
// Congo").
const locMaxWords = 6

// locMatch finds the places a part names, longest names first.
func locMatch(part string, t *locTables, lower bool) []locHit {
	words := locWords(part)
	folded := make([]string, len(words))
	for i, w := range words {
		folded[i] = fold(w)
	}
	var hits []locHit
	for i := 0; i < len(words); {
		n := min(locMaxWords, len(words)-i)
		for ; n > 0; n-- {
			if h, ok := locLookup(words, folded, i, n, t, lower); ok {
				hits = append(hits, h)
				break
			}
		}
		i += max(n, 1)
	}
	return hits
}

// locLookup looks the n words from i up.
func locLookup(words, folded []string, i, n int, t *locTables, lower bool) (locHit, bool) {
	key := strings.Join(folded[i:i+n], "")
	if key == "" {
		return locHit{}, false
	}
	if n == 1 {
		w := strings.ReplaceAll(words[i], ".", "")
		if code, ok := locZoneAbbrs[w]; ok && locCodeAllowed(words, i, lower) {
			return locHit{locZone, code}, true
		}
		if utf8.RuneCountInString(key) <= 3 && !locAnyCase[key] {
			if strings.ToUpper(w) != w || !locCodeAllowed(words, i, lower) {
				return locHit{}, false
			}
			if (w == "AM" || w == "PM") && i > 0 && strings.IndexFunc(words[i-1], unicode.IsDigit) >= 0 {
				return locHit{}, false // 9 AM - 5 PM
			}
		}
	}
	switch {
	case t.regions[key] != "":
		return locHit{locRegion, t.regions[key]}, true
	case locAnywhereWords[key]:
		return locHit{locAnywhere, LocWorldwide}, true
	case t.zones[key] != "":
		return locHit{locZone, t.zones[key]}, true
	case t.countries[key] != "" && (n > 1 || len(key) != 3 || locAnyCase[key] || len(words) == 1):
		// A three-letter code counts alone only: "AND", "CAN" and "PER"
		// are words.
		return locHit{locPlace, t.countries[key]}, true
	case t.subs[key] != "":
		return locHit{locSub, t.subs[key]}, true
	case t.cities[key] != "":
		return locHit{locCity, t.cities[key]}, true
	}
	return locHit{}, false
}

// locCodeAllowed reports whether a code written in capitals counts: in a
// text with lower-case letters always, else only first or last.
func locCodeAllowed(words []string, i int, lower bool) bool {
	return lower || i == 0 || i == len(words)-1
}

// locTables are the folded spellings of every place Locations knows.
type locTables struct {
	countries, regions, zones, subs, cities map[string]string
}

// locTablesOnce builds the tables on first use.
var locTablesOnce = sync.OnceValue(func() *locTables {
	t := &locTables{countries: countryIndex()}
	for name, code := range locCountryAliases {
		t.countries[fold(name)] = code
	}
	t.regions = locFold(locRegions)
	t.zones = locFold(locZoneNames)
	t.subs = locFold(locSubdivisions)
	t.cities = locFold(locCities)
	return t
})

func locFold(names map[string][]string) map[string]string {
	idx := map[string]string{}
	for code, list := range names {
		for _, n := range list {
			idx[fold(n)] = code
		}
	}
	return idx
}

// locKnownCodes lists every code Locations can return.
func locKnownCodes() map[string]bool {
	known := map[string]bool{}
	for _, code := range locTablesOnce().countries {
		known[code] = true
	}
	for _, code := range []string{LocWorldwide, LocEurope, LocEMEA, LocLatinAmerica, LocAmericas, LocNorthAmerica, LocAsiaPacific, LocAfrica} {
		known[code] = true
	}
	return known
}

// locCountryAliases are short country names the country index spells
// otherwise.
var locCountryAliases = map[string]string{
	"Russia": "RU", "Turkey": "TR", "Turkiye": "TR", "Korea": "KR", "Vatican": "VA", "Vatican City": "VA",
	"Brunei": "BN", "Macedonia": "MK", "Palestine": "PS", "Micronesia": "FM", "Ivory Coast": "CI",
	"Macau": "MO", "Czech": "CZ", "South African": "ZA", "Great Britain": "GB",
	"Democratic Republic of the Congo": "CD", "DR Congo": "CD", "DRC": "CD", "UAE": "AE",
}

// locAnyCase are short names that count in any case.
var locAnyCase = map[string]bool{"uk": true, "usa": true}

// locAnywhereWords are WW unless their place names more.
var locAnywhereWords = map[string]bool{"anywhere": true, "everywhere": true}

// locRegions are regions and groups of countries, by their codes.
var locRegions = map[string][]string{
	LocWorldwide: {
		"Worldwide", "World Wide", "World", "the World", "Anywhere in the world", "Global", "Globally",
		"International", "Rest of World", "Rest of the World", "WW", "Weltweit", "Monde entier", "Mundial",
	},
	LocEurope: {
		"Europe", "Europa", "European", "European Union", "EU", "EEA", "Schengen", "Schengen Area",
		"Eurozone", "Europaweit", "Europe wide",
	},
	LocEMEA:          {"EMEA", "Middle East", "MENA"},
	LocLatinAmerica:  {"LATAM", "Latin America", "Latin American", "South America", "South American", "Central America", "Caribbean", "América Latina", "Amérique latine", "Lateinamerika", "Sudamérica", "Südamerika"},
	LocAmericas:      {"Americas", "the Americas", "AMER", "North and South America", "Amériques"},
	LocNorthAmerica:  {"North America", "Northern America", "North American", "Amérique du Nord", "Nordamerika", "Norteamérica"},
	LocAsiaPacific:   {"APAC", "Asia", "Asian", "Asia Pacific", "Asia-Pac", "Oceania", "Asie", "Asien"},
	LocAfrica:        {"Africa", "African", "Afrique", "Afrika", "África"},
	"AT,CH,DE":       {"DACH"},
	"BE,LU,NL":       {"Benelux"},
	"DK,FI,IS,NO,SE": {"Nordics", "Nordic", "Nordic countries"},
	"DK,NO,SE":       {"Scandinavia", "Scandinavian"},
	"EE,LT,LV":       {"Baltics", "Baltic states"},
	"GB,IE":          {"British Isles"},
	"AU,NZ":          {"ANZ"},
	"DE":             {"Deutschlandweit", "Bundesweit"},
}

// locZoneAbbrs are named time zones written in capitals.
var locZoneAbbrs = map[string]string{
	"CET": LocEurope, "CEST": LocEurope, "MET": LocEurope, "MEST": LocEurope, "WET": LocEurope,
	"EET": LocEurope, "EEST": LocEurope, // not WEST, a word in "USA (WEST COAST)"
	"EST": "US", "EDT": "US", "CST": "US", "CDT": "US", "MST": "US", "MDT": "US", "PST": "US", "PDT": "US",
	"AKST": "US", "AKDT": "US", "HST": "US",
	"BST": "GB", "IST": "IN", "MSK": "RU", "JST": "JP", "KST": "KR", "SGT": "SG", "HKT": "HK",
	"AEST": "AU", "AEDT": "AU", "ACST": "AU", "ACDT": "AU", "AWST": "AU", "NZST": "NZ", "NZDT": "NZ",
	"SAST": "ZA", "WAT": LocAfrica, "CAT": LocAfrica, "EAT": LocAfrica, "BRT": "BR",
}

// locZoneNames are named time zones written out.
var locZoneNames = map[string][]string{
	"US": {
		"Eastern Time", "Central Time", "Mountain Time", "Pacific Time", "Eastern Standard Time",
		"Central Standard Time", "Mountain Standard Time", "Pacific Standard Time",
	},
	LocEurope: {"Greenwich Mean Time", "Central European Time", "Western European Time", "Eastern European Time"},
}

// locUSStates are the two-letter codes of US states and DC.
var locUSStates = map[string]bool{
	"AL": true, "AK": true, "AZ": true, "AR": true, "CA": true, "CO": true, "CT": true, "DE": true, "FL": true,
	"GA": true, "HI": true, "ID": true, "IL": true, "IN": true, "IA": true, "KS": true, "KY": true, "LA": true,
	"ME": true, "MD": true, "MA": true, "MI": true, "MN": true, "MS": true, "MO": true, "MT": true, "NE": true,
	"NV": true, "NH": true, "NJ": true, "NM": true, "NY": true, "NC": true, "ND": true, "OH": true, "OK": true,
	"OR": true, "PA": true, "RI": true, "SC": true, "SD": true, "TN": true, "TX": true, "UT": true, "VT": true,
	"VA": true, "WA": true, "WV": true, "WI": true, "WY": true, "DC": true,
}

// locAloneNotStates are state codes that are English words when alone.
var locAloneNotStates = map[string]bool{"OR": true, "OK": true, "HI": true}

// locCAProvinces are the two-letter codes of Canadian provinces and
// territories.
var locCAProvinces = map[string]bool{
	"ON": true, "QC": true, "BC": true, "AB": true, "MB": true, "SK": true, "NS": true, "NB": true, "NL": true,
	"PE": true, "YT": true, "NT": true, "NU": true,
}

// locSubdivisions are states, provinces and regions, by their country.
// Georgia is the country unless it follows a known US city.
var locSubdivisions = map[string][]string{
	"US": {
		"Alabama", "Alaska", "Arizona", "Arkansas", "California", "Colorado", "Connecticut", "Delaware",
		"Florida", "Hawaii", "Idaho", "Illinois", "Indiana", "Iowa", "Kansas", "Kentucky", "Louisiana", "Maine",
		"Maryland", "Massachusetts", "Michigan", "Minnesota", "Mississippi", "Missouri", "Montana", "Nebraska",
		"Nevada", "New Hampshire", "New Jersey", "New Mexico", "New York", "North Carolina", "North Dakota",
		"Ohio", "Oklahoma", "Oregon", "Pennsylvania", "Rhode Island", "South Carolina", "South Dakota",
		"Tennessee", "Texas", "Utah", "Vermont", "Virginia", "Washington", "West Virginia", "Wisconsin",
		"Wyoming", "District of Columbia", "New England",
	},
	"CA": {
		"Ontario", "Quebec", "British Columbia", "Alberta", "Manitoba", "Saskatchewan", "Nova Scotia",
		"New Brunswick", "Newfoundland", "Newfoundland and Labrador", "Prince Edward Island", "Yukon",
		"Northwest Territories", "Nunavut",
	},
	"FR": {
		"Île-de-France", "Auvergne-Rhône-Alpes", "Provence-Alpes-Côte d'Azur", "Occitanie",
		"Nouvelle-Aquitaine", "Hauts-de-France", "Grand Est", "Bretagne", "Normandie", "Pays de la Loire",
		"Centre-Val de Loire", "Bourgogne-Franche-Comté", "Corse",
	},
	"GB": {"Scotland", "Wales", "Northern Ireland", "Greater London"},
	"DE": {
		"Bayern", "Bavaria", "Baden-Württemberg", "Baden-Wuerttemberg", "Nordrhein-Westfalen", "NRW",
		"North Rhine-Westphalia", "Hessen", "Hesse", "Niedersachsen", "Lower Saxony", "Sachsen", "Saxony",
		"Schleswig-Holstein", "Rheinland-Pfalz", "Thüringen", "Saarland",
	},
	"ES": {"Catalonia", "Catalunya", "Cataluña"},
	"AU": {"New South Wales", "Queensland", "Tasmania"},
}

// locCities are major cities, by their country: the cities job offers
// name most, whose names are no other place's.
var locCities = map[string][]string{
	"DE": {
		"Berlin", "München", "Muenchen", "Munich", "Hamburg", "Frankfurt", "Frankfurt am Main", "Köln",
		"Koeln", "Cologne", "Stuttgart", "Düsseldorf", "Duesseldorf", "Leipzig", "Dresden",
	},
	"FR": {"Paris", "Lyon", "Marseille", "Toulouse", "Lille", "Bordeaux", "Nantes"},
	"GB": {"London", "Manchester", "Edinburgh", "Glasgow", "Bristol", "Leeds"},
	"NL": {"Amsterdam", "Rotterdam", "Utrecht", "Eindhoven", "The Hague", "Den Haag"},
	"CH": {"Zürich", "Zurich", "Geneva", "Genève", "Genf", "Basel", "Lausanne"},
	"AT": {"Vienna", "Wien"},
	"BE": {"Brussels", "Bruxelles", "Brussel", "Antwerp"},
	"PT": {"Lisbon", "Lisboa", "Porto"},
	"ES": {"Madrid", "Barcelona"},
	"IT": {"Milan", "Milano", "Rome", "Roma", "Turin", "Torino"},
	"PL": {"Warsaw", "Warszawa", "Kraków", "Krakow", "Wrocław", "Wroclaw", "Gdańsk", "Gdansk", "Poznań", "Poznan"},
	"IE": {"Dublin"},
	"DK": {"Copenhagen", "København"},
	"SE": {"Stockholm", "Gothenburg"},
	"NO": {"Oslo"},
	"FI": {"Helsinki"},
	"CZ": {"Prague", "Praha"},
	"HU": {"Budapest"},
	"RO": {"Bucharest", "București"},
	"UA": {"Kyiv", "Kiev"},
	"EE": {"Tallinn"},
	"LT": {"Vilnius"},
	"LV": {"Riga"},
	"TR": {"Istanbul"},
	"US": {
		"New York City", "NYC", "San Francisco", "Bay Area", "SF Bay Area", "Silicon Valley", "Seattle",
		"Austin", "Boston", "Chicago", "Los Angeles", "Denver", "Atlanta", "Miami", "San Diego",
		"Washington DC", "Washington D.C.", "Philadelphia", "Dallas", "Houston", "Jersey City",
	},
	"CA": {"Toronto", "Vancouver", "Montreal", "Montréal", "Ottawa", "Calgary"},
	"AU": {"Sydney", "Melbourne", "Brisbane"},
	"NZ": {"Auckland"},
	"JP": {"Tokyo"},
	"IN": {"Bangalore", "Bengaluru", "Mumbai", "Delhi", "New Delhi", "Hyderabad", "Pune", "Chennai"},
	"BR": {"São Paulo", "Sao Paulo", "Rio de Janeiro"},
	"MX": {"Mexico City", "Ciudad de México"},
	"AR": {"Buenos Aires"},
	"CO": {"Bogotá", "Bogota"},
	"IL": {"Tel Aviv"},
	"AE": {"Dubai"},
	"ZA": {"Cape Town", "Johannesburg"},
	"NG": {"Lagos"},
	"KE": {"Nairobi"},
	"EG": {"Cairo"},
	"CN": {"Shanghai", "Beijing", "Shenzhen"},
	"KR": {"Seoul"},
	"PH": {"Manila"},
	"TH": {"Bangkok"},
	"VN": {"Ho Chi Minh City"},
	"MY": {"Kuala Lumpur"},
}

// locNoise are words that say how, not where: a part of only these is no
// town.
var locNoise = map[string]bool{
	"remote": true, "remotely": true, "fully": true, "full": true, "hybrid": true, "onsite": true, "on": true,
	"site": true, "office": true, "only": true, "based": true, "home": true, "homeoffice": true, "work": true,
	"from": true, "in": true, "the": true, "time": true, "part": true, "flexible": true, "preferred": true,
	"required": true, "location": true, "locations": true, "multiple": true, "various": true, "tbd": true,
	"any": true, "all": true, "telework": true, "teletravail": true, "télétravail": true, "first": true,
	"friendly": true, "optional": true, "countries": true, "country": true, "timezone": true, "timezones": true,
	"zone": true, "zones": true, "hours": true, "n": true, "a": true,
}
