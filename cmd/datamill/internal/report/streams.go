package report

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/config"
	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/pkg/stage"
	"github.com/datamill/datamill/schemas"
)

// streamStages are the stages that consume a dataset's topics.
var streamStages = []string{"cleaner", "loader", "scorer"}

// Streams is the section of what only Kafka holds, for datasets: the dead
// letters of each dataset by stage and reason (read from dlq.<ds> through
// the registry at registryURL), and each stage's lag, the records of its
// input not yet committed by its consumer group. A broker or a registry
// that cannot be reached is a note, never an error.
func Streams(kcfg kafka.Config, registryURL string, datasets []string) Source {
	return func(ctx context.Context, _ *pgx.Conn) (Section, error) {
		s := Section{ID: "streams", Title: "Dead letters and lag"}
		cl, err := kafka.NewClient(kcfg, zap.NewNop())
		if err != nil {
			s.Notes = append(s.Notes, fmt.Sprintf("Kafka at %v cannot be reached (%v): no dead letters or lag. Set KAFKA_BROKERS to the pipeline's brokers.", kcfg.Brokers, err))
			return s, nil
		}
		defer cl.Close()
		if err := lagChart(ctx, kadm.NewClient(cl), &s, datasets); err != nil {
			s.Notes = append(s.Notes, fmt.Sprintf("The stages' lag could not be read from Kafka at %v: %v.", kcfg.Brokers, err))
		}
		reg, err := serde.NewRegistry(serde.Config{RegistryURL: registryURL})
		if err != nil {
			s.Notes = append(s.Notes, fmt.Sprintf("The schema registry at %s cannot be used (%v): no dead letters.", config.RedactURL(registryURL), err))
			return s, nil
		}
		for _, ds := range datasets {
			if err := deadLetterChart(ctx, kcfg, reg, &s, ds); err != nil {
				s.Notes = append(s.Notes, fmt.Sprintf("The dead letters of %s could not be read: %v.", ds, err))
			}
		}
		return s, nil
	}
}

// lagChart adds the lag of every stage of datasets: a bar per stage and
// dataset.
func lagChart(ctx context.Context, adm *kadm.Client, s *Section, datasets []string) error {
	var groups []string
	label := map[string]string{}
	for _, ds := range datasets {
		for _, st := range streamStages {
			g := stage.Group(st, ds)
			groups = append(groups, g)
			label[g] = st + " " + ds
		}
	}
	lags, err := adm.Lag(ctx, groups...)
	if err != nil {
		return err
	}
	series := Series{Name: "records behind"}
	for _, g := range groups {
		l, ok := lags[g]
		if !ok || l.Error() != nil || l.State == "Dead" {
			continue // a stage that never ran on this cluster
		}
		series.Points = append(series.Points, Point{Label: label[g], Y: float64(l.Lag.Total())})
	}
	s.Charts = append(s.Charts, Chart{
		ID: "streams-lag", Title: "Lag of each stage: records of its input topic its consumer group has not committed",
		XLabel: "stage", YLabel: "records", Unit: "records", Kind: Bar, Series: []Series{series},
	})
	return nil
}

// deadLetterChart adds the dead letters of dataset ds by stage and reason:
// a reason is its first one, to the field and problem ("age:
// out_of_range"), without the value it quotes.
func deadLetterChart(ctx context.Context, kcfg kafka.Config, reg *serde.Registry, s *Section, ds string) error {
	topic := kafka.Topic(kafka.DLQ, ds)
	codec, err := serde.NewCodec[schemas.DeadLetter](ctx, reg, topic, schemas.MustSchema("deadletter"))
	if err != nil {
		return err
	}
	counts := map[string]int{}
	var bad error
	err = kafka.ReadCommitted(ctx, kcfg, zap.NewNop(), topic, nil, func(r *kgo.Record) {
		var d schemas.DeadLetter
		if err := codec.Decode(r.Value, &d); err != nil {
			bad = err
			return
		}
		counts[d.Stage+": "+reasonKey(d.Reasons)]++
	})
	if err != nil {
		return err
	}
	if bad != nil {
		s.Notes = append(s.Notes, fmt.Sprintf("Some dead letters of %s could not be decoded: %v.", ds, bad))
	}
	series := Series{Name: "dead letters"}
	for _, k := range slices.SortedFunc(maps.Keys(counts), func(a, b string) int {
		if counts[a] != counts[b] {
			return counts[b] - counts[a]
		}
		return strings.Compare(a, b)
	}) {
		series.Points = append(series.Points, Point{Label: k, Y: float64(counts[k])})
	}
	s.Charts = append(s.Charts, Chart{
		ID: "streams-dead-letters-" + ds, Title: fmt.Sprintf("Dead letters of %s by stage and reason (dlq.%s)", ds, ds),
		XLabel: "dead letters", YLabel: "dead letters", Unit: "records", Kind: HBar, Series: []Series{series},
	})
	return nil
}

// reasonKey is a dead letter's first reason without the value it quotes:
// "age: out_of_range (\"230\")" is "age: out_of_range".
func reasonKey(reasons []string) string {
	if len(reasons) == 0 {
		return "no reason given"
	}
	r := reasons[0]
	if i := strings.Index(r, " ("); i > 0 {
		r = r[:i]
	}
	return r
}
