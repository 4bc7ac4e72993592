package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"unicode/utf8"
)

// ErrNotText is the error of a source that is not text: an archive, an
// image, text in an encoding other than UTF-8. Scan ends at once with it,
// as an *Error at position "start".
var ErrNotText = errors.New("not a text file")

// TextSample is how many first bytes of a source CheckText looks at.
const TextSample = 1024

// signatures are the first bytes of formats often fed by mistake.
var signatures = []struct{ magic, name string }{
	{"\x1f\x8b", "gzip data: decompress it first"},
	{"PK\x03\x04", "a zip archive (an Excel workbook?): export it as CSV"},
	{"\x28\xb5\x2f\xfd", "zstd data: decompress it first"},
	{"\xfd7zXZ\x00", "xz data: decompress it first"},
	{"\x89PNG\r\n\x1a\n", "a PNG image"},
	{"\xff\xd8\xff", "a JPEG image"},
	{"%PDF-", "a PDF document"},
	{"\xff\xfe", "UTF-16 text: save it as UTF-8"},
	{"\xfe\xff", "UTF-16 text: save it as UTF-8"},
}

// CheckText returns an error wrapping ErrNotText when head, the first
// bytes of a source (TextSample of them, or all if fewer), are not text:
// they start as a known binary format does, or more than a quarter of them
// are NUL or control bytes (other than white space) or bytes of invalid
// UTF-8. A few such bytes are left to the cleaner, which flags the values
// holding them.
func CheckText(head []byte) error {
	for _, s := range signatures {
		if bytes.HasPrefix(head, []byte(s.magic)) {
			return fmt.Errorf("%w (%s)", ErrNotText, s.name)
		}
	}
	bad, n := 0, 0
	for n < len(head) {
		c := head[n]
		if c < utf8.RuneSelf {
			if c < ' ' && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != '\v' || c == 0x7f {
				bad++
			}
			n++
			continue
		}
		r, size := utf8.DecodeRune(head[n:])
		if r == utf8.RuneError && size == 1 {
			if !utf8.FullRune(head[n:]) {
				break // a character cut by the sample's end
			}
			bad++
		}
		n += size
	}
	if bad*4 > n {
		return fmt.Errorf("%w (%d of its first %d bytes are NUL, control or invalid UTF-8 bytes: binary data, or text in an encoding other than UTF-8)", ErrNotText, bad, n)
	}
	return nil
}
