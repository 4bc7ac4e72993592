package lake

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Key is where the object of one cut goes:
// <prefix>/dataset=<ds>/dt=<YYYY-MM-DD>/hour=<HH>/<topic>-<id>-<partition>-<start, 20 digits>.parquet,
// dt and hour of t (the time of the cut's first record) in UTC, id the
// first 8 characters of topicID (the Kafka topic id, 32 hex digits; see
// Meta.TopicID). An empty prefix leaves its part out.
//
// The id tells apart the topics that bore the same name one after the
// other: a topic deleted and created again numbers its offsets from 0, and
// its objects go beside the old topic's, never onto their keys.
func Key(prefix, dataset, topic, topicID string, partition int32, start int64, t time.Time) string {
	t = t.UTC()
	return fmt.Sprintf("%sdt=%s/hour=%02d/%s-%s-%d-%020d.parquet",
		DatasetPrefix(prefix, dataset), t.Format(time.DateOnly), t.Hour(), topic, ShortTopicID(topicID), partition, start)
}

// ShortTopicID is the part of a topic id that keys carry: its first 8
// characters.
func ShortTopicID(topicID string) string {
	if len(topicID) > 8 {
		return topicID[:8]
	}
	return topicID
}

// DatasetPrefix is the prefix every key of a dataset starts with
// (<prefix>/dataset=<ds>/).
func DatasetPrefix(prefix, dataset string) string {
	if prefix = strings.Trim(prefix, "/"); prefix != "" {
		prefix += "/"
	}
	return prefix + "dataset=" + dataset + "/"
}

// The names of Meta in S3 user metadata (sent as x-amz-meta-<name>).
const (
	userDataset   = "datamill-dataset"
	userTopic     = "datamill-topic"
	userTopicID   = "datamill-topic-id"
	userPartition = "datamill-partition"
	userStart     = "datamill-start-offset"
	userEnd       = "datamill-end-offset"
	userRecords   = "datamill-records"
)

// UserMetadata is Meta as S3 user metadata (x-amz-meta-*), what Head
// reads back without fetching the object.
func (m Meta) UserMetadata() map[string]string {
	return map[string]string{
		userDataset:   m.Dataset,
		userTopic:     m.Topic,
		userTopicID:   m.TopicID,
		userPartition: strconv.FormatInt(int64(m.Partition), 10),
		userStart:     strconv.FormatInt(m.Start, 10),
		userEnd:       strconv.FormatInt(m.End, 10),
		userRecords:   strconv.FormatInt(m.Records, 10),
	}
}

// ParseUserMetadata reads back what UserMetadata wrote (Schema stays nil).
// Names are matched without regard to case.
func ParseUserMetadata(user map[string]string) (Meta, error) {
	lower := make(map[string]string, len(user))
	for k, v := range user {
		lower[strings.ToLower(strings.TrimPrefix(strings.ToLower(k), "x-amz-meta-"))] = v
	}
	var errs []error
	str := func(name string) string {
		v, ok := lower[name]
		if !ok {
			errs = append(errs, fmt.Errorf("%s missing", name))
		}
		return v
	}
	num := func(name string, bits int) int64 {
		v, ok := lower[name]
		if !ok {
			errs = append(errs, fmt.Errorf("%s missing", name))
			return 0
		}
		n, err := strconv.ParseInt(v, 10, bits)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
		return n
	}
	m := Meta{
		Dataset:   str(userDataset),
		Topic:     str(userTopic),
		TopicID:   str(userTopicID),
		Partition: int32(num(userPartition, 32)), // #nosec G115 -- num parsed it with bitSize 32
		Start:     num(userStart, 64),
		End:       num(userEnd, 64),
		Records:   num(userRecords, 64),
	}
	if err := errors.Join(errs...); err != nil {
		return Meta{}, fmt.Errorf("lake object metadata: %w", err)
	}
	return m, nil
}
