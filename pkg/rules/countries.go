package rules

import (
	_ "embed"
	"strings"
)

//go:embed countries.tsv
var countriesTSV string

// otherNames are country names in the other languages and forms that real
// exports carry, beyond the English names of countries.tsv.
var otherNames = map[string][]string{
	"DE": {"Allemagne", "Deutschland", "Alemania", "Germania", "BRD"},
	"FR": {"Frankreich", "Francia", "République française"},
	"ES": {"Espagne", "España", "Spanien", "Spagna"},
	"IT": {"Italie", "Italien", "Italia"},
	"GB": {"UK", "U.K.", "Great Britain", "England", "Royaume-Uni", "Grossbritannien", "Reino Unido"},
	"US": {"USA", "U.S.A.", "U.S.", "US of A", "America", "États-Unis", "Etats-Unis", "Vereinigte Staaten", "Estados Unidos"},
	"NL": {"Holland", "Pays-Bas", "Niederlande", "Países Bajos", "Nederland"},
	"BE": {"Belgique", "Belgien", "België", "Bélgica"},
	"CH": {"Suisse", "Schweiz", "Svizzera", "Suiza"},
	"AT": {"Autriche", "Österreich", "Austria"},
	"PT": {"Portugal"},
	"PL": {"Pologne", "Polen", "Polska", "Polonia"},
	"SE": {"Suède", "Schweden", "Sverige", "Suecia"},
	"BR": {"Brésil", "Brasilien", "Brasil"},
	"CA": {"Kanada", "Canadá"},
	"JP": {"Japon", "Japan", "Nippon", "Japón"},
	"IN": {"Inde", "Indien", "India"},
	"MX": {"Mexique", "Mexiko", "México"},
	"IE": {"Irlande", "Irland", "Éire"},
	"MA": {"Maroc", "Marokko", "Marruecos"},
}

// countryIndex maps every known spelling, folded, to its alpha-2 code.
func countryIndex() map[string]string {
	idx := map[string]string{}
	for _, line := range strings.Split(countriesTSV, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		code := f[0]
		idx[fold(code)] = code
		idx[fold(f[1])] = code
		for _, name := range strings.Split(f[2], "|") {
			idx[fold(name)] = code
		}
	}
	for code, names := range otherNames {
		for _, name := range names {
			idx[fold(name)] = code
		}
	}
	return idx
}

// fold lower-cases s and drops accents, dots, and spaces so that
// "U.S.A." and "usa", "États-Unis" and "etats unis" meet.
func fold(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch r {
		case '.', ' ', '-', '\'', '_':
			continue
		case 'é', 'è', 'ê', 'ë':
			r = 'e'
		case 'á', 'à', 'â', 'ä', 'ã', 'å':
			r = 'a'
		case 'í', 'ì', 'î', 'ï':
			r = 'i'
		case 'ó', 'ò', 'ô', 'ö', 'õ':
			r = 'o'
		case 'ú', 'ù', 'û', 'ü':
			r = 'u'
		case 'ç':
			r = 'c'
		case 'ñ':
			r = 'n'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// CountrySpellings maps every spelling the country rule knows, folded
// (lower-cased, without accents, dots, spaces, hyphens, apostrophes and
// underscores), to its alpha-2 code: for what must read countries as the
// cleaner does without calling it, such as the peer benchmark's Bloblang
// mapping (bench/peers/benthos), which a test checks against this.
func CountrySpellings() map[string]string { return countryIndex() }
