package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/embedded"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/testkit"
)

// produceStack is an in-process broker and registry with raw.users, of one
// partition, for `datamill produce` to publish to.
type produceStack struct {
	kafka *embedded.Kafka
	kcfg  kafka.Config
	env   []string
}

func newProduceStack(t testing.TB) *produceStack {
	t.Helper()
	k := testkit.KafkaCluster(t)
	s := &produceStack{
		kafka: k,
		kcfg:  k.ClientConfig(kafka.Admin),
		env:   append(k.Env(kafka.Admin), "SCHEMA_REGISTRY_URL="+testkit.Registry(t)),
	}
	s.kcfg.Partitions = 1
	cl, err := kafka.NewClient(s.kcfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := kafka.EnsureTopics(t.Context(), cl, s.kcfg, "raw.users"); err != nil {
		t.Fatal(err)
	}
	return s
}

// produce runs `datamill produce users file` against the stack and returns
// what it printed and its error.
func (s *produceStack) produce(t testing.TB, file string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var out strings.Builder
	err := run(ctx, append([]string{"produce", "users", file}, args...), s.env, &out, &out)
	return out.String(), err
}

// committed returns the records of raw.users a read_committed consumer
// sees.
func (s *produceStack) committed(t testing.TB) []*kgo.Record {
	t.Helper()
	var recs []*kgo.Record
	if err := kafka.ReadCommitted(t.Context(), s.kcfg, zap.NewNop(), "raw.users", nil, func(r *kgo.Record) { recs = append(recs, r) }); err != nil {
		t.Fatal(err)
	}
	return recs
}

// writeInput writes content to a file of the test named name.
func writeInput(t testing.TB, name, content string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// wantAll fails the test unless s holds every one of parts.
func wantAll(t testing.TB, what, s string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(s, p) {
			t.Errorf("%s does not say %q:\n%s", what, p, s)
		}
	}
}

func TestProduceRefusesBadInputWhole(t *testing.T) {
	csv := writeInput(t, "bad.csv", "id,age\n1,30\n2\n")
	// With no broker to ask for its size limit, the input's problems are
	// still listed; only the sizes go unchecked.
	var out strings.Builder
	err := run(t.Context(), []string{"produce", "users", csv}, []string{"KAFKA_BROKERS=127.0.0.1:1"}, &out, &out)
	if err == nil {
		t.Fatal("produce of a bad file succeeded")
	}
	wantAll(t, "the error", err.Error(), "line 3", "nothing was published", "record sizes were not checked")
	if err := run(t.Context(), []string{"produce", "payments", csv}, nil, &out, &out); err == nil || !strings.Contains(err.Error(), `unknown dataset "payments"`) {
		t.Errorf("produce payments = %v, want an unknown dataset error", err)
	}
}

// A record over the broker's limit, after good ones, is refused before
// anything is published, and named.
func TestProduceRefusesAnOversizedRecordUpFront(t *testing.T) {
	s := newProduceStack(t)
	big := strings.Repeat("x", 2<<20)
	file := writeInput(t, "users.csv", "id,age,email\n1,30,a@example.org\n2,40,b@example.org\n3,50,"+big+"\n4,60,d@example.org\n")
	out, err := s.produce(t, file)
	if err == nil {
		t.Fatalf("produce of a file with a 2 MiB record succeeded: %s", out)
	}
	wantAll(t, "the error", err.Error(), "line 4", "too large", "nothing was published")
	if strings.Contains(err.Error(), "line 2") || strings.Contains(err.Error(), "line 5") {
		t.Errorf("the error names good lines: %v", err)
	}
	if n := len(s.committed(t)); n != 0 {
		t.Errorf("raw.users holds %d committed records after a refused file, want 0", n)
	}
}

// The topic's own max.message.bytes is the limit, not the broker's.
func TestProduceChecksSizesAgainstTheTopicsLimit(t *testing.T) {
	s := newProduceStack(t)
	s.kcfg.Partitions = 1
	cl, err := kafka.NewClient(s.kcfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	res := kmsg.NewIncrementalAlterConfigsRequestResource()
	res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeTopic, "raw.users"
	cfg := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	limit := "2000"
	cfg.Name, cfg.Value = "max.message.bytes", &limit
	res.Configs = append(res.Configs, cfg)
	req.Resources = append(req.Resources, res)
	resp, err := req.RequestWith(t.Context(), cl)
	if err == nil {
		err = kerr.ErrorForCode(resp.Resources[0].ErrorCode)
	}
	if err != nil {
		t.Fatalf("set max.message.bytes of raw.users: %v", err)
	}
	file := writeInput(t, "users.csv", "id,email\n1,a@example.org\n2,"+strings.Repeat("b", 3000)+"\n")
	out, err := s.produce(t, file)
	if err == nil {
		t.Fatalf("produce of a record over the topic's limit succeeded: %s", out)
	}
	wantAll(t, "the error", err.Error(), "line 3", "too large", "2000", "nothing was published")
	if n := len(s.committed(t)); n != 0 {
		t.Errorf("raw.users holds %d committed records, want 0", n)
	}
}

// Records without the dataset's key are refused, named, and nothing is
// published.
func TestProduceRefusesRecordsWithoutAKey(t *testing.T) {
	s := newProduceStack(t)
	file := writeInput(t, "users.ndjson", `{"id":"1","age":"30"}`+"\n"+`{"age":"40"}`+"\n"+`{"id":"  ","age":"50"}`+"\n"+`{"id":"4","age":"60"}`+"\n")
	out, err := s.produce(t, file)
	if err == nil {
		t.Fatalf("produce of records without an id succeeded: %s", out)
	}
	wantAll(t, "the error", err.Error(), "line 2: no id", "line 3: no id", "2 with no id", "nothing was published")
	if n := len(s.committed(t)); n != 0 {
		t.Errorf("raw.users holds %d committed records, want 0", n)
	}
}

// Every bad record is listed, up to a limit, with counts per kind.
func TestProduceListsEveryBadRecord(t *testing.T) {
	s := newProduceStack(t)
	lines := []string{"id,age,email", "1,30,a@example.org", "2", "3,x\"y,c@example.org", ",40,d@example.org", "5,50," + strings.Repeat("e", 2<<20)}
	for i := range 30 {
		lines = append(lines, fmt.Sprintf(",%d,", i)) // lines 7 to 36, without an id
	}
	lines = append(lines, "37,70,g@example.org")
	file := writeInput(t, "users.csv", strings.Join(lines, "\n")+"\n")
	out, err := s.produce(t, file)
	if err == nil {
		t.Fatalf("produce of a file with bad records succeeded: %s", out)
	}
	msg := err.Error()
	wantAll(t, "the error", msg,
		"34 records refused", "2 unreadable", "31 with no id", "1 too large",
		"line 3: ", "line 4: ", "line 5: no id", "line 6: too large", "line 7: no id", "line 22: no id",
		"and 14 more", "nothing was published")
	if strings.Contains(msg, "line 23:") || strings.Contains(msg, "line 37") || strings.Contains(msg, "line 2:") {
		t.Errorf("the error lists more than 20 records, or a good one:\n%s", msg)
	}
	if strings.Contains(msg, "interface {}") || strings.Contains(msg, "*csv.ParseError") {
		t.Errorf("the error shows Go types:\n%s", msg)
	}
	if n := len(s.committed(t)); n != 0 {
		t.Errorf("raw.users holds %d committed records, want 0", n)
	}
}

// A good file is published in one transaction: its records are
// transactional and end with a commit marker, so read_committed consumers
// see all of them or none.
func TestProducePublishesAFileInOneTransaction(t *testing.T) {
	s := newProduceStack(t)
	var b strings.Builder
	b.WriteString("id,age\n")
	for i := 1; i <= 500; i++ {
		fmt.Fprintf(&b, "%d,%d\n", i, 20+i%50)
	}
	out, err := s.produce(t, writeInput(t, "users.csv", b.String()))
	if err != nil {
		t.Fatalf("produce: %v: %s", err, out)
	}
	wantAll(t, "the output", out, "published 500 users records to raw.users")
	if n := len(s.committed(t)); n != 500 {
		t.Errorf("raw.users holds %d committed records, want 500", n)
	}

	// Everything written, markers included, as a read_uncommitted
	// consumer with control records sees it.
	cl, err := kafka.NewClient(s.kcfg, zap.NewNop(), kgo.ConsumeTopics("raw.users"), kgo.KeepControlRecords(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadUncommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var data, markers int
	for data+markers < 501 && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			switch {
			case r.Attrs.IsControl():
				markers++
				if data != 500 {
					t.Errorf("a transaction marker after %d records, want one after all 500", data)
				}
			case !r.Attrs.IsTransactional():
				t.Fatalf("record at offset %d was written outside a transaction", r.Offset)
			default:
				data++
			}
		})
	}
	if data != 500 || markers != 1 {
		t.Errorf("raw.users holds %d records and %d markers, want 500 and one commit marker", data, markers)
	}
}

// When the broker fails a write midway, after part of the file was
// written, the transaction is aborted: a read_committed consumer sees
// nothing of it.
func TestProduceAbortsWhenTheBrokerFailsMidway(t *testing.T) {
	s := newProduceStack(t)
	var produces atomic.Int32
	s.kafka.Cluster().ControlKey(int16(kmsg.Produce), func(r kmsg.Request) (kmsg.Response, error, bool) {
		if produces.Add(1) != 2 {
			return nil, nil, false
		}
		req := r.(*kmsg.ProduceRequest)
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		resp.Version = req.Version
		for _, rt := range req.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, kerr.InvalidRecord.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	// Records of 300 kB: a batch holds three, so the file takes three
	// writes.
	var b strings.Builder
	b.WriteString("id,email\n")
	for i := 1; i <= 8; i++ {
		fmt.Fprintf(&b, "%d,%s\n", i, strings.Repeat("m", 300_000))
	}
	out, err := s.produce(t, writeInput(t, "users.csv", b.String()))
	if err == nil {
		t.Fatalf("produce succeeded although the broker failed a write: %s", out)
	}
	wantAll(t, "the error", err.Error(), "nothing was published")
	if produces.Load() < 2 {
		t.Fatalf("the file took %d writes, want several", produces.Load())
	}
	if n := len(s.committed(t)); n != 0 {
		t.Errorf("raw.users holds %d committed records after a failed write, want 0", n)
	}
}

// With --skip-refused the refused records are listed and the others
// published, in one transaction.
func TestProduceSkipsRefusedRecordsWhenAsked(t *testing.T) {
	s := newProduceStack(t)
	file := writeInput(t, "users.csv", "id,age,email\n1,30,a@example.org\n2\n,40,c@example.org\n4,50,"+strings.Repeat("d", 2<<20)+"\n5,60,e@example.org\n")
	out, err := s.produce(t, file, "--skip-refused")
	if err != nil {
		t.Fatalf("produce --skip-refused: %v: %s", err, out)
	}
	wantAll(t, "the output", out, "3 records refused (1 unreadable, 1 with no id, 1 too large); publishing the others",
		"line 3: ", "line 4: no id", "line 5: too large", "published 2 users records to raw.users")
	recs := s.committed(t)
	var keys []string
	for _, r := range recs {
		keys = append(keys, string(r.Key[6:])) // past the wire-format header and the string's length
	}
	if strings.Join(keys, " ") != "1 5" {
		t.Errorf("raw.users holds the records of ids %v, want 1 5", keys)
	}
}

// A transaction timeout the broker does not allow fails before anything is
// published, and says which flag to change.
func TestProduceSaysWhenTheTransactionTimeoutIsOverTheBrokers(t *testing.T) {
	s := newProduceStack(t)
	file := writeInput(t, "users.csv", "id,age\n1,30\n")
	out, err := s.produce(t, file, "--transaction-timeout", "20m") // the broker allows 15m
	if err == nil {
		t.Fatalf("produce with a 20m transaction timeout succeeded: %s", out)
	}
	wantAll(t, "the error", err.Error(), "transaction.max.timeout.ms", "lower --transaction-timeout", "nothing was published")
	if n := len(s.committed(t)); n != 0 {
		t.Errorf("raw.users holds %d committed records, want 0", n)
	}
}

// A dataset of DATASETS_DIR is published as a built-in one is; SCHEMAS_DIR,
// its deprecated name, still names the directory, with a warning.
func TestProducePublishesADatasetOfDatasetsDir(t *testing.T) {
	s := newProduceStack(t)
	s.kcfg.Partitions = 1
	cl, err := kafka.NewClient(s.kcfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := kafka.EnsureTopics(t.Context(), cl, s.kcfg, "raw.orders"); err != nil {
		t.Fatal(err)
	}
	dir, err := filepath.Abs(filepath.Join("testdata", "datasets"))
	if err != nil {
		t.Fatal(err)
	}
	file := writeInput(t, "orders.csv", "order_no,amount,channel,ordered_on,gift,note,returned\n1,19.99,web,2024-03-01,true,blue,n\n2,5.00,store,2024-03-02,false,,y\n")
	// In order: each run adds its records to the topic.
	for _, tc := range []struct {
		env      string
		warning  bool
		produced int
	}{
		{env: "DATASETS_DIR=" + dir, produced: 2},
		{env: "SCHEMAS_DIR=" + dir, warning: true, produced: 4},
	} {
		t.Run(strings.SplitN(tc.env, "=", 2)[0], func(t *testing.T) {
			var out strings.Builder
			if err := run(t.Context(), []string{"produce", "orders", file}, append([]string{tc.env}, s.env...), &out, &out); err != nil {
				t.Fatalf("produce orders with %s: %v: %s", tc.env, err, out.String())
			}
			wantAll(t, "the output", out.String(), "published 2 orders records to raw.orders")
			if got := strings.Contains(out.String(), "SCHEMAS_DIR is deprecated"); got != tc.warning {
				t.Errorf("warned of SCHEMAS_DIR: %v, want %v:\n%s", got, tc.warning, out.String())
			}
			var n int
			if err := kafka.ReadCommitted(t.Context(), s.kcfg, zap.NewNop(), "raw.orders", nil, func(*kgo.Record) { n++ }); err != nil {
				t.Fatal(err)
			}
			if n != tc.produced {
				t.Errorf("raw.orders holds %d committed records, want %d", n, tc.produced)
			}
		})
	}
}
