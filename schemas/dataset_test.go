package schemas

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hamba/avro/v2"
)

// scoredFields lists a scored schema's fields as name, type and default.
func scoredFields(t testing.TB, s avro.Schema) []string {
	t.Helper()
	var out []string
	for _, f := range s.(*avro.RecordSchema).Fields() {
		d := ""
		if f.HasDefault() {
			d = " = " + fmtDefault(f.Default())
		}
		out = append(out, f.Name()+" "+typeName(f.Type())+d)
	}
	return out
}

// fmtDefault writes a field's default.
func fmtDefault(v any) string {
	if v == nil {
		return "null"
	}
	return fmt.Sprint(v)
}

// A ridge model named N adds N_estimate and N_stated to the scored record,
// both with defaults; a logistic model, or none, adds nothing.
func TestScoredOfARidgeModelCarriesTheEstimateAndWhetherItWasStated(t *testing.T) {
	clean, err := Parse(ordersClean)
	if err != nil {
		t.Fatal(err)
	}
	base := []string{"order_no long", "event_id string", "probability double", "predicted_label int", "model_version string", "scored_at long(timestamp-micros)"}
	for name, tc := range map[string]struct {
		model *Model
		want  []string
	}{
		"no model":      {nil, base},
		"logistic":      {&Model{Kind: Logistic, Name: "returns", Label: Label{Column: "returned"}}, base},
		"ridge":         {&Model{Kind: Ridge, Name: "amount", Label: Label{Column: "amount"}}, append(base[:len(base):len(base)], "amount_estimate union[null,double] = null", "amount_stated boolean = false")},
		"ridge renamed": {&Model{Kind: Ridge, Name: "basket", Label: Label{Column: "amount"}}, append(base[:len(base):len(base)], "basket_estimate union[null,double] = null", "basket_stated boolean = false")},
	} {
		t.Run(name, func(t *testing.T) {
			s, err := ScoredOf(clean, tc.model)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, scoredFields(t, s)); diff != "" {
				t.Errorf("scored fields (-want +got):\n%s", diff)
			}
		})
	}
	for name, tc := range map[string]struct {
		clean string
		model *Model
		want  string
	}{
		"a name that is no Avro name": {ordersClean, &Model{Kind: Ridge, Name: "basket-2", Label: Label{Column: "amount"}}, `model.name "basket-2": a ridge model's name starts the fields basket-2_estimate and basket-2_stated`},
		"a key named as the estimate": {
			`{"type":"record","name":"Clean","datamill.key":"pay_estimate","fields":[{"name":"pay_estimate","type":"long"}]}`,
			&Model{Kind: Ridge, Name: "pay", Label: Label{Column: "x"}}, "key field pay_estimate is also a field the ridge model pay adds",
		},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := Parse(tc.clean)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ScoredOf(c, tc.model); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ScoredOf = %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

// The jobs dataset's ridge model, salary, gives its scored records
// salary_estimate and salary_stated, the same through Schema and the
// catalog; users' logistic model keeps its scored schema.
func TestTheBuiltInScoredSchemasFollowTheirModels(t *testing.T) {
	jobs, err := BuiltIn().Dataset("jobs")
	if err != nil {
		t.Fatal(err)
	}
	if jobs.Scored != MustSchema("jobs/scored") {
		t.Error("the catalog's jobs/scored is not the built-in one")
	}
	got := scoredFields(t, jobs.Scored)
	want := []string{"salary_estimate union[null,double] = null", "salary_stated boolean = false"}
	if len(got) < 2 || !cmp.Equal(got[len(got)-2:], want) {
		t.Errorf("jobs' scored fields %v, want them to end with %v", got, want)
	}
	if n := len(scoredFields(t, MustSchema("users/scored"))); n != 6 {
		t.Errorf("users' scored schema has %d fields, want the 6 a logistic model's has", n)
	}
}

// A dataset.yaml given for a built-in dataset whose model differs derives
// the scored schema from that model, not the built-in one.
func TestAnOverriddenDeclarationDerivesTheScoredSchema(t *testing.T) {
	dir := datasetsDir(t, map[string]map[string]string{"users": {
		DeclarationFile: "model: {kind: ridge, name: spend, label: {column: monthly_spend}, features: [{column: age, kind: numeric}]}\n",
	}})
	c, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.Dataset("users")
	if err != nil {
		t.Fatal(err)
	}
	got := scoredFields(t, d.Scored)
	if len(got) != 8 || got[6] != "spend_estimate union[null,double] = null" || got[7] != "spend_stated boolean = false" {
		t.Errorf("users' scored fields with a ridge model spend: %v", got)
	}
	if MustSchema("users/scored") == d.Scored {
		t.Error("the built-in users/scored was kept")
	}
}
