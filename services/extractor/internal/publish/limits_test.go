package publish

import (
	"maps"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/testkit"
)

// The limit of a topic is its max.message.bytes, when lower than the
// producer's; a topic whose configuration cannot be read gets the
// producer's.
func TestTopicLimitsReadMaxMessageBytes(t *testing.T) {
	k := testkit.KafkaCluster(t)
	cl, err := kafka.NewClient(k.ClientConfig(kafka.Admin), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	small, large := "50000", "5000000"
	for topic, max := range map[string]*string{"small": &small, "large": &large, "default": nil} {
		var configs map[string]*string
		if max != nil {
			configs = map[string]*string{"max.message.bytes": max}
		}
		if _, err := adm.CreateTopic(t.Context(), 1, 1, configs, topic); err != nil {
			t.Fatal(err)
		}
	}
	got := TopicLimits(t.Context(), adm, zap.NewNop(), "small", "large", "default", "missing")
	want := map[string]int{"small": 50000, "large": ProducerMaxBytes, "default": ProducerMaxBytes, "missing": ProducerMaxBytes}
	if !maps.Equal(got, want) {
		t.Errorf("TopicLimits = %v, want %v", got, want)
	}
}
