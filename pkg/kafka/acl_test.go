package kafka_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/stage"
)

// allows reports whether acls allow op on the resource of type rt named
// name.
func allows(acls []kafka.ACL, rt, name, op string) bool {
	return slices.ContainsFunc(acls, func(a kafka.ACL) bool {
		match := a.Name == name || a.Prefixed && strings.HasPrefix(name, a.Name)
		return a.Resource == rt && a.Operation == op && match
	})
}

func TestACLs(t *testing.T) {
	// Literal names are the pipeline's fixed ones, never a dataset's; a
	// prefix ends where a dataset's name would begin.
	literal := []string{kafka.EcoSamples, "datamill-ecometer", "kafka-cluster"}
	for _, svc := range kafka.Services() {
		acls := kafka.ACLs(svc)
		if len(acls) == 0 {
			t.Errorf("%s has no ACLs", svc)
		}
		for _, a := range acls {
			if _, _, _, err := a.Kmsg(); err != nil {
				t.Errorf("%s: %v", svc, err)
			}
			if !a.Prefixed && !slices.Contains(literal, a.Name) {
				t.Errorf("%s: %s names a single resource outside %v", svc, a, literal)
			}
			if a.Prefixed && !strings.HasSuffix(a.Name, ".") && !strings.HasSuffix(a.Name, "-") {
				t.Errorf("%s: %s is a prefix that does not end before a dataset's name", svc, a)
			}
		}
		for _, op := range []string{kafka.OpWrite, kafka.OpCreate} {
			if !allows(acls, kafka.ResourceTopic, kafka.EcoSamples, op) {
				t.Errorf("%s may not %s %s", svc, op, kafka.EcoSamples)
			}
		}
	}
	if kafka.ACLs("stranger") != nil {
		t.Error("ACLs of a name that is no service")
	}

	// Each stage's names, as pkg/stage makes them for any dataset.
	tests := map[string]struct {
		service, in, out string
		txn              bool
	}{
		"cleaner": {"cleaner", "raw.orders", "clean.orders", true},
		"loader":  {"loader", "clean.orders", "persisted.orders", true},
		"scorer":  {"scorer", "persisted.orders", "scored.orders", true},
		"lake":    {"lake", "raw.orders", "", false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			acls := kafka.ACLs(tc.service)
			group := stage.Group(tc.service, "orders")
			type check struct {
				rt, name, op string
				want         bool
			}
			checks := []check{
				{kafka.ResourceTopic, tc.in, kafka.OpRead, true},
				{kafka.ResourceGroup, group, kafka.OpRead, true},
				{kafka.ResourceTransactionalID, group + "-dev", kafka.OpWrite, tc.txn},
				{kafka.ResourceTopic, tc.in, kafka.OpWrite, false},
				{kafka.ResourceGroup, stage.Group("other", "orders"), kafka.OpRead, false},
			}
			if tc.out != "" {
				checks = append(checks,
					check{kafka.ResourceTopic, tc.out, kafka.OpWrite, true},
					check{kafka.ResourceTopic, stage.ControlTopic(tc.service, "orders"), kafka.OpWrite, true})
			}
			for _, c := range checks {
				if got := allows(acls, c.rt, c.name, c.op); got != c.want {
					t.Errorf("%s may %s %s %s: %v, want %v", tc.service, c.op, c.rt, c.name, got, c.want)
				}
			}
		})
	}
}
