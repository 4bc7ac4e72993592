package lake

import (
	"bytes"
	"testing"

	"github.com/hamba/avro/v2"
)

// FuzzOpen reads lake objects from outside (the bucket): whatever the
// bytes, Open and Rows return errors, never panic. The seeds are objects
// written by the Writer, whole, cut short and with bytes changed.
func FuzzOpen(f *testing.F) {
	s := avro.MustParse(every)
	b, _ := writeObject(f, s, samples(f, s, 20, 11), 8)
	f.Add(b)
	for _, cut := range []int{len(b) / 3, len(b) / 2, len(b) - 9} {
		f.Add(b[:cut])
	}
	for i := 4; i < len(b)-8; i += len(b) / 17 {
		c := bytes.Clone(b)
		c[i] ^= 0x5a
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := Open(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		for _, err := range file.Rows() {
			if err != nil {
				return
			}
		}
	})
}
