// Package retry paces the attempts at an operation that fails transiently
// (a broker, the schema registry, a database, the network): every retry
// loop of datamill waits through it rather than sleeping by hand.
//
// A Backoff is exponential with a cap: the wait after the nth failed
// attempt is First doubled n-1 times, never above Max, optionally shortened
// at random (Jitter) so that processes failing together do not retry in
// step. Waits end early when the context ends.
package retry

import (
	"context"
	"math"
	"math/rand/v2"
	"time"
)

// Backoff is an exponential backoff with a cap. The zero value waits not at
// all.
type Backoff struct {
	// First is the wait after the first failed attempt; each further
	// failure doubles it.
	First time.Duration
	// Max caps the wait; zero is no cap.
	Max time.Duration
	// Jitter, in [0, 1], is the share of each wait drawn at random: a
	// wait d becomes a duration between (1-Jitter)·d and d. Zero keeps
	// the waits exact.
	Jitter float64
}

// Delay returns the wait after the attempt-th failed attempt (counted from
// 1; anything below counts as 1).
func (b Backoff) Delay(attempt int) time.Duration {
	limit := b.Max
	if limit <= 0 {
		limit = math.MaxInt64
	}
	d := min(b.First, limit)
	if d <= 0 {
		return 0
	}
	for i := 1; i < attempt && d < limit; i++ {
		if d > limit/2 {
			d = limit
			break
		}
		d *= 2
	}
	if j := min(max(b.Jitter, 0), 1); j > 0 {
		d -= time.Duration(rand.Float64() * j * float64(d)) // #nosec G404 -- backoff jitter, not a secret
	}
	return max(d, 0)
}

// Wait waits Delay(attempt), or less when ctx ends first; it reports
// whether the whole wait passed.
func (b Backoff) Wait(ctx context.Context, attempt int) bool {
	return Sleep(ctx, b.Delay(attempt))
}

// Sleep waits d or until ctx ends; it reports whether d passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	if ctx.Err() != nil {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
