package rules

import (
	"bytes"
	stdhtml "html"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/text/unicode/norm"
)

// TextMaxBytes bounds CleanText: it reads at most this many bytes of its
// input and returns at most this many.
const TextMaxBytes = 1 << 20

// TextOptions choose the steps of CleanText beyond the ones always done.
type TextOptions struct {
	// HTML says the value is HTML: it is converted to plain text. A value
	// holding no tag is read as plain text, its line breaks kept, unless
	// it holds escaped tags ("&lt;p&gt;..."): then it is unescaped once and
	// converted.
	HTML bool
	// DropLines are regular expressions (RE2 syntax, matched without
	// regard to case anywhere in a line of the cleaned text) of lines to
	// drop, such as RemoteOK's "please mention the word ... when applying"
	// anti-spam line. A pattern that does not compile matches its own text
	// literally; Validate reports it.
	DropLines []string
}

// Validate reports the patterns of DropLines that do not compile.
func (o TextOptions) Validate() error {
	for _, p := range o.DropLines {
		if _, err := regexp.Compile("(?i)" + p); err != nil {
			return err
		}
	}
	return nil
}

// textDrops compiles the DropLines patterns, a bad one as a literal.
func (o TextOptions) textDrops() []*regexp.Regexp {
	res := make([]*regexp.Regexp, 0, len(o.DropLines))
	for _, p := range o.DropLines {
		re, err := regexp.Compile("(?i)" + p)
		if err != nil {
			re = regexp.MustCompile("(?i)" + regexp.QuoteMeta(p))
		}
		res = append(res, re)
	}
	return res
}

// CleanText turns a value written by a job API or board into plain text,
// valid UTF-8 of at most TextMaxBytes bytes. In order, it
//
//   - replaces invalid UTF-8 (each run of bad bytes) with U+FFFD and
//     strips a leading byte order mark;
//   - with HTML, converts the value to text: paragraphs, headings, lists
//     and tables are separated by a blank line, a div, table row or <br>
//     ends a line (two <br> a paragraph), each <li> is a line starting
//     with "- " (paragraphs inside it are lines), table cells are
//     separated by a space; <img> (tracking pixels), <script>, <style>,
//     <noscript>, <template>, <iframe>, <svg>, <object>, <title> and
//     comments are dropped, a link keeps its text; whitespace inside the
//     HTML collapses as a browser collapses it (kept in <pre>);
//   - decodes HTML character references ended by ';', also in plain text
//     ("R&amp;D" → "R&D", "&#39;" → "'"), double-escaped ones too;
//   - drops the C0 control characters but line breaks (a tab is a space,
//     CR LF and CR are line breaks);
//   - repairs mojibake, UTF-8 that was read as Windows-1252 or Latin-1,
//     once or twice ("Weâ€™re" → "We’re", "GdaÅ\u0084sk" → "Gdańsk",
//     "MÃƒÂ¼nchen" → "München"): each sequence of a lead character and
//     continuation characters that spells the UTF-8 bytes of a letter or
//     symbol of a common script is replaced by it, a round at a time,
//     only while a round leaves fewer such sequences;
//   - normalises to NFKC (fullwidth "Ｊａｖａ" → "Java", a no-break space →
//     a space, "ﬁ" → "fi");
//   - drops what is left of control and invisible format characters
//     (zero-width space, word joiner, byte order mark, soft hyphen);
//   - trims each line and collapses its runs of spaces to one, drops the
//     lines DropLines match, keeps at most one blank line in a row and
//     none at the ends.
//
// The steps but the first two repeat until the text no longer changes
// (real text takes one round, and another to see it unchanged; at most
// four), so CleanText of its own output, read as plain text, is that
// output.
func CleanText(s string, o TextOptions) string {
	s = textCut(s, TextMaxBytes)
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.TrimPrefix(s, "\uFEFF")
	if o.HTML {
		if !textHasTag.MatchString(s) {
			// HTML escaped once more, as some APIs send it.
			if u := textUnescape(s); textHasTag.MatchString(u) {
				s = u
			}
		}
		if textHasTag.MatchString(s) {
			s = textFromHTML(s)
		}
	}
	drops := o.textDrops()
	for range 4 {
		next := textRound(s, drops)
		if next == s {
			break
		}
		s = next
	}
	return s
}

// textRound is one round of the steps CleanText takes on plain text.
func textRound(s string, drops []*regexp.Regexp) string {
	s = textUnescape(s)
	s = textDropC0(s)
	s = textRepair(s)
	s = textNFKC(s)
	s = textDropInvisible(s)
	s = textLines(s, drops)
	return textCut(s, TextMaxBytes)
}

// textNFKC normalises s to NFKC, stopping past TextMaxBytes: some
// characters expand eighteenfold.
func textNFKC(s string) string {
	if norm.NFKC.QuickSpanString(s) == len(s) {
		return s
	}
	var it norm.Iter
	it.InitString(norm.NFKC, s)
	out := make([]byte, 0, len(s)+len(s)/8)
	for !it.Done() && len(out) <= TextMaxBytes {
		out = append(out, it.Next()...)
	}
	return string(out)
}

// textCut cuts s to at most n bytes, at a rune boundary.
func textCut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}

// textHasTag finds what makes a value HTML: a start or end tag or a
// comment.
var textHasTag = regexp.MustCompile(`<(?:[a-zA-Z][a-zA-Z0-9-]*(?:\s|/?>)|/[a-zA-Z][a-zA-Z0-9-]*\s*>|!--)`)

// textEntity is a character reference ended by ';'.
var textEntity = regexp.MustCompile(`^&(?:#[0-9]{1,8}|#[xX][0-9a-fA-F]{1,7}|[a-zA-Z][a-zA-Z0-9]{1,31});`)

// textUnescape decodes the character references ended by ';' of s. A
// reference that decodes to '&' is read again with what follows it, so
// "&amp;amp;" and "&amp;lt;" are decoded at once.
func textUnescape(s string) string {
	i := strings.IndexByte(s, '&')
	if i < 0 {
		return s
	}
	b := []byte(s)
	out := make([]byte, 0, len(b))
	out = append(out, b[:i]...)
	for i < len(b) {
		if b[i] != '&' {
			j := bytes.IndexByte(b[i:], '&')
			if j < 0 {
				out = append(out, b[i:]...)
				break
			}
			out = append(out, b[i:i+j]...)
			i += j
			continue
		}
		m := textEntity.Find(b[i:min(len(b), i+40)])
		if m == nil {
			out = append(out, '&')
			i++
			continue
		}
		dec := stdhtml.UnescapeString(string(m))
		switch {
		case dec == string(m) || utf8.RuneCountInString(dec) > 2:
			// Not a reference, or only a prefix of it is one ("&ampx;").
			out = append(out, '&')
			i++
		case dec == "&":
			// Read the '&' again in place of the reference's ';'.
			i += len(m) - 1
			b[i] = '&'
		default:
			out = append(out, dec...)
			i += len(m)
		}
	}
	return string(out)
}

// textDropC0 drops the C0 control characters and DEL but line breaks; a
// tab (or a vertical tab or form feed) becomes a space, CR LF and a lone
// CR a line break. C1 controls are left to the mojibake repair, which
// reads them as Latin-1 bytes.
func textDropC0(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\n' || c == 0x7f {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\r':
			if i+1 < len(s) && s[i+1] == '\n' {
				continue
			}
			b.WriteByte('\n')
		case c == '\t' || c == '\v' || c == '\f':
			b.WriteByte(' ')
		case c < ' ' && c != '\n' || c == 0x7f:
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// textCP1252 maps the characters Windows-1252 decodes bytes 0x80-0x9F to
// back to their byte.
var textCP1252 = map[rune]byte{
	'€': 0x80, '‚': 0x82, 'ƒ': 0x83, '„': 0x84, '…': 0x85, '†': 0x86, '‡': 0x87, 'ˆ': 0x88,
	'‰': 0x89, 'Š': 0x8a, '‹': 0x8b, 'Œ': 0x8c, 'Ž': 0x8e, '‘': 0x91, '’': 0x92, '“': 0x93,
	'”': 0x94, '•': 0x95, '–': 0x96, '—': 0x97, '˜': 0x98, '™': 0x99, 'š': 0x9a, '›': 0x9b,
	'œ': 0x9c, 'ž': 0x9e, 'Ÿ': 0x9f,
}

// textContinuation is the UTF-8 continuation byte (0x80-0xBF) that r is
// when a continuation byte is read as Windows-1252 or Latin-1.
func textContinuation(r rune) (byte, bool) {
	if r >= 0x80 && r <= 0xbf {
		return byte(r), true
	}
	b, ok := textCP1252[r]
	return b, ok
}

// textPlausible are the ranges of the characters mojibake is repaired
// into: common scripts, punctuation and symbols. Rare scripts are left out,
// so that text that is right ("à « x »" with no-break spaces would spell
// a Samaritan letter) is left alone.
var textPlausible = []struct{ lo, hi rune }{
	{0x00a0, 0x024f},   // Latin-1 supplement, Latin extended A and B
	{0x0370, 0x03ff},   // Greek
	{0x0400, 0x04ff},   // Cyrillic
	{0x0590, 0x05ff},   // Hebrew
	{0x0600, 0x06ff},   // Arabic
	{0x0900, 0x0dff},   // Indic scripts
	{0x0e00, 0x0e7f},   // Thai
	{0x1e00, 0x1eff},   // Latin extended additional (Vietnamese)
	{0x2000, 0x206f},   // general punctuation
	{0x20a0, 0x20cf},   // currency symbols
	{0x2100, 0x215f},   // letterlike symbols, number forms
	{0x2190, 0x2bff},   // arrows, operators, technical, enclosed, shapes, symbols, dingbats
	{0x3000, 0x30ff},   // CJK punctuation, hiragana, katakana
	{0x4e00, 0x9fff},   // CJK ideographs
	{0xac00, 0xd7af},   // Hangul
	{0xfeff, 0xfeff},   // byte order mark
	{0xff00, 0xffef},   // halfwidth and fullwidth forms
	{0x1f000, 0x1faff}, // emoji
}

func textIsPlausible(r rune) bool {
	for _, g := range textPlausible {
		if r >= g.lo && r <= g.hi {
			return true
		}
	}
	return false
}

// textRepairRound replaces each mojibake sequence of s by the character
// its bytes spell, and counts the sequences.
func textRepairRound(s string) (string, int) {
	var b strings.Builder
	n := 0
	var buf [4]byte
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		var need int
		switch {
		case r >= 0xc2 && r <= 0xdf:
			need = 1
		case r >= 0xe0 && r <= 0xef:
			need = 2
		case r >= 0xf0 && r <= 0xf4:
			need = 3
		}
		if need == 0 {
			if n > 0 {
				b.WriteString(s[i : i+size])
			}
			i += size
			continue
		}
		buf[0] = byte(r) // #nosec G115 -- r is 0xc2..0xf4 here (the switch above)
		j, ok := i+size, true
		for k := 1; k <= need && ok; k++ {
			c, csize := utf8.DecodeRuneInString(s[j:])
			buf[k], ok = textContinuation(c)
			j += csize
		}
		if ok {
			rr, rsize := utf8.DecodeRune(buf[:need+1])
			ok = rr != utf8.RuneError && rsize == need+1 && textIsPlausible(rr)
			if ok {
				if n == 0 {
					b.Grow(len(s))
					b.WriteString(s[:i])
				}
				n++
				b.WriteRune(rr)
				i = j
				continue
			}
		}
		if n > 0 {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	if n == 0 {
		return s, 0
	}
	return b.String(), n
}

// textRepair repairs the mojibake of s a round at a time while a round
// leaves fewer mojibake sequences than it found.
func textRepair(s string) string {
	next, n := textRepairRound(s)
	for range 8 {
		if n == 0 {
			break
		}
		after, m := textRepairRound(next)
		if m >= n {
			break
		}
		s, next, n = next, after, m
	}
	if n == 0 {
		return next
	}
	return s
}

// textDropInvisible drops control characters but line breaks and the
// invisible format characters; other spaces become ' ', the line and
// paragraph separators '\n'.
func textDropInvisible(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == ' ':
			return r
		case r == '\u2028' || r == '\u2029':
			return '\n'
		case r == '\u200b' || r == '\u2060' || r == '\ufeff' || r == '\u00ad':
			return -1
		case unicode.IsControl(r):
			return -1
		case unicode.IsSpace(r):
			return ' '
		}
		return r
	}, s)
}

// textLines trims the lines of s and collapses their spaces, drops the
// lines drops match and the blank lines at the ends, and keeps at most
// one blank line in a row.
func textLines(s string, drops []*regexp.Regexp) string {
	var b strings.Builder
	b.Grow(len(s))
	blank := false
	for line := range strings.SplitSeq(s, "\n") {
		line = strings.Join(strings.Fields(line), " ")
		if line == "" {
			blank = b.Len() > 0
			continue
		}
		if textDropped(line, drops) {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
			if blank {
				b.WriteByte('\n')
			}
		}
		blank = false
		b.WriteString(line)
	}
	return b.String()
}

func textDropped(line string, drops []*regexp.Regexp) bool {
	for _, re := range drops {
		if re.MatchString(line) {
			return true
		}
	}
	return false
}

// textSkipped are the elements whose content is no text of the page.
var textSkipped = map[string]bool{
	"script": true, "style": true, "noscript": true, "template": true, "iframe": true,
	"svg": true, "object": true, "title": true,
}

// textBreaks says what an element's start and end tags write: "\n\n"
// ends a paragraph, "\n" a line.
var textBreaks = map[string]string{
	"p": "\n\n", "h1": "\n\n", "h2": "\n\n", "h3": "\n\n", "h4": "\n\n", "h5": "\n\n", "h6": "\n\n",
	"ul": "\n\n", "ol": "\n\n", "dl": "\n\n", "table": "\n\n", "blockquote": "\n\n", "pre": "\n\n",
	"section": "\n\n", "article": "\n\n", "header": "\n\n", "footer": "\n\n", "aside": "\n\n",
	"hr": "\n\n", "figure": "\n\n", "main": "\n\n", "nav": "\n\n", "address": "\n\n", "details": "\n\n",
	"div": "\n", "br": "\n", "tr": "\n", "dt": "\n", "dd": "\n", "li": "\n", "summary": "\n",
	"figcaption": "\n", "caption": "\n", "center": "\n", "form": "\n", "fieldset": "\n", "legend": "\n",
	"td": " ", "th": " ",
}

// textFromHTML converts HTML to text: see CleanText.
func textFromHTML(s string) string {
	z := html.NewTokenizer(strings.NewReader(s))
	out := make([]byte, 0, len(s))
	skip, pre := 0, 0    // depth in skipped elements, in <pre>
	lists, items := 0, 0 // depth in lists, in their items
	bullet := -1         // len(out) just after an item's "- ", while nothing follows it
	space := false       // a space is owed before the next word
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			return string(out)
		case html.TextToken:
			if skip > 0 {
				continue
			}
			t := z.Text()
			if pre > 0 {
				out = append(out, t...)
				continue
			}
			for _, c := range t {
				if textIsHTMLSpace(c) {
					space = true
					continue
				}
				if space && len(out) > 0 && out[len(out)-1] != '\n' && out[len(out)-1] != ' ' {
					out = append(out, ' ')
				}
				space = false
				out = append(out, c)
			}
		case html.StartTagToken, html.EndTagToken, html.SelfClosingTagToken:
			name, _ := z.TagName()
			tag := string(name)
			opens, closes := tt == html.StartTagToken, tt == html.EndTagToken
			if textSkipped[tag] {
				if opens {
					skip++
				} else if closes && skip > 0 {
					skip--
				}
				continue
			}
			switch {
			case tag == "pre":
				pre = textDepth(pre, opens, closes)
			case tag == "ul" || tag == "ol":
				lists = textDepth(lists, opens, closes)
				items = min(items, lists)
			case tag == "li":
				items = textDepth(items, opens, closes)
			}
			br, ok := textBreaks[tag]
			if skip > 0 || !ok {
				continue
			}
			if br == " " {
				space = true
				continue
			}
			if len(out) == bullet {
				if opens && tag != "li" {
					continue // <li><p>: the paragraph is the item's line
				}
				out = out[:bullet-2] // an empty item
			}
			bullet = -1
			space = false
			switch {
			case tag == "br":
				// Each <br> breaks a line: two in a row end a paragraph.
				out = textBreak(out, 0)
				if len(out) > 0 {
					out = append(out, '\n')
				}
			case items > 0 || tag == "li":
				// Inside a list item, or for one, paragraphs are lines.
				out = textBreak(out, 1)
			default:
				out = textBreak(out, len(br))
			}
			if tag == "li" && opens {
				out = append(out, "- "...)
				bullet = len(out)
			}
		}
	}
}

// textDepth is depth after a start tag (opens) or an end tag (closes).
func textDepth(depth int, opens, closes bool) int {
	switch {
	case opens:
		return depth + 1
	case closes && depth > 0:
		return depth - 1
	}
	return depth
}

// textBreak ends out with n line breaks or more, its trailing spaces
// dropped; an empty out stays empty.
func textBreak(out []byte, n int) []byte {
	for len(out) > 0 && out[len(out)-1] == ' ' {
		out = out[:len(out)-1]
	}
	if len(out) == 0 {
		return out
	}
	have := 0
	for have < len(out) && out[len(out)-1-have] == '\n' {
		have++
	}
	for ; have < n; have++ {
		out = append(out, '\n')
	}
	return out
}

func textIsHTMLSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'
}

// textKeyMaxBytes bounds CompanyKey: it reads at most 4 KiB of a name and
// keeps the key's words that fit in this many bytes.
const textKeyMaxBytes = 256

// textLegalEnd are the legal forms CompanyKey strips at the end of a
// name, as its words spell them (punctuation dropped, single letters
// joined: "S.p.A." is "spa", "Sp. z o.o." is "sp zoo", "GmbH & Co. KG"
// is "gmbh co kg").
var textLegalEnd = textSet(
	// German-speaking countries
	"gmbh", "mbh", "ag", "kg", "kgaa", "ohg", "gbr", "ug", "ug haftungsbeschrankt", "ek", "ev", "gmbh co kg",
	"gmbh co kgaa", "ag co kg", "ag co kgaa", "se co kg", "co kg",
	// English-speaking countries and Asia
	"ltd", "limited", "plc", "llc", "llp", "lp", "inc", "incorporated", "corp", "corporation", "co",
	"company", "co ltd", "co inc", "pty", "pty ltd", "pvt ltd", "private limited", "pte", "pte ltd",
	"sdn bhd", "bhd", "kk", "gk",
	// France, Belgium, Spain, Italy, Portugal, Latin America
	"sa", "sas", "sasu", "sarl", "eurl", "sca", "snc", "scop", "se", "sa de cv", "sab de cv", "s de rl", "s de rl de cv",
	"bv", "nv", "vof", "bvba", "sprl", "srl", "srls", "spa", "sl", "slu", "sau", "ltda", "lda",
	// Poland, the Nordics, the Baltics, central Europe
	"sp zoo", "spzoo", "sp k", "sk", "oy", "oyj", "ab", "ab publ", "as", "asa", "aps", "kft", "zrt", "nyrt",
	"sro", "doo", "dd", "ou", "uab", "sia", "ehf", "hf",
)

// textLegalStart are the legal forms CompanyKey strips at the start of a
// name, where some countries write them ("SARL Acme", "PT Acme").
var textLegalStart = textSet("sarl", "sas", "sasu", "eurl", "pt", "ooo", "ооо")

func textSet(words ...string) map[string]bool {
	m := make(map[string]bool, len(words))
	for _, w := range words {
		m[w] = true
	}
	return m
}

// textLegalMaxWords is the number of words of the longest legal form.
const textLegalMaxWords = 5

// textFolds are the letters that lose no accent to decomposition but are
// written with plain ones in other sources.
var textFolds = map[rune]string{
	'ß': "ss", 'æ': "ae", 'œ': "oe", 'ø': "o", 'ł': "l", 'đ': "d", 'ð': "d", 'þ': "th", 'ı': "i", 'ħ': "h",
}

// CompanyKey is a company name normalised for matching across sources: the
// name is CleanText'd (plain) and lower-cased, its accents are folded
// ("Société" → "societe", "ß" → "ss"), its punctuation dropped
// (apostrophes join, other marks part words; then a run of single letters
// is joined, so "U.S." and "US" meet), and legal forms are
// stripped at the end, repeatedly ("Acme GmbH", "ACME Ltd.", "Acme, Inc.",
// "acme s.a.s.", "Acme Sp. z o.o.", "Acme S.p.A.", "Acme GmbH & Co. KG",
// "Acme Co., Ltd." → "acme"), and at the start where countries write them
// there ("SARL Acme", "PT Acme"). A form is never stripped when nothing
// would be left: "Limited" is "limited". The key is its words joined by
// single spaces, at most 256 bytes of them; a name without letters or
// digits has the key "". CompanyKey of a key is that key.
func CompanyKey(name string) string {
	s := CleanText(textCut(name, 4<<10), TextOptions{})
	s = strings.ToLower(s)
	var b strings.Builder
	for _, r := range norm.NFD.String(s) {
		switch {
		case unicode.Is(unicode.Mn, r), r == '\'', r == '’', r == '`', r == '´':
		case textFolds[r] != "":
			b.WriteString(textFolds[r])
		case unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r):
			b.WriteRune(r)
		default:
			b.WriteByte(' ')
		}
	}
	words := textJoinLetters(strings.Fields(norm.NFKC.String(b.String())))
	size := 0
	for i, w := range words {
		if size += len(w) + 1; size > textKeyMaxBytes+1 {
			if i == 0 {
				words = []string{textCut(w, textKeyMaxBytes)}
			} else {
				words = words[:i]
			}
			break
		}
	}
	return strings.Join(textStripLegal(words), " ")
}

// textJoinLetters joins each run of two or more single-letter words.
func textJoinLetters(words []string) []string {
	out := words[:0]
	run := ""
	single := func(w string) bool {
		r, size := utf8.DecodeRuneInString(w)
		return size == len(w) && unicode.IsLetter(r)
	}
	for _, w := range words {
		if single(w) {
			run += w
			continue
		}
		if run != "" {
			out = append(out, run)
			run = ""
		}
		out = append(out, w)
	}
	if run != "" {
		out = append(out, run)
	}
	return out
}

// textStripLegal strips legal forms at the end and start of words, the
// longest first, while a word is left.
func textStripLegal(words []string) []string {
	for {
		stripped := false
		for n := min(textLegalMaxWords, len(words)-1); n >= 1 && !stripped; n-- {
			if textLegalEnd[strings.Join(words[len(words)-n:], " ")] {
				words, stripped = words[:len(words)-n], true
			}
		}
		if !stripped && len(words) > 1 && textLegalStart[words[0]] {
			words, stripped = words[1:], true
		}
		if !stripped {
			return words
		}
	}
}
