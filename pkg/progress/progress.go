// Package progress reports the progress of long work: a bar redrawn in
// place when the output is a terminal, else a log line every few seconds.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// Bar follows one piece of work of a known size (bytes, rows, epochs) and
// counts the items (records) it produced.
type Bar struct {
	label string
	total int64
	term  io.Writer   // the terminal to draw on, or nil
	log   *zap.Logger // else where progress lines go
	every time.Duration

	mu         sync.Mutex
	start, at  time.Time // start, and when progress was last shown
	done, item int64
}

// New starts a bar for work of size total (0: unknown). When out is a
// terminal the bar is drawn there; else, with a logger, a line is logged
// every logEvery.
func New(out io.Writer, log *zap.Logger, label string, total int64, logEvery time.Duration) *Bar {
	b := &Bar{label: label, total: total, log: log, every: logEvery, start: time.Now()}
	if IsTerminal(out) {
		b.term = out
		b.every = 100 * time.Millisecond
	}
	b.at = b.start
	return b
}

// Set records that done of the total is done and items were produced, and
// shows it when it is time to.
func (b *Bar) Set(done, items int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done, b.item = done, items
	if now := time.Now(); now.Sub(b.at) >= b.every {
		b.at = now
		b.show(false)
	}
}

// Finish shows the final state (and ends the terminal line).
func (b *Bar) Finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.show(true)
}

func (b *Bar) show(final bool) {
	elapsed := time.Since(b.start)
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(b.item) / s
	}
	switch {
	case b.term != nil:
		const width = 30
		share := 0.0
		if b.total > 0 {
			share = min(float64(b.done)/float64(b.total), 1)
		}
		filled := int(share * width)
		end := ""
		if final {
			end = "\n"
		}
		fmt.Fprintf(b.term, "\r%s [%s%s] %3.0f%% %d records, %.0f/s%s",
			b.label, strings.Repeat("=", filled), strings.Repeat(" ", width-filled), share*100, b.item, rate, end)
	case b.log != nil:
		fields := []zap.Field{zap.String("what", b.label), zap.Int64("records", b.item), zap.Float64("records_per_second", rate)}
		if b.total > 0 {
			fields = append(fields, zap.Float64("percent", float64(b.done)*100/float64(b.total)))
		}
		msg := "progress"
		if final {
			msg = "done"
			fields = append(fields, zap.Duration("took", elapsed))
		}
		b.log.Info(msg, fields...)
	}
}

// Reader counts the bytes read through it: how much of a file of known
// size a scan has read, for a Bar. It is not safe for concurrent use.
type Reader struct {
	r io.Reader
	n int64
}

// NewReader counts the bytes read from r.
func NewReader(r io.Reader) *Reader { return &Reader{r: r} }

func (c *Reader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// N is the number of bytes read so far.
func (c *Reader) N() int64 { return c.n }
