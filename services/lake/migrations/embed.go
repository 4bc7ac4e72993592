// Package migrations holds the lake's versioned PostgreSQL migrations,
// applied at start with pg.Migrate.
package migrations

import "embed"

// FS holds the NNNN_description.sql files.
//
//go:embed *.sql
var FS embed.FS
