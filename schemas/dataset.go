package schemas

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"

	"github.com/hamba/avro/v2"
)

// Dataset is everything a service needs of one dataset: its schemas, the
// key, and its declaration.
type Dataset struct {
	Name string
	// Raw is the schema of raw.<dataset>, Clean of clean.<dataset>;
	// Persisted and Scored, of persisted.<dataset> and scored.<dataset>,
	// are derived from Clean by PersistedOf and, with the model Decl
	// declares, ScoredOf.
	Raw, Clean, Persisted, Scored avro.Schema
	// Key is the clean key field (the clean schema's datamill.key), which
	// keys the dataset's records on every topic and names the scored
	// record's key field.
	Key string
	// Decl is the dataset's dataset.yaml, defaults filled in and checked
	// against Clean; the zero Declaration when the dataset has none.
	Decl Declaration
}

// seedPredictions is the predictions table of the users dataset, named as
// the seed named it.
const seedPredictions = "predictions"

// PredictionsTable names the table of a dataset's predictions, which the
// scorer owns: "predictions" for users, as the seed names it, and
// "<dataset>_predictions" for every other dataset.
func PredictionsTable(dataset string) string {
	if dataset == "users" {
		return seedPredictions
	}
	return dataset + "_" + seedPredictions
}

// The derived records' names, in the clean record's namespace.
const (
	persistedName = "Persisted"
	scoredName    = "Scored"
	actionName    = "LoadAction"
)

// The fields of a persisted record.
const (
	// FieldRecord holds the clean record as loaded.
	FieldRecord = "record"
	// FieldAction says what the loader did with it.
	FieldAction = "action"
	// FieldPersistedAt is when the loader's transaction committed.
	FieldPersistedAt = "persisted_at"
)

// The fields of a scored record besides its key, which is named as the
// clean key field.
const (
	FieldProbability    = "probability"
	FieldPredictedLabel = "predicted_label"
	FieldModelVersion   = "model_version"
	FieldScoredAt       = "scored_at"
)

// The loader's actions, the symbols of a persisted record's action.
var loadActions = []string{"INSERTED", "UPDATED", "UNCHANGED", "STALE"}

// PersistedOf derives the persisted schema of a dataset from its clean
// schema: the clean record as loaded, what the loader did with it and
// when. The record is named Persisted in the clean record's namespace.
func PersistedOf(clean avro.Schema) (avro.Schema, error) {
	rec, err := cleanRecord(clean)
	if err != nil {
		return nil, err
	}
	return derive(rec, map[string]any{
		"type":      "record",
		"name":      persistedName,
		"namespace": rec.Namespace(),
		"doc":       "A clean " + subject(rec) + " record after the loader wrote it to PostgreSQL, with what the loader did.",
		"fields": []any{
			map[string]any{"name": FieldRecord, "type": rec, "doc": "The clean record as loaded."},
			map[string]any{"name": FieldAction, "type": map[string]any{
				"type": "enum", "name": actionName, "symbols": loadActions, "default": "UPDATED",
				"doc": "INSERTED: new row; UPDATED: newer event with changed content; UNCHANGED: same content; STALE: an older event than the row's, not applied.",
			}, "doc": "What the loader did with the record."},
			map[string]any{"name": FieldPersistedAt, "type": map[string]any{"type": "long", "logicalType": "timestamp-micros"}, "doc": "When the loader's transaction committed."},
		},
	})
}

// The suffixes of the fields a ridge model named N adds to the scored
// record: N_estimate, its prediction, and N_stated, whether the clean
// record had a value of the model's label.
const (
	EstimateSuffix = "_estimate"
	StatedSuffix   = "_stated"
)

// avroName is what an Avro field may be called.
var avroName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// EstimateFields names the fields a model adds to its dataset's scored
// record: for a ridge model named N, N_estimate and N_stated; none ("")
// for a logistic model or none.
func EstimateFields(m *Model) (estimate, stated string) {
	if m == nil || m.Kind != Ridge {
		return "", ""
	}
	return m.Name + EstimateSuffix, m.Name + StatedSuffix
}

// ScoredOf derives the scored schema of a dataset from its clean schema
// and the model it declares (nil when it declares none): the model's
// prediction for one persisted event. The record is named Scored in the
// clean record's namespace; its key field has the clean key field's name,
// type and aliases, so that a key field renamed in the clean schema (with
// the old name as an alias) still reads scored records written before.
//
// A ridge model named N (its name defaults to the dataset's) adds two
// fields: N_estimate (null or a double, default null), the model's
// prediction, and N_stated (a boolean, default false), whether the clean
// record had a value of the model's label: the jobs dataset's
// salary_estimate and salary_stated. A logistic model adds none.
func ScoredOf(clean avro.Schema, m *Model) (avro.Schema, error) {
	rec, err := cleanRecord(clean)
	if err != nil {
		return nil, err
	}
	key, err := KeyField(rec)
	if err != nil {
		return nil, err
	}
	var kf *avro.Field
	for _, f := range rec.Fields() {
		if f.Name() == key {
			kf = f
		}
	}
	if kf == nil {
		return nil, fmt.Errorf("clean schema %s: key field %s (%s) is not one of its fields", rec.FullName(), key, KeyAttribute)
	}
	if kf.Type().Type() == avro.Union {
		return nil, fmt.Errorf("clean schema %s: key field %s is a union; a key is always set", rec.FullName(), key)
	}
	switch key {
	case FieldEventID, FieldProbability, FieldPredictedLabel, FieldModelVersion, FieldScoredAt:
		return nil, fmt.Errorf("clean schema %s: key field %s is also a field of the scored record; name the key otherwise", rec.FullName(), key)
	}
	keyField := map[string]any{"name": key, "type": kf.Type(), "doc": "The record key: the clean record's " + key + "."}
	if a := kf.Aliases(); len(a) > 0 {
		keyField["aliases"] = a
	}
	fields := []any{
		keyField,
		map[string]any{"name": FieldEventID, "type": "string", "doc": "Id of the event that was scored."},
		map[string]any{"name": FieldProbability, "type": "double", "doc": "A logistic model's probability of the positive class, in [0, 1]; a ridge model's predicted value."},
		map[string]any{"name": FieldPredictedLabel, "type": "int", "doc": "A logistic model's prediction: 1 when probability reaches the model's threshold, else 0; 0 for a ridge model."},
		map[string]any{"name": FieldModelVersion, "type": "string", "doc": "Version of the model artefact that scored the event."},
		map[string]any{"name": FieldScoredAt, "type": map[string]any{"type": "long", "logicalType": "timestamp-micros"}, "doc": "When the prediction was made."},
	}
	if estimate, stated := EstimateFields(m); estimate != "" {
		if !avroName.MatchString(m.Name) {
			return nil, fmt.Errorf("model.name %q: a ridge model's name starts the fields %s and %s of the scored record: want letters, digits and _, not starting with a digit", m.Name, estimate, stated)
		}
		if key == estimate || key == stated {
			return nil, fmt.Errorf("clean schema %s: key field %s is also a field the ridge model %s adds to the scored record; name the key or the model otherwise", rec.FullName(), key, m.Name)
		}
		fields = append(fields,
			map[string]any{
				"name": estimate, "type": []any{"null", "double"}, "default": nil,
				"doc": "The ridge model's estimate of " + m.Label.Column + " for the record (the probability field's value); null in records scored before it was kept.",
			},
			map[string]any{
				"name": stated, "type": "boolean", "default": false,
				"doc": "Whether the clean record had its own " + m.Label.Column + ", so that the estimate stands in only for records without one.",
			},
		)
	}
	return derive(rec, map[string]any{
		"type":      "record",
		"name":      scoredName,
		"namespace": rec.Namespace(),
		"doc":       "The model's prediction for one persisted " + subject(rec) + " event.",
		"fields":    fields,
	})
}

func cleanRecord(clean avro.Schema) (*avro.RecordSchema, error) {
	rec, ok := clean.(*avro.RecordSchema)
	if !ok {
		return nil, errors.New("a clean schema must be a record")
	}
	switch rec.Name() {
	case persistedName, scoredName, actionName:
		return nil, fmt.Errorf("clean schema %s: the name %s is taken by a derived schema; name the clean record otherwise, e.g. Clean", rec.FullName(), rec.Name())
	}
	return rec, nil
}

// subject names a clean record's dataset in docs: the last part of its
// namespace ("users" of datamill.users), else its name.
func subject(rec *avro.RecordSchema) string {
	ns := rec.Namespace()
	for i := len(ns) - 1; i >= 0; i-- {
		if ns[i] == '.' {
			return ns[i+1:]
		}
	}
	if ns != "" {
		return ns
	}
	return rec.Name()
}

// derive parses a derived schema, given as JSON-able values that may hold
// schemas (written in their full form).
func derive(rec *avro.RecordSchema, doc map[string]any) (avro.Schema, error) {
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("derive %s.%s from %s: %w", rec.Namespace(), doc["name"], rec.FullName(), err)
	}
	s, err := Parse(string(b))
	if err != nil {
		return nil, fmt.Errorf("derive %s.%s from %s: %w", rec.Namespace(), doc["name"], rec.FullName(), err)
	}
	return s, nil
}
