// Package postgres opens the PostgreSQL store, used when the control plane
// is shared by several nodes. It talks to the server through pgx (its
// database/sql adapter), and shares queries and migrations with SQLite
// through sqlstore.
package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/fleetgate/fleetgate/internal/store/sqlstore"
)

// Open connects to the database named by url (postgres://...) and applies
// migrations under an advisory lock, so several nodes may start at once.
func Open(ctx context.Context, url string) (*sqlstore.DB, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres url: %w", err)
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(16)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	s, err := sqlstore.New(ctx, db, Dialect(), sqlstore.Migrations())
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Dialect describes PostgreSQL to sqlstore.
func Dialect() sqlstore.Dialect {
	return sqlstore.Dialect{
		Name:      "postgres",
		Numbered:  true,
		ForUpdate: " FOR UPDATE",
		IsUnique: func(err error) bool {
			var e *pgconn.PgError
			return errors.As(err, &e) && e.Code == "23505"
		},
		MigrationLock:   `SELECT pg_advisory_lock(7460211)`,
		MigrationUnlock: `SELECT pg_advisory_unlock(7460211)`,
	}
}
