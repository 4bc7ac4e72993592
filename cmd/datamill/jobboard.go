package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/datamill/datamill/cmd/datamill/internal/jobboard"
)

// jobboardCommand serves generated job offers through the shapes of the
// real job APIs and a scraped board until ctx ends.
func jobboardCommand(ctx context.Context, args, _ []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("jobboard", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "address to listen on (port 0: a free one)")
	public := fs.Bool("public", false, "allow an address that is not loopback")
	rows := fs.Int("rows", 500, "number of distinct offers (copies on a second source add rows)")
	seed := fs.Uint64("seed", 1, "seed: the same flags serve the same offers")
	dirty := fs.Float64("dirty", 0.05, "share of offers, in [0, 1], carrying dirt")
	challenge := fs.Int("challenge-every", 97, "every Nth request of each JSON API answers an HTML challenge page (0: never)")
	tooMany := fs.Int("429-every", 61, "every Mth request of each JSON API answers 429 with Retry-After: 1 (0: never)")
	crawlDelay := fs.Duration("crawl-delay", time.Second, "robots.txt Crawl-delay of the scraped board (0: none)")
	tokenLifetime := fs.Duration("token-lifetime", 1499*time.Second, "lifetime of France Travail access tokens (whole seconds)")
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: datamill jobboard [flags]

Serves generated job offers (those of datamill gen jobs, a third of them moved
to adzuna and francetravail) on one loopback address, through the shapes of
Remotive, Arbeitnow, RemoteOK, Adzuna and France Travail and as a scraped
board's HTML pages (We Work Remotely's shape, with robots.txt), with their
quirks: a BOM, a legal-notice element, ranges, a challenge page and a 429
now and then. It prints each source's URL and the credentials it takes, and
serves until interrupted. GET /_board/counts gives the offers per source,
POST /_board/change?source=S&id=ID changes one, GET /_board/requests lists
every request answered.

flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("jobboard: unexpected argument %q", fs.Arg(0))
	}
	if !*public && !loopback(*addr) {
		return fmt.Errorf("jobboard: --addr %s is not a loopback address; give --public to serve it", *addr)
	}
	board, err := jobboard.New(jobboard.Config{
		Rows: *rows, Seed: *seed, Dirty: *dirty,
		ChallengeEvery: *challenge, TooManyEvery: *tooMany, CrawlDelay: *crawlDelay,
		TokenLifetime: *tokenLifetime,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("jobboard: %w", err)
	}
	srv := &http.Server{Handler: board, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()

	base := "http://" + ln.Addr().String()
	urls := jobboard.URLs(base)
	fmt.Fprintf(stdout, "jobboard=%s\n", base)
	counts := board.Counts()
	for _, s := range jobboard.Sources {
		fmt.Fprintf(stdout, "%s=%s\t# %d offers\n", s, urls[s], counts[s])
	}
	fmt.Fprintf(stdout, "francetravail_token=%s\n", urls["francetravail_token"])
	fmt.Fprintf(stdout, "# adzuna app_id=%s app_key=%s; francetravail client_id=%s client_secret=%s\n",
		jobboard.DefaultAdzunaAppID, jobboard.DefaultAdzunaAppKey, jobboard.DefaultFTClientID, jobboard.DefaultFTClientSecret)
	fmt.Fprintln(stdout, "ready")

	select {
	case err := <-done:
		return fmt.Errorf("jobboard: serve %s: %w", base, err)
	case <-ctx.Done():
	}
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shut); err != nil {
		return fmt.Errorf("jobboard: shut down: %w", err)
	}
	return nil
}

// loopback tells whether addr's host is a loopback address or localhost;
// an empty host listens on every interface, so it is not.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
