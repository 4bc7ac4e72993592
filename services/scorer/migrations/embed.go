// Package migrations holds the scorer's versioned PostgreSQL migrations,
// applied at start with pg.Migrate: its own tables. The predictions
// tables, one per dataset, are created from the dataset's declaration.
package migrations

import "embed"

// FS holds the NNNN_description.sql files.
//
//go:embed *.sql
var FS embed.FS
