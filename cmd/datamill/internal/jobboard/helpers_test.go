package jobboard_test

import (
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/datamill/datamill/cmd/datamill/internal/gen"
	"github.com/datamill/datamill/cmd/datamill/internal/jobboard"
)

// serve starts a board of cfg on a loopback test server.
func serve(t testing.TB, cfg jobboard.Config) (*jobboard.Board, string) {
	t.Helper()
	b, err := jobboard.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewServer(b)
	t.Cleanup(srv.Close)
	return b, srv.URL
}

// answer is a response with its body read.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// do sends method to u with the header pairs kv and reads the answer.
func do(t testing.TB, method, u string, body io.Reader, kv ...string) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		req.Header.Set(kv[i], kv[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, u, err)
	}
	return answer{resp.StatusCode, resp.Header, b}
}

func get(t testing.TB, u string, kv ...string) answer {
	t.Helper()
	return do(t, http.MethodGet, u, nil, kv...)
}

// offersOn returns n generated offers, all on source, with ids 2000000 on.
func offersOn(t testing.TB, source string, n int) []gen.Job {
	t.Helper()
	g := gen.NewJobs(gen.JobsOptions{Offers: n, Seed: 3, CrossSource: 1e-9})
	var jobs []gen.Job
	for len(jobs) < n {
		j, ok := g.Next()
		if !ok {
			t.Fatalf("gen gave %d offers, want %d", len(jobs), n)
		}
		src, id := source, fmt.Sprint(2_000_000+len(jobs))
		j.Values[0], j.Values[1] = &src, &id
		jobs = append(jobs, j)
	}
	return jobs
}

// node is an element of an HTML page, read with encoding/xml's HTML mode.
type node struct {
	name     string
	attr     map[string]string
	text     strings.Builder
	children []*node
}

func parseHTML(t testing.TB, page []byte) *node {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(string(page)))
	d.Strict, d.AutoClose, d.Entity = false, xml.HTMLAutoClose, xml.HTMLEntity
	root := &node{name: "#root"}
	stack := []*node{root}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return root
		}
		if err != nil {
			t.Fatalf("parse page: %v\n%s", err, page)
		}
		top := stack[len(stack)-1]
		switch tok := tok.(type) {
		case xml.StartElement:
			n := &node{name: tok.Name.Local, attr: map[string]string{}}
			for _, a := range tok.Attr {
				n.attr[a.Name.Local] = a.Value
			}
			top.children = append(top.children, n)
			stack = append(stack, n)
		case xml.EndElement:
			if len(stack) > 1 {
				stack = stack[:len(stack)-1]
			}
		case xml.CharData:
			for _, n := range stack {
				n.text.Write(tok)
			}
		}
	}
}

// find returns the elements under n matching ok, in document order.
func (n *node) find(ok func(*node) bool) []*node {
	var out []*node
	for _, c := range n.children {
		if ok(c) {
			out = append(out, c)
		}
		out = append(out, c.find(ok)...)
	}
	return out
}

func (n *node) hasClass(name, class string) bool {
	return n.name == name && strings.Contains(" "+n.attr["class"]+" ", " "+class+" ")
}

func (n *node) trimmed() string { return strings.Join(strings.Fields(n.text.String()), " ") }
