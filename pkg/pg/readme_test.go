package pg

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// privilege is a privilege README's grant table names, with the word
// before it: "no DELETE" and "never UPDATE" say what a role may not do.
var privilege = regexp.MustCompile(`(\w+ )?\b(SELECT|INSERT|UPDATE|DELETE|TRUNCATE|TEMP)\b`)

// TestREADMEHasTheGrants checks README's table of what each PostgreSQL
// role may do against the grants: the privileges a role's row gives are
// the ones some kind of table grants it (TEMP: the loader's alone, from
// Provision), and the row of a role with no grants names none.
func TestREADMEHasTheGrants(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "\n### PostgreSQL roles, the migration owner and the batch audit\n")
	if !ok {
		t.Fatal("README.md has no section on the PostgreSQL roles")
	}
	rows := map[string]string{}
	inTable := false
	for line := range strings.Lines(after) {
		if !strings.HasPrefix(line, "|") {
			if inTable {
				break
			}
			continue
		}
		inTable = true
		role, may, _ := strings.Cut(strings.Trim(strings.TrimSpace(line), "|"), "|")
		rows[strings.Trim(strings.TrimSpace(role), "`")] = may
	}
	for _, role := range Roles() {
		may, ok := rows[role]
		if !ok {
			t.Errorf("README's grant table has no row for %s", role)
			continue
		}
		var got []string
		for _, m := range privilege.FindAllStringSubmatch(may, -1) {
			if m[1] != "no " && m[1] != "never " && !slices.Contains(got, m[2]) {
				got = append(got, m[2])
			}
		}
		var want []string
		for _, byRole := range grants {
			for p := range strings.SplitSeq(byRole[role], ", ") {
				if p = strings.ToUpper(p); p != "" && !slices.Contains(want, p) {
					want = append(want, p)
				}
			}
		}
		if role == RoleLoader {
			want = append(want, "TEMP")
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("README's row of %s gives %v, want the privileges granted to it: %v", role, got, want)
		}
	}
}
