package stage

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/testkit"
)

// A broker restart can leave a batch's transaction unable to end: the
// group's session fails mid-batch, and franz-go's End waits for a
// heartbeat that the group, itself waiting for the batch to allow a
// rebalance, never sends. The runner gives up after the transaction
// timeout and consumes in a new session, whose producer aborts the open
// transaction; the batch is replayed, and nothing is lost or doubled. The
// fault is the first member's heartbeats failing from mid-batch on, on the
// in-process broker (it cannot be caused on demand on a real one).
func TestAStuckTransactionIsAbortedAndItsBatchReplayed(t *testing.T) {
	k := testkit.KafkaCluster(t)
	f := newFixtureOn(t, k.ClientConfig(kafka.Admin))
	f.produce(t, items(0, 30)...)

	var (
		mu      sync.Mutex
		member  string // the member whose heartbeats fail
		handled = map[int64]int{}
	)
	failing := make(chan struct{})
	var once sync.Once
	h := func(ctx context.Context, batch []Message[item]) (Result[item], error) {
		once.Do(func() {
			k.Cluster().ControlKey(int16(kmsg.Heartbeat), func(req kmsg.Request) (kmsg.Response, error, bool) {
				k.Cluster().KeepControl()
				hb := req.(*kmsg.HeartbeatRequest)
				mu.Lock()
				defer mu.Unlock()
				if member == "" {
					member = hb.MemberID
					close(failing)
				}
				if hb.MemberID != member {
					return nil, nil, false
				}
				return nil, errors.New("heartbeat refused"), true
			})
			select {
			case <-failing:
			case <-time.After(30 * time.Second):
				t.Error("no heartbeat in 30 s")
			}
			// Let the group's manage loop reach its wait for the batch.
			time.Sleep(500 * time.Millisecond)
		})
		mu.Lock()
		for _, m := range batch {
			handled[m.Value.ID]++
		}
		mu.Unlock()
		return PerRecord(echo)(ctx, batch)
	}
	cfg := testConfig("")
	cfg.TransactionTimeout = 3 * time.Second
	r := f.runner(t, f.spec(h), cfg)
	stop := start(t, r)
	f.waitDrained(t, r.spec.Group, 60*time.Second)
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	wantEchoed(t, f.decodeOutputs(t, f.readCommitted(t, f.out)), 30, nil)
	replayed := 0
	for _, n := range handled {
		if n > 1 {
			replayed++
		}
	}
	if replayed == 0 {
		t.Errorf("no record was handled twice (%v): the stuck batch was not replayed", handled)
	}
}
