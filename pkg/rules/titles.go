package rules

import (
	"errors"
	"fmt"
	"html"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Job titles: ParseTitle reads a title as job APIs and boards write it
// into a normalised title, a seniority and a job family.

// Seniorities are the seniorities ParseTitle returns, from the least to
// the most senior.
var Seniorities = []string{"intern", "junior", "mid", "senior", "staff", "lead", "principal", "head"}

// FamilyRule maps titles to a job family: the first rule, in order, one of
// whose patterns matches title_norm on word boundaries, case-insensitively,
// wins. A pattern is words (and may hold spaces: "data engineer", "site
// reliability"); "cto" does not match inside "director". Patterns are read
// as titles are (lower case, the same synonyms folded: "full-stack" is
// "full stack") and compared without accents ("développeur" matches
// "developpeur").
type FamilyRule struct {
	Family   string
	Patterns []string
}

// Families is a compiled table of FamilyRule, safe for concurrent use.
type Families struct {
	rules []titleFamily
}

type titleFamily struct {
	family   string
	patterns []string // normalised and unaccented
}

// CompileFamilies checks and prepares a declared table: an empty family, a
// pattern with no word, or a family declared twice is an error naming it.
func CompileFamilies(rules []FamilyRule) (*Families, error) {
	f := &Families{}
	seen := map[string]bool{}
	var errs []error
	for i, r := range rules {
		name := strings.TrimSpace(r.Family)
		switch {
		case name == "":
			errs = append(errs, fmt.Errorf("job family rule %d: empty family", i+1))
			continue
		case seen[name]:
			errs = append(errs, fmt.Errorf("job family %q: declared twice", name))
			continue
		case len(r.Patterns) == 0:
			errs = append(errs, fmt.Errorf("job family %q: no patterns", name))
			continue
		}
		seen[name] = true
		tf := titleFamily{family: name}
		for _, p := range r.Patterns {
			n := titleUnaccent(titleNorm(p))
			if n == "" {
				errs = append(errs, fmt.Errorf("job family %q: pattern %q has no word", name, p))
				continue
			}
			tf.patterns = append(tf.patterns, n)
		}
		f.rules = append(f.rules, tf)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("job families: %w", errors.Join(errs...))
	}
	return f, nil
}

// Family returns the family of the first rule one of whose patterns
// matches the normalised title norm on word boundaries, or "".
func (f *Families) Family(norm string) string {
	if f == nil {
		return ""
	}
	s := titleUnaccent(norm)
	for _, r := range f.rules {
		for _, p := range r.patterns {
			if titleHasWords(s, p) {
				return r.family
			}
		}
	}
	return ""
}

// Title is a job title read.
type Title struct {
	// Norm is the title in lower case, without what does not name the
	// role, synonyms folded, words separated by single spaces:
	//   - gender markers are removed: (m/w/d), (m/f/d), (f/m/x), (w/m/d),
	//     (h/f), (f/h), (gn), (all genders), (alle Geschlechter), and m/w/d,
	//     h/f, F/H… without parentheses; so are French and German inclusive
	//     endings (développeur·se, ingénieur(e), chargé.e, Entwickler*in);
	//   - a part in parentheses or brackets is removed when it is a gender
	//     marker, or places, work modes, time zones and amounts only
	//     (cities, countries, regions, remote, hybrid, part-time, UTC+1,
	//     €60k–80k: "(Berlin)", "(Remote, EU)"), or one to three
	//     capitalised words naming no role, technology or seniority
	//     ("(Gdańsk)"); otherwise only the brackets and commas go
	//     ("(Python, Django)" → "python django");
	//   - what follows the first " - ", " – ", " — ", " | ", ", ", " @ " or
	//     " · " is removed ("Senior Go Developer (Berlin) - Remote" →
	//     "senior go developer"), unless what precedes it names only a
	//     seniority ("Intern, Product Design" → "intern product design");
	//   - HTML tags are removed and entities decoded, invalid UTF-8,
	//     control characters and punctuation other than + # . / - ' &
	//     inside words become spaces, "&" stands as a word of its own;
	//   - synonyms are folded: full-stack, fullstack → full stack;
	//     front-end, front end → frontend; back-end, back end → backend;
	//     dev ops, dev-ops → devops; sr, sr., snr → senior; jr, jr., jnr →
	//     junior; ux/ui → ui/ux ("ml", "qa", "sre" are kept as written).
	// Only the first 4 KiB of the title are read; a word longer than 64
	// bytes is dropped and Norm holds at most 256 bytes (whole words).
	// ParseTitle of a Norm has that same Norm.
	Norm string
	// Seniority is one of Seniorities, read from Norm's words: intern
	// (intern, internship, stage, stagiaire, werkstudent, working student,
	// praktikant, apprenti(e), apprentice, alternance, alternant, azubi…),
	// junior (junior, jr, entry level, graduate, trainee, débutant),
	// mid (mid, medior, intermediate, confirmé), senior (senior, sr, sénior),
	// staff, lead (lead, tech lead, team lead, leader, chef d'équipe;
	// not "lead generation"), principal (principal, distinguished), head
	// (head of, director, directeur, VP, vice president, chief, CTO and
	// the other C-levels, Leiter). An intern word makes the title intern;
	// otherwise the most senior word found wins ("Senior Staff Engineer"
	// is staff, "Senior Tech Lead" lead). A title naming none is "mid".
	Seniority string
	// Family is the family of the first rule of the Families that matches
	// Norm; "" when none does or when there are no Families.
	Family string
}

// ParseTitle reads a job title: its normalised form, its seniority and,
// by f (which may be nil), its job family. It never fails: an empty or
// unreadable title has an empty Norm, seniority mid and no family.
func ParseTitle(title string, f *Families) Title {
	norm := titleNorm(title)
	return Title{Norm: norm, Seniority: titleSeniorityOf(norm), Family: f.Family(norm)}
}

// Bounds on what a title's parser reads and writes.
const (
	titleMaxInput = 4 << 10
	titleMaxWord  = 64
	titleMaxNorm  = 256
)

var (
	titleTag = regexp.MustCompile(`<[^<>]*>`)
	// An inclusive French ending after a letter: développeur·se,
	// ingénieur.e, chargé·e·s, ingénieur(e), développeur(euse).
	titleFrenchEnding = regexp.MustCompile(`(?i)(\pL)(?:(?:[·•.](?:e|se|euse|rice|trice|fe|ne|le|ère|ere|ive|es|s))+|\((?:e|se|euse|rice|trice|fe|ne|le|ère|ere|ive|es)\))([^\pL\pN]|$)`)
	// A German inclusive ending: Entwickler*in, Entwickler:innen,
	// Entwickler/-in, Entwickler_in, Entwickler(in).
	titleGermanEnding = regexp.MustCompile(`(?i)(\pL)(?:[*:_/]|/-|\()innen\)?([^\pL\pN]|$)|(\pL)(?:[*:_/]|/-|\()in\)?([^\pL\pN]|$)`)
	// A group in parentheses or brackets, not nested.
	titleGroup = regexp.MustCompile(`[(\[]([^()\[\]]{0,200})[)\]]`)
	// A gender marker, the whole content of a group.
	titleGenderGroup = regexp.MustCompile(`(?i)^\s*(?:` + titleGenderLetter + `(?:(?:\s*[/|,.\-*]\s*|\s+)` + titleGenderLetter + `)+|gn\*?|mwd|mfd|wmd|fmd|all genders|alle geschlechter|geschlechtsneutral|tous genres)\s*$`)
	// A gender marker as a word: m/w/d, h/f, F/H.
	titleGenderWord = regexp.MustCompile(`^` + titleGenderLetter + `(?:/` + titleGenderLetter + `)+$`)
	// What separates the parts of a group kept in a title.
	titleGroupSeps = strings.NewReplacer(",", " ", "|", " ", ";", " ", " - ", " ", " – ", " ", " — ", " ")
	// The separators before a title's tail.
	titleTails = []string{" - ", " – ", " — ", " | ", ", ", " @ ", " · "}
)

const titleGenderLetter = `(?:m|w|f|d|x|h|i|div\.?|divers|diverse)`

// titleNorm is Title.Norm of s.
func titleNorm(s string) string {
	if len(s) > titleMaxInput {
		s = s[:titleMaxInput]
	}
	s = strings.ToValidUTF8(s, " ")
	s = titleTag.ReplaceAllString(s, " ")
	s = html.UnescapeString(s)
	s = titleTag.ReplaceAllString(s, " ")
	s = titleFrenchEnding.ReplaceAllString(s, "$1$2")
	s = titleGermanEnding.ReplaceAllString(s, "$1$2$3$4")
	s = titleGroup.ReplaceAllStringFunc(s, titleGroupText)
	s = strings.Join(strings.FieldsFunc(s, titleSpace), " ")
	s = titleCutTail(s)
	return titleWords(strings.ToLower(s))
}

// titleSpace reports whether r separates words: white space or a control
// character.
func titleSpace(r rune) bool {
	return unicode.IsSpace(r) || unicode.IsControl(r) || r == utf8.RuneError
}

// titleCutTail removes what follows the first tail separator after a
// head that holds more than seniority words ("Intern, Product Design"
// keeps its tail).
func titleCutTail(s string) string {
	for off := 0; off < len(s); {
		cut, size := -1, 0
		for _, sep := range titleTails {
			if i := strings.Index(s[off:], sep); i >= 0 && (cut < 0 || i < cut) {
				cut, size = i, len(sep)
			}
		}
		if cut < 0 {
			break
		}
		if head := s[:off+cut]; !titleOnlySeniority(head) {
			return head
		}
		off += cut + size
	}
	return s
}

// titleOnlySeniority reports whether s holds no word but seniority words.
func titleOnlySeniority(s string) bool {
	words := strings.FieldsFunc(titleUnaccent(strings.ToLower(s)), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '\''
	})
	for i := 0; i < len(words); i++ {
		if i+1 < len(words) {
			if sen := titleSeniorityPairs[[2]string{words[i], words[i+1]}]; sen != "" {
				i++
				continue
			}
		}
		if titleSeniorityWords[words[i]] == "" && titleSeniorityWords[titleSynonyms[words[i]]] == "" {
			return false
		}
	}
	return true
}

// titleGroupText is what remains of a group in parentheses or brackets.
func titleGroupText(g string) string {
	content := titleGroupSeps.Replace(g[1 : len(g)-1])
	if titleGenderGroup.MatchString(content) || titlePlace(content) || titleUnknownNames(content) {
		return " "
	}
	return " " + content + " "
}

// titlePlace reports whether every word of s names a place or a work mode:
// a word of titlePlaceWords, a time zone, or a country that is not also a
// role ("(QA)" is no Qatar).
func titlePlace(s string) bool {
	parts := strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return r == ',' || r == '/' || r == '|' || r == ';' || r == '&' || r == '+' || titleSpace(r)
	})
	if len(parts) == 0 {
		return false
	}
	// A country's name may have several words: try them together first.
	if _, ok := titleCountries[fold(s)]; ok && len(parts) > 1 {
		return true
	}
	for _, p := range parts {
		p = titleUnaccent(strings.Trim(p, ".-:"))
		switch _, country := titleCountries[fold(p)]; {
		case p == "" || titlePlaceWords[p] || titleOffset.MatchString(p) || titleAmount.MatchString(p):
		case titleRoleWords[p]:
			return false
		case !country:
			return false
		}
	}
	return true
}

var (
	// A time zone's offset: utc-5, +1, ±3h.
	titleOffset = regexp.MustCompile(`^(?:utc|gmt|cet|cest|est|pst|[+±-])?[+±-]?\d{1,2}(?::\d\d)?h?%?$`)
	// An amount or a share: 100%, €60k-80k, $120,000.
	titleAmount = regexp.MustCompile(`^[€$£]?\d[\d.,'’]*(?:k|k€)?(?:[-–][€$£]?\d[\d.,'’]*(?:k|k€)?)?[€$£%]?$`)
)

// titleUnknownNames reports whether s is one to three capitalised words
// none of which names a role, a technology or a seniority: a place the
// tables lack, such as "(Gdańsk)".
func titleUnknownNames(s string) bool {
	words := strings.Fields(s)
	if len(words) == 0 || len(words) > 3 {
		return false
	}
	for _, w := range words {
		r, _ := utf8.DecodeRuneInString(w)
		if !unicode.IsUpper(r) {
			return false
		}
		for _, part := range strings.FieldsFunc(strings.ToLower(w), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '+' && r != '#' }) {
			if titleRoleWords[titleUnaccent(part)] || titleSeniorityWords[titleUnaccent(part)] != "" {
				return false
			}
		}
	}
	return true
}

// titleWords cuts the lower-case s into words, cleans and folds them, and
// joins them with single spaces.
func titleWords(s string) string {
	var words []string
	var b strings.Builder
	flush := func() {
		if b.Len() > 0 {
			words = append(words, b.String())
			b.Reset()
		}
	}
	for _, r := range s {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r):
			b.WriteRune(r)
		case r == '+' || r == '#' || r == '.' || r == '/' || r == '-' || r == '\'':
			b.WriteRune(r)
		case r == '’' || r == 'ʼ':
			b.WriteByte('\'')
		case r == '&':
			flush()
			words = append(words, "&")
		default:
			flush()
		}
	}
	flush()
	out := make([]string, 0, len(words))
	for _, w := range words {
		if w != "&" {
			w = strings.TrimLeft(strings.TrimRight(w, "-/'."), "-/'#+")
			if !strings.ContainsFunc(w, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }) {
				continue
			}
		}
		if len(w) > titleMaxWord || titleGenderWord.MatchString(w) {
			continue
		}
		if syn, ok := titleSynonyms[w]; ok {
			out = append(out, strings.Fields(syn)...)
			continue
		}
		out = append(out, w)
	}
	// Synonyms of two words.
	joined := out[:0]
	for i := 0; i < len(out); i++ {
		if i+1 < len(out) {
			if syn, ok := titlePairs[[2]string{out[i], out[i+1]}]; ok {
				joined = append(joined, syn)
				i++
				continue
			}
		}
		joined = append(joined, out[i])
	}
	n := 0
	for i, w := range joined {
		if n+len(w)+min(i, 1) > titleMaxNorm {
			joined = joined[:i]
			break
		}
		n += len(w) + min(i, 1)
	}
	return strings.Join(joined, " ")
}

// titleSynonyms fold a word to its usual spelling.
var titleSynonyms = map[string]string{
	"fullstack": "full stack", "full-stack": "full stack",
	"front-end": "frontend", "back-end": "backend",
	"dev-ops": "devops",
	"sr":      "senior", "snr": "senior", "jr": "junior", "jnr": "junior",
	"ux/ui": "ui/ux",
}

// titlePairs fold two words to one.
var titlePairs = map[[2]string]string{
	{"front", "end"}: "frontend", {"back", "end"}: "backend", {"dev", "ops"}: "devops",
}

// titleSeniorityWords map words to the seniority they name. Words of
// titleSeniorityPairs are read first.
var titleSeniorityWords = map[string]string{
	"intern": "intern", "interns": "intern", "internship": "intern", "stagiaire": "intern", "stage": "intern",
	"werkstudent": "intern", "werkstudentin": "intern", "werkstudierende": "intern",
	"praktikant": "intern", "praktikantin": "intern", "praktikum": "intern",
	"apprenti": "intern", "apprentie": "intern", "apprentice": "intern", "apprenticeship": "intern",
	"alternance": "intern", "alternant": "intern", "alternante": "intern",
	"azubi": "intern", "auszubildende": "intern", "auszubildender": "intern", "ausbildung": "intern",
	"junior": "junior", "graduate": "junior", "trainee": "junior", "debutant": "junior",
	"debutante": "junior", "einsteiger": "junior", "berufseinsteiger": "junior",
	"mid": "mid", "medior": "mid", "intermediate": "mid", "confirme": "mid", "confirmee": "mid",
	"senior": "senior", "seniors": "senior",
	"staff": "staff",
	"lead":  "lead", "leader": "lead", "teamlead": "lead", "techlead": "lead", "teamleiter": "lead",
	"teamleiterin": "lead", "teamleitung": "lead",
	"principal": "principal", "principale": "principal", "distinguished": "principal",
	"head": "head", "director": "head", "directeur": "head", "directrice": "head", "direktor": "head",
	"direktorin": "head", "vp": "head", "svp": "head", "evp": "head", "chief": "head",
	"cto": "head", "ceo": "head", "cfo": "head", "coo": "head", "cio": "head", "cpo": "head",
	"cmo": "head", "ciso": "head", "leiter": "head", "leiterin": "head", "leitung": "head",
	"abteilungsleiter": "head", "bereichsleiter": "head",
}

// titleSeniorityPairs map two words to the seniority they name, "" for
// none: they win over their words.
var titleSeniorityPairs = map[[2]string]string{
	{"working", "student"}: "intern", {"entry", "level"}: "junior",
	{"vice", "president"}: "head", {"chef", "d'equipe"}: "lead",
	{"lead", "generation"}: "", {"lead", "gen"}: "", {"stage", "manager"}: "",
}

// titleSeniorityRank orders the seniorities; intern is apart.
var titleSeniorityRank = map[string]int{"junior": 1, "mid": 2, "senior": 3, "staff": 4, "lead": 5, "principal": 6, "head": 7}

// titleSeniorityOf reads the seniority of a normalised title.
func titleSeniorityOf(norm string) string {
	words := strings.FieldsFunc(titleUnaccent(norm), func(r rune) bool { return r == ' ' || r == '-' || r == '/' })
	best := ""
	for i := 0; i < len(words); i++ {
		s, ok := "", false
		if i+1 < len(words) {
			s, ok = titleSeniorityPairs[[2]string{words[i], words[i+1]}]
		}
		if ok {
			i++
		} else {
			s = titleSeniorityWords[words[i]]
		}
		switch {
		case s == "intern":
			return "intern"
		case s != "" && titleSeniorityRank[s] > titleSeniorityRank[best]:
			best = s
		}
	}
	if best == "" {
		return "mid"
	}
	return best
}

// titleHasWords reports whether the words p occur in s on word boundaries:
// neither preceded nor followed by a letter or a digit.
func titleHasWords(s, p string) bool {
	for off := 0; off <= len(s)-len(p); {
		i := strings.Index(s[off:], p)
		if i < 0 {
			return false
		}
		i += off
		before, _ := utf8.DecodeLastRuneInString(s[:i])
		after, _ := utf8.DecodeRuneInString(s[i+len(p):])
		if !titleWordRune(before) && !titleWordRune(after) {
			return true
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		off = i + size
	}
	return false
}

func titleWordRune(r rune) bool {
	return r != utf8.RuneError && (unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r))
}

// titleUnaccent drops the accents of the Latin letters job titles carry.
func titleUnaccent(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r >= 0x80 }) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if a, ok := titleAccents[r]; ok {
			return a
		}
		return r
	}, s)
}

var titleAccents = map[rune]rune{
	'é': 'e', 'è': 'e', 'ê': 'e', 'ë': 'e', 'á': 'a', 'à': 'a', 'â': 'a', 'ä': 'a', 'ã': 'a', 'å': 'a',
	'í': 'i', 'ì': 'i', 'î': 'i', 'ï': 'i', 'ó': 'o', 'ò': 'o', 'ô': 'o', 'ö': 'o', 'õ': 'o',
	'ú': 'u', 'ù': 'u', 'û': 'u', 'ü': 'u', 'ç': 'c', 'ñ': 'n', 'ß': 's',
}

// titleCountries maps country names, folded, to their codes.
var titleCountries = countryIndex()

// titlePlaceWords are words naming places and work modes, unaccented, as
// titles put them in parentheses.
var titlePlaceWords = titleSet(
	// Work modes and connectors.
	"remote", "remotely", "hybrid", "hybride", "onsite", "on-site", "on", "site", "office", "in", "or", "and",
	"ou", "oder", "und", "et", "y", "o", "to", "till", "bis", "a", "from", "home", "homeoffice", "home-office", "telework", "teletravail",
	"full", "partial", "partially", "fully", "first", "remote-first", "100", "100%", "only", "based",
	"anywhere", "worldwide", "global", "international", "timezone", "timezones", "time", "zone", "zones",
	"utc", "gmt", "cet", "cest", "est", "edt", "pst", "pdt", "cst", "mst", "bst", "tz",
	"part-time", "full-time", "part", "contract", "contractor", "freelance", "freelancer", "interim",
	"temporary", "temp", "permanent", "cdi", "cdd", "wfh", "remote-friendly",
	"vollzeit", "teilzeit", "festanstellung", "befristet", "mwst", "relocation", "visa", "sponsorship",
	"possible", "optional", "flexible", "distanciel", "presentiel", "europaweit",
	"deutschlandweit", "bundesweit", "france", "entiere", "all", "over", "the", "of", "de", "du", "la", "le",
	"les", "des", "am", "main", "an", "der", "city", "area", "region", "greater", "metro", "hq",
	// Regions.
	"eu", "europe", "european", "emea", "apac", "latam", "amer", "americas", "na", "north", "south", "east",
	"west", "central", "northern", "southern", "eastern", "western", "dach", "benelux", "nordics", "nordic",
	"cee", "mena", "asia", "africa", "oceania", "uk", "us", "usa", "ww", "ch", "de", "fr", "nl", "at", "es",
	"pl", "pt", "be", "ie", "se", "dk", "no", "fi", "cz",
	"idf", "ile-de-france", "bay", "bavaria", "bayern",
	// Cities that titles name.
	"berlin", "munchen", "munich", "hamburg", "frankfurt", "koln", "cologne", "dusseldorf", "stuttgart",
	"leipzig", "dresden", "hannover", "nurnberg", "nuremberg", "bremen", "essen", "dortmund", "karlsruhe",
	"mannheim", "bonn", "potsdam", "wien", "vienna", "graz", "linz", "zurich", "geneva", "geneve", "genf",
	"basel", "bern", "lausanne", "paris", "lyon", "marseille", "toulouse", "bordeaux", "lille", "nantes",
	"nice", "rennes", "strasbourg", "montpellier", "grenoble", "sophia", "antipolis", "london", "manchester",
	"edinburgh", "glasgow", "bristol", "cambridge", "oxford", "leeds", "birmingham", "belfast", "dublin",
	"cork", "amsterdam", "rotterdam", "utrecht", "eindhoven", "the", "hague", "brussels", "bruxelles",
	"antwerp", "ghent", "luxembourg", "lisbon", "lisboa", "porto", "madrid", "barcelona", "valencia",
	"malaga", "seville", "milan", "milano", "rome", "roma", "turin", "torino", "warsaw", "warszawa", "krakow",
	"wroclaw", "gdansk", "poznan", "prague", "praha", "brno", "budapest", "bucharest", "sofia", "athens",
	"stockholm", "gothenburg", "malmo", "copenhagen", "oslo", "helsinki", "tallinn", "riga", "vilnius",
	"kyiv", "kiev", "lviv", "istanbul", "tel", "aviv", "dubai", "new", "york", "nyc", "san", "francisco",
	"sf", "los", "angeles", "la", "seattle", "austin", "boston", "chicago", "denver", "atlanta", "miami",
	"toronto", "vancouver", "montreal", "ottawa", "mexico", "sao", "paulo", "buenos", "aires", "bogota",
	"santiago", "lima", "bangalore", "bengaluru", "mumbai", "delhi", "hyderabad", "pune", "singapore",
	"tokyo", "seoul", "sydney", "melbourne", "auckland", "ny", "ca", "wa", "tx", "ma", "il", "co",
)

// titleRoleWords are words that name a role or a technology: a group of
// capitalised words holding one is kept ("(Backend)", "(Go)"). They are
// the words below and those of DefaultJobFamilies' patterns.
var titleRoleWords = titleRoleSet()

func titleRoleSet() map[string]bool {
	m := titleSet(titleRoleList...)
	for _, r := range DefaultJobFamilies {
		for _, p := range r.Patterns {
			for _, w := range strings.Fields(titleUnaccent(strings.ToLower(p))) {
				if len(w) > 2 && !titleStopWords[w] {
					m[w] = true
				}
			}
		}
	}
	return m
}

// titleStopWords are the words of patterns that name no role.
var titleStopWords = titleSet("des", "the", "and", "for", "und", "et", "zum", "von")

var titleRoleList = []string{
	"backend", "frontend", "full", "stack", "fullstack", "data", "science", "ml", "ai", "devops", "sre",
	"cloud", "platform", "infrastructure", "security", "qa", "test", "mobile", "ios", "android", "web",
	"ux", "ui", "design", "product", "sales", "marketing", "support", "engineering", "engineer", "developer",
	"go", "golang", "java", "python", "ruby", "rails", "php", "node", "node.js", "nodejs", "javascript",
	"typescript", "react", "vue", "vue.js", "angular", "svelte", "net", ".net", "c#", "c++", "c", "rust",
	"scala", "kotlin", "swift", "flutter", "elixir", "erlang", "haskell", "clojure", "perl", "sql",
	"postgresql", "kafka", "spark", "aws", "gcp", "azure", "kubernetes", "k8s", "docker", "terraform",
	"linux", "sap", "salesforce", "django", "spring", "laravel", "symfony", "magento", "shopify",
	"wordpress", "unity", "unreal", "embedded", "firmware", "hardware", "api", "apis", "saas", "b2b", "b2c",
	"fintech", "payments", "growth", "analytics", "bi", "etl", "llm", "nlp", "genai", "blockchain", "web3",
	"crypto", "game", "games", "gaming", "seo", "crm", "erp", "it", "ops", "team", "r&d",
}

func titleSet(words ...string) map[string]bool {
	m := make(map[string]bool, len(words))
	for _, w := range words {
		m[w] = true
	}
	return m
}

// DefaultJobFamilies is an ordered table of job families for the titles
// that job APIs and boards publish, in English, French and German. It
// covers the families `datamill gen jobs` writes (backend, frontend,
// data_engineer, data_scientist, devops, product, design, qa, support)
// and the other common ones (management, security, mobile, fullstack,
// data_analyst, sales, marketing, hr, finance, project). Specific rules
// come before general ones: "Machine Learning Engineer" is data_scientist
// before any engineer is backend, "Product Designer" design before
// product, "React Native" mobile before "React" frontend; the last rule,
// backend, takes the software developers no other names.
var DefaultJobFamilies = []FamilyRule{
	{"management", []string{
		"engineering manager", "head of engineering", "vp engineering", "vp of engineering",
		"director of engineering", "engineering director", "cto", "chief technology officer",
		"head of development", "head of technology", "head of it", "it director", "directeur technique",
		"directeur des systèmes d'information", "dsi", "leiter softwareentwicklung", "teamleiter softwareentwicklung",
		"entwicklungsleiter", "leiter it", "it-leiter", "it-leitung",
	}},
	{"data_scientist", []string{
		"data scientist", "data science", "machine learning", "ml", "ml engineer", "mlops", "ai engineer",
		"ai", "artificial intelligence", "deep learning", "nlp", "computer vision", "research scientist",
		"applied scientist", "llm", "genai", "statistician", "scientifique des données",
	}},
	{"data_engineer", []string{
		"data engineer", "data engineering", "analytics engineer", "ingénieur data", "ingénieur données",
		"ingénieur big data", "big data", "etl", "data platform", "data architect", "data warehouse",
		"dataengineer", "datenengineer", "data ingenieur", "dateningenieur", "head of data",
	}},
	{"data_analyst", []string{
		"data analyst", "bi analyst", "business intelligence", "bi developer", "bi engineer",
		"reporting analyst", "analytics analyst", "datenanalyst", "analyste de données", "data analytics",
		"business analyst", "product analyst", "marketing analyst",
	}},
	{"security", []string{
		"security", "cybersecurity", "cyber security", "cyber", "infosec", "appsec", "devsecops",
		"penetration tester", "pentester", "soc analyst", "sécurité", "it-sicherheit", "informationssicherheit",
		"sicherheit",
	}},
	{"devops", []string{
		"devops", "site reliability", "sre", "platform engineer", "platform engineering", "infrastructure",
		"cloud engineer", "cloud architect", "cloud ops", "cloudops", "sysadmin", "system administrator",
		"systems administrator", "systems engineer", "system engineer", "systemadministrator",
		"systemingenieur", "administrateur système", "administrateur systèmes", "ingénieur système",
		"ingénieur systèmes", "kubernetes", "linux", "network engineer", "netzwerk", "réseau",
		"release engineer", "build engineer", "production engineer", "systemintegration",
	}},
	{"qa", []string{
		"qa", "quality assurance", "test automation", "automation tester", "test engineer", "tester",
		"testeur", "testeuse", "sdet", "software tester", "quality engineer", "testing", "testmanager",
		"softwaretester", "recette",
	}},
	{"support", []string{
		"support", "customer success", "customer service", "customer care", "customer experience",
		"helpdesk", "help desk", "service desk", "servicedesk", "technical account manager",
		"chargé de support", "kundenservice", "kundenbetreuung", "kundensupport", "technicien support",
		"customer support", "it-support",
	}},
	{"mobile", []string{
		"mobile", "ios", "android", "flutter", "react native", "swift", "swiftui", "xamarin",
		"mobile developer", "développeur mobile", "app-entwickler", "app developer",
	}},
	{"design", []string{
		"designer", "design", "ux", "ui/ux", "ux/ui", "user experience", "user research", "ux researcher",
		"graphiste", "webdesigner", "mediengestalter", "grafikdesigner", "illustrator", "art director",
		"motion designer", "concepteur ux",
	}},
	{"product", []string{
		"product manager", "product owner", "chef de produit", "product lead", "head of product",
		"product management", "vp product", "chief product officer", "produktmanager",
		"produktmanagerin", "product director", "group product manager",
	}},
	{"project", []string{
		"project manager", "chef de projet", "cheffe de projet", "projektmanager", "projektleiter",
		"projektleiterin", "scrum master", "agile coach", "delivery manager", "program manager",
		"programme manager", "pmo", "project lead", "directeur de projet",
	}},
	{"sales", []string{
		"sales", "account executive", "account manager", "business development", "business developer",
		"sdr", "bdr", "vertrieb", "vertriebsmitarbeiter", "commercial", "commerciale", "key account",
		"sales engineer", "ingénieur commercial", "ingénieur d'affaires", "account director",
		"partnerships", "außendienst", "aussendienst", "innendienst",
	}},
	{"marketing", []string{
		"marketing", "seo", "sem", "content", "copywriter", "social media", "community manager",
		"brand", "growth", "communication", "communications", "pr manager", "public relations",
		"rédacteur", "redakteur", "onlinemarketing", "lead generation", "demand generation",
	}},
	{"hr", []string{
		"recruiter", "recruiting", "talent acquisition", "talent partner", "human resources", "hr",
		"people partner", "people operations", "people & culture", "ressources humaines", "rh",
		"chargé de recrutement", "personalreferent", "personalreferentin", "personalwesen",
	}},
	{"finance", []string{
		"accountant", "accounting", "finance", "financial", "controller", "controlling", "comptable",
		"comptabilité", "buchhalter", "buchhalterin", "buchhaltung", "bookkeeper", "payroll",
		"auditor", "tax", "treasury", "fp&a",
	}},
	{"fullstack", []string{
		"full stack", "fullstack", "full-stack", "développeur full stack",
	}},
	{"frontend", []string{
		"frontend", "front end", "front-end", "react", "react.js", "reactjs", "vue", "vue.js", "vuejs",
		"angular", "svelte", "next.js", "javascript", "typescript", "ui developer", "ui engineer",
		"web developer", "webentwickler", "développeur web", "intégrateur", "integrateur web", "css",
		"frontend-entwickler",
	}},
	{"backend", []string{
		"backend", "back end", "back-end", "go developer", "go engineer", "go entwickler", "golang",
		"java", "python", "ruby", "rails", "php", "node", "node.js", "nodejs", ".net", "c#", "c++",
		"scala", "elixir", "rust", "kotlin", "django", "spring", "laravel", "symfony", "api",
		"software engineer", "software developer", "software engineering", "softwareentwickler",
		"softwareentwicklerin", "software-entwickler", "softwareingenieur", "entwickler", "developer",
		"développeur", "programmer", "programmeur", "programmierer", "ingénieur logiciel",
		"ingénieur développement", "études et développement", "software architect",
		"software development", "softwareentwicklung", "tech lead", "lead engineer", "staff engineer",
		"principal engineer", "senior engineer", "anwendungsentwicklung", "fachinformatiker",
	}},
}
