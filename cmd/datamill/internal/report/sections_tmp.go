package report

// TEMPORARY: stubs of the sections another branch writes (users.go,
// pipeline.go, profiles.go), so that `datamill report` builds until it
// merges. The integrator deletes this file.

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// Users is a stub of the users section.
func Users(context.Context, *pgx.Conn) (Section, error) {
	return Section{ID: "users", Title: "Users", Notes: []string{"not yet"}}, nil
}

// Pipeline is a stub of the pipeline and eco section.
func Pipeline(context.Context, *pgx.Conn) (Section, error) {
	return Section{ID: "pipeline", Title: "Pipeline", Notes: []string{"not yet"}}, nil
}

// Profiles is a stub of the profiles section.
func Profiles(context.Context, *pgx.Conn) (Section, error) {
	return Section{ID: "profiles", Title: "Profiles", Notes: []string{"not yet"}}, nil
}
