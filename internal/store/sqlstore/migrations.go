package sqlstore

import (
	"embed"
	"io/fs"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the portable schema migrations shared by the SQLite and
// PostgreSQL backends.
func Migrations() fs.FS {
	// fs.Sub fails only for an invalid path; this one is fixed at build time.
	sub, _ := fs.Sub(migrationFiles, "migrations")
	return sub
}
