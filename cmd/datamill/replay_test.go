package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestParseWhen(t *testing.T) {
	tests := map[string]struct {
		in   string
		want time.Time
		bad  bool
	}{
		"empty":            {in: "", want: time.Time{}},
		"day":              {in: "2024-05-01", want: time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)},
		"hour":             {in: "2024-05-01T13", want: time.Date(2024, 5, 1, 13, 0, 0, 0, time.UTC)},
		"rfc 3339":         {in: "2024-05-01T13:30:05Z", want: time.Date(2024, 5, 1, 13, 30, 5, 0, time.UTC)},
		"rfc 3339 in +02":  {in: "2024-05-01T13:30:05+02:00", want: time.Date(2024, 5, 1, 11, 30, 5, 0, time.UTC)},
		"rfc 3339 nano":    {in: "2024-05-01T13:30:05.25Z", want: time.Date(2024, 5, 1, 13, 30, 5, 250_000_000, time.UTC)},
		"day and a minute": {in: "2024-05-01T13:30", bad: true},
		"not a time":       {in: "yesterday", bad: true},
		"no month 13":      {in: "2024-13-01", bad: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := parseWhen(tc.in)
			if tc.bad {
				if err == nil || !strings.Contains(err.Error(), tc.in) {
					t.Fatalf("parseWhen(%q) = %v, %v; want an error naming the input", tc.in, got, err)
				}
				return
			}
			if err != nil || !got.Equal(tc.want) || got.Location() != time.UTC {
				t.Fatalf("parseWhen(%q) = %v, %v; want %v in UTC", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestWindowHours(t *testing.T) {
	at := func(h, m int) time.Time { return time.Date(2024, 5, 1, h, m, 0, 0, time.UTC) }
	tests := map[string]struct {
		w        window
		hour     time.Time
		meets    bool
		contains []time.Time // in the window
		outside  []time.Time
	}{
		"open":                {w: window{}, hour: at(3, 0), meets: true, contains: []time.Time{at(0, 0), at(23, 59)}},
		"since in the hour":   {w: window{since: at(3, 30)}, hour: at(3, 0), meets: true, contains: []time.Time{at(3, 30)}, outside: []time.Time{at(3, 29)}},
		"since at hour's end": {w: window{since: at(4, 0)}, hour: at(3, 0), meets: false, outside: []time.Time{at(3, 59)}},
		"until at hour start": {w: window{until: at(3, 0)}, hour: at(3, 0), meets: false, contains: []time.Time{at(2, 59)}, outside: []time.Time{at(3, 0)}},
		"until in the hour":   {w: window{until: at(3, 1)}, hour: at(3, 0), meets: true, contains: []time.Time{at(3, 0)}, outside: []time.Time{at(3, 1)}},
		"both around":         {w: window{since: at(2, 0), until: at(5, 0)}, hour: at(4, 0), meets: true, contains: []time.Time{at(2, 0), at(4, 59)}, outside: []time.Time{at(1, 59), at(5, 0)}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := tc.w.meetsHour(tc.hour); got != tc.meets {
				t.Errorf("%v.meetsHour(%v) = %v, want %v", tc.w, tc.hour, got, tc.meets)
			}
			for _, in := range tc.contains {
				if !tc.w.contains(in) {
					t.Errorf("%v does not contain %v", tc.w, in)
				}
			}
			for _, out := range tc.outside {
				if tc.w.contains(out) {
					t.Errorf("%v contains %v", tc.w, out)
				}
			}
		})
	}
}

func TestParseObjectKey(t *testing.T) {
	tests := map[string]struct {
		key       string
		partition int32
		start     int64
		hour      time.Time
		bad       bool
	}{
		"a key":             {key: "raw/dataset=users/dt=2024-05-01/hour=07/raw.users-7f3a09c1-2-00000000000000001234.parquet", partition: 2, start: 1234, hour: time.Date(2024, 5, 1, 7, 0, 0, 0, time.UTC)},
		"a dash in a topic": {key: "lake/raw/dataset=my-ds/dt=2023-12-31/hour=23/raw.my-ds-7f3a09c1-0-00000000000000000000.parquet", partition: 0, start: 0, hour: time.Date(2023, 12, 31, 23, 0, 0, 0, time.UTC)},
		"no topic id":       {key: "raw/dataset=users/dt=2024-05-01/hour=07/raw.users-2-00000000000000001234.parquet", bad: true},
		"no hour":           {key: "raw/dataset=users/dt=2024-05-01/raw.users-2-00000000000000001234.parquet", bad: true},
		"not parquet":       {key: "raw/dataset=users/dt=2024-05-01/hour=07/raw.users-2-1.json", bad: true},
		"no offset":         {key: "raw/dataset=users/dt=2024-05-01/hour=07/raw.users-x-y.parquet", bad: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			o, err := parseObjectKey(tc.key)
			if tc.bad {
				if err == nil || !strings.Contains(err.Error(), tc.key) {
					t.Fatalf("parseObjectKey(%q) = %+v, %v; want an error naming the key", tc.key, o, err)
				}
				return
			}
			if err != nil || o.partition != tc.partition || o.start != tc.start || !o.hour.Equal(tc.hour) {
				t.Fatalf("parseObjectKey(%q) = %+v, %v; want partition %d, start %d, hour %v", tc.key, o, err, tc.partition, tc.start, tc.hour)
			}
		})
	}
}

func TestReplayRefusesWhatItCannotDo(t *testing.T) {
	tests := map[string]struct {
		args []string
		env  []string
		want string
	}{
		"no source":       {args: []string{"replay", "users"}, want: "--from-lake"},
		"unknown dataset": {args: []string{"replay", "nosuch", "--from-lake"}, env: []string{"S3_ENDPOINT=http://127.0.0.1:1"}, want: "nosuch"},
		"no S3_ENDPOINT":  {args: []string{"replay", "users", "--from-lake"}, want: "S3_ENDPOINT is not set"},
		"bad since":       {args: []string{"replay", "users", "--from-lake", "--since", "soon"}, want: `--since: "soon"`},
		"empty window":    {args: []string{"replay", "users", "--from-lake", "--since", "2024-05-02", "--until", "2024-05-01"}, want: "is not before --until"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := run(t.Context(), tc.args, tc.env, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v = %v, want an error saying %q", tc.args, err, tc.want)
			}
		})
	}
	if err := run(t.Context(), []string{"replay"}, nil, io.Discard, io.Discard); err != errUsage {
		t.Errorf("replay without a dataset = %v, want a usage error", err)
	}
}
