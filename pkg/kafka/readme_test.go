package kafka_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/datamill/datamill/pkg/kafka"
)

// readmeTable returns the rows of the first table after the line of
// README.md that starts with heading, as cells by their first cell.
func readmeTable(t *testing.T, heading string) map[string][]string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "\n"+heading)
	if !ok {
		t.Fatalf("README.md has no %q", heading)
	}
	rows := map[string][]string{}
	inTable := false
	for line := range strings.Lines(after) {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "|") {
			if inTable {
				break
			}
			continue
		}
		inTable = true
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		rows[cells[0]] = cells[1:]
	}
	return rows
}

// aclName is a name of README's ACL table: `name`, or `name` (literal)
// for one that is no prefix.
var aclName = regexp.MustCompile("`([^`]+)`( \\(literal\\))?")

// readmeACLs reads the ACLs of a row of README's ACL table, whose cells
// are topics, groups, transactional ids and other: a topics cell is
// segments "op, op `name`, `name`" joined by "; ".
func readmeACLs(cells []string) []string {
	var out []string
	add := func(resource, op, name, literal string) {
		pattern := "PREFIXED"
		if literal != "" {
			pattern = "LITERAL"
		}
		out = append(out, resource+" "+op+" "+pattern+" "+name)
	}
	for i, cell := range cells {
		if cell == "" {
			continue
		}
		switch i {
		case 0:
			for seg := range strings.SplitSeq(cell, "; ") {
				ops, _, _ := strings.Cut(seg, "`")
				for op := range strings.SplitSeq(strings.TrimSpace(ops), ", ") {
					for _, m := range aclName.FindAllStringSubmatch(seg, -1) {
						add(kafka.ResourceTopic, strings.ToUpper(strings.ReplaceAll(op, " ", "_")), m[1], m[2])
					}
				}
			}
		case 1, 2:
			resource, op := kafka.ResourceGroup, kafka.OpRead
			if i == 2 {
				resource, op = kafka.ResourceTransactionalID, kafka.OpWrite
			}
			for _, m := range aclName.FindAllStringSubmatch(cell, -1) {
				add(resource, op, m[1], m[2])
			}
		case 3:
			if strings.Contains(cell, "describe the cluster") {
				out = append(out, kafka.ResourceCluster+" "+kafka.OpDescribe+" LITERAL cluster")
			}
		}
	}
	return out
}

// TestREADMEHasTheACLs checks README's table of who may do what on Kafka
// against kafka.ACLs, both ways.
func TestREADMEHasTheACLs(t *testing.T) {
	rows := readmeTable(t, "**Kafka: who may do what.**")
	every := readmeACLs(rows["every service"])
	if len(every) == 0 {
		t.Fatal("README's ACL table has no row for every service")
	}
	for _, svc := range kafka.Services() {
		cells, ok := rows["`"+svc+"`"]
		if !ok {
			t.Errorf("README's ACL table has no row for %s", svc)
			continue
		}
		got := append(readmeACLs(cells), every...)
		var want []string
		for _, a := range kafka.ACLs(svc) {
			_, pattern, op, err := a.Kmsg()
			if err != nil {
				t.Fatal(err)
			}
			name := a.Name
			if a.Resource == kafka.ResourceCluster {
				name = "cluster"
			}
			want = append(want, a.Resource+" "+op.String()+" "+pattern.String()+" "+name)
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("README's ACLs of %s:\n%s\nwant kafka.ACLs(%q):\n%s", svc, strings.Join(got, "\n"), svc, strings.Join(want, "\n"))
		}
	}
}
