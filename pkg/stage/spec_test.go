package stage

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"

	"github.com/datamill/datamill/pkg/kafka"
	"github.com/datamill/datamill/pkg/serde"
	"github.com/datamill/datamill/pkg/testkit"
)

func TestNewSpecWiresTheStepsTopicsAndCodecs(t *testing.T) {
	reg, err := serde.NewRegistry(serde.Config{RegistryURL: testkit.Registry(t)})
	if err != nil {
		t.Fatal(err)
	}
	h := PerRecord(echo)
	spec, err := NewSpec(t.Context(), reg, Step{
		Stage: "cleaner", Dataset: "jobs",
		From: kafka.Raw, In: itemSchema,
		To: kafka.Clean, Out: itemSchema,
	}, h)
	if err != nil {
		t.Fatal(err)
	}
	got := []string{spec.Stage, spec.Dataset, spec.Input, spec.Output, spec.DeadLetters}
	if diff := cmp.Diff([]string{"cleaner", "jobs", "raw.jobs", "clean.jobs", "dlq.jobs"}, got); diff != "" {
		t.Errorf("stage, dataset, input, output, dead letters (-want +got):\n%s", diff)
	}
	if spec.Keys == nil || spec.DeadLetterEncoder == nil || spec.Handler == nil {
		t.Errorf("spec %+v lacks its key codec, dead-letter encoder or handler", spec)
	}
	// What the input topic's codec writes, the spec decodes; what the
	// spec encodes, the output topic's codec reads.
	in, err := serde.NewCodec[item](t.Context(), reg, "raw.jobs", itemSchema)
	if err != nil {
		t.Fatal(err)
	}
	out, err := serde.NewCodec[item](t.Context(), reg, "clean.jobs", itemSchema)
	if err != nil {
		t.Fatal(err)
	}
	want := item{ID: 7, Payload: "seven"}
	b, err := in.Encode(&want)
	if err != nil {
		t.Fatal(err)
	}
	var decoded, read item
	if err := spec.Decoder.Decode(b, &decoded); err != nil || decoded != want {
		t.Fatalf("the spec decodes raw.jobs's %+v as %+v, %v", want, decoded, err)
	}
	if b, err = spec.Encoder.AppendEncode(nil, &decoded); err != nil {
		t.Fatal(err)
	}
	if err := out.Decode(b, &read); err != nil || read != want {
		t.Errorf("clean.jobs's codec reads the spec's encoding of %+v as %+v, %v", want, read, err)
	}
	if _, err := NewRunner(*spec, testConfig("i1"), kafka.Config{Brokers: []string{"localhost:1"}}, zap.NewNop(), nil); err != nil {
		t.Errorf("NewRunner of the spec: %v", err)
	}
}

func TestNewSpecNamesWhatTheStepLacks(t *testing.T) {
	reg, err := serde.NewRegistry(serde.Config{RegistryURL: testkit.Registry(t)})
	if err != nil {
		t.Fatal(err)
	}
	full := Step{Stage: "loader", Dataset: "jobs", From: kafka.Clean, In: itemSchema, To: kafka.Persisted, Out: itemSchema}
	for name, tc := range map[string]struct {
		step Step
		want string
	}{
		"nothing":            {Step{}, "stage step lacks Stage, Dataset, From, In, To, Out"},
		"no dataset":         {func() Step { s := full; s.Dataset = ""; return s }(), "stage step lacks Dataset"},
		"no output schema":   {func() Step { s := full; s.Out = nil; return s }(), "stage step lacks Out"},
		"no topics":          {func() Step { s := full; s.From, s.To = "", ""; return s }(), "stage step lacks From, To"},
		"no stage nor input": {func() Step { s := full; s.Stage, s.In = "", nil; return s }(), "stage step lacks Stage, In"},
	} {
		t.Run(name, func(t *testing.T) {
			spec, err := NewSpec(context.Background(), reg, tc.step, PerRecord(echo))
			if err == nil || err.Error() != tc.want || spec != nil {
				t.Errorf("NewSpec(%+v) = %v, %v; want no spec and %q", tc.step, spec, err, tc.want)
			}
		})
	}
}

// The fields a spec lacks are named in their order in Spec, every time.
func TestNewRunnerNamesWhatTheSpecLacksInOrder(t *testing.T) {
	want := "stage spec lacks Stage, Dataset, Input, Output, DeadLetters, Decoder, Encoder, DeadLetterEncoder, Handler"
	for range 20 {
		if _, err := NewRunner(Spec[item, item]{}, testConfig("i1"), kafka.Config{}, zap.NewNop(), nil); err == nil || err.Error() != want {
			t.Fatalf("NewRunner(Spec{}) = %v, want %q", err, want)
		}
	}
}
