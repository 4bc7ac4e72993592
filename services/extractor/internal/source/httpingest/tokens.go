package httpingest

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// DefaultProducer is the id of the producer whose token is given whole
// (EXTRACTOR_HTTP_TOKEN) rather than as a hash in the tokens file.
const DefaultProducer = "default"

// Producer is one client of the endpoint: an id, which logs and metrics
// name, and the SHA-256 hash of its bearer token, which they never do.
type Producer struct {
	ID   string
	Hash [sha256.Size]byte
}

// TokenProducer is the producer id whose token is token.
func TokenProducer(id, token string) Producer {
	return Producer{ID: id, Hash: sha256.Sum256([]byte(token))}
}

// ParseTokens reads a tokens file, named name in errors: one producer a
// line, `<id> <sha256 hex of the token>`, with blank lines and lines
// starting with # skipped. A malformed line, or an id given twice, is an
// error naming the file and the line.
func ParseTokens(r io.Reader, name string) ([]Producer, error) {
	var out []Producer
	seen := map[string]int{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 {
			return nil, fmt.Errorf("%s:%d: want `<token id> <sha256 hex of the token>`, got %d fields", name, n, len(fields))
		}
		id, sum := fields[0], fields[1]
		b, err := hex.DecodeString(sum)
		if err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("%s:%d: token %q: the hash is not %d hex digits (printf %%s \"$TOKEN\" | sha256sum)", name, n, id, 2*sha256.Size)
		}
		if first, ok := seen[id]; ok {
			return nil, fmt.Errorf("%s:%d: token id %q given again (first on line %d)", name, n, id, first)
		}
		seen[id] = n
		p := Producer{ID: id}
		copy(p.Hash[:], b)
		out = append(out, p)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return out, nil
}

// producerOf returns the id of the producer whose token r carries, and
// false when it carries none of theirs. The token's hash is compared in
// constant time with every producer's, without stopping at a match, so
// neither the token's length and bytes nor which producer it is leak
// through the time the answer takes.
func (s *Source) producerOf(r *http.Request) (string, bool) {
	given, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	sum := sha256.Sum256([]byte(given))
	found, match := 0, 0
	for i, p := range s.cfg.Producers {
		eq := subtle.ConstantTimeCompare(sum[:], p.Hash[:])
		found = subtle.ConstantTimeSelect(eq, i, found)
		match |= eq
	}
	if match != 1 || !ok {
		return "", false
	}
	return s.cfg.Producers[found].ID, true
}

// Producers joins the producers of a tokens file with the one of a whole
// token, when there is one (id DefaultProducer); an id given twice is an
// error.
func Producers(file []Producer, token string) ([]Producer, error) {
	out := file
	if token != "" {
		out = append(out, TokenProducer(DefaultProducer, token))
	}
	seen := map[string]bool{}
	for _, p := range out {
		if seen[p.ID] {
			return nil, fmt.Errorf("token id %q is given twice (the whole token's id is %q)", p.ID, DefaultProducer)
		}
		seen[p.ID] = true
	}
	return out, nil
}
