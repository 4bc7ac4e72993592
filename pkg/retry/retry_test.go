package retry

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDelayDoublesUpToTheCap(t *testing.T) {
	ms := time.Millisecond
	for name, tc := range map[string]struct {
		b        Backoff
		attempts []int
		want     []time.Duration
	}{
		"doubles from First": {
			b:        Backoff{First: 50 * ms, Max: 2 * time.Second},
			attempts: []int{1, 2, 3, 4, 5, 6, 7, 8},
			want:     []time.Duration{50 * ms, 100 * ms, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 2000 * ms, 2000 * ms},
		},
		"attempts below 1 count as the first": {
			b:        Backoff{First: 100 * ms, Max: time.Second},
			attempts: []int{-3, 0, 1},
			want:     []time.Duration{100 * ms, 100 * ms, 100 * ms},
		},
		"a First above the cap is capped": {
			b:        Backoff{First: 5 * time.Second, Max: time.Second},
			attempts: []int{1, 2},
			want:     []time.Duration{time.Second, time.Second},
		},
		"stays at the cap however many attempts": {
			b:        Backoff{First: 100 * ms, Max: 10 * time.Second},
			attempts: []int{25, 64, 1000, math.MaxInt},
			want:     []time.Duration{10 * time.Second, 10 * time.Second, 10 * time.Second, 10 * time.Second},
		},
		// A shift by the attempt number overflows into negative or zero
		// waits, which retry without waiting at all.
		"without a cap never overflows": {
			b:        Backoff{First: 100 * ms},
			attempts: []int{35, 38, 64, 200},
			want:     []time.Duration{100 * ms << 34, math.MaxInt64, math.MaxInt64, math.MaxInt64},
		},
		"the zero value waits not at all": {
			attempts: []int{1, 10, math.MaxInt},
			want:     []time.Duration{0, 0, 0},
		},
		"a negative First waits not at all": {
			b:        Backoff{First: -time.Second, Max: time.Second},
			attempts: []int{1, math.MaxInt},
			want:     []time.Duration{0, 0},
		},
	} {
		t.Run(name, func(t *testing.T) {
			got := make([]time.Duration, len(tc.attempts))
			for i, a := range tc.attempts {
				got[i] = tc.b.Delay(a)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%+v: delays of attempts %v (-want +got):\n%s", tc.b, tc.attempts, diff)
			}
		})
	}
}

func TestJitterShortensWaitsAtRandomWithinItsShare(t *testing.T) {
	b := Backoff{First: 100 * time.Millisecond, Max: time.Second, Jitter: 0.5}
	seen := map[time.Duration]bool{}
	for attempt := range 2000 {
		n := attempt%6 + 1
		full := Backoff{First: b.First, Max: b.Max}.Delay(n)
		d := b.Delay(n)
		if d > full || d < full/2 {
			t.Fatalf("attempt %d: jittered delay %v, want it within [%v, %v]", n, d, full/2, full)
		}
		seen[d] = true
	}
	if len(seen) < 100 {
		t.Errorf("%d distinct delays in 2000 draws, want them spread at random", len(seen))
	}
}

func TestJitterOutsideZeroToOneIsClamped(t *testing.T) {
	for _, j := range []float64{-1, 2} {
		b := Backoff{First: time.Second, Jitter: j}
		for range 100 {
			if d := b.Delay(1); d < 0 || d > time.Second {
				t.Fatalf("Jitter %g: delay %v, want within [0, 1s]", j, d)
			}
		}
	}
}

func TestWaitEndsWithTheContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan bool)
	go func() { done <- Backoff{First: time.Hour}.Wait(ctx, 1) }()
	cancel()
	select {
	case passed := <-done:
		if passed {
			t.Error("Wait reported an hour passed after its context ended")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return when its context ended")
	}
}

func TestSleepReportsWhetherTheWaitPassed(t *testing.T) {
	if !Sleep(t.Context(), time.Millisecond) {
		t.Error("Sleep(1ms) on a live context = false, want true")
	}
	ended, cancel := context.WithCancel(t.Context())
	cancel()
	for range 100 {
		if Sleep(ended, 0) {
			t.Fatal("Sleep(0) on an ended context = true, want false")
		}
	}
}
