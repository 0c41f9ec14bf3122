// Package sqlstore implements store.Store over database/sql. The SQLite and
// PostgreSQL backends share it and differ only by a Dialect (placeholders,
// row locking, error classification) and their embedded migrations.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fleetgate/fleetgate/internal/store"
)

// Dialect is what differs between SQL backends.
type Dialect struct {
	Name string
	// Numbered placeholders ($1, $2) instead of '?'.
	Numbered bool
	// ForUpdate is appended to the audit head read to lock the row
	// (PostgreSQL); SQLite serializes writers with BEGIN IMMEDIATE instead.
	ForUpdate string
	// IsUnique reports whether err is a unique-constraint violation.
	IsUnique func(error) bool
	// MigrationLock, when set, runs before migrations on the same
	// connection (PostgreSQL advisory lock so concurrent nodes migrate once).
	MigrationLock string
	// MigrationUnlock releases MigrationLock; the connection goes back to
	// the pool afterwards, so a session lock must be released explicitly.
	MigrationUnlock string
}

// DB is a store.Store over a *sql.DB.
type DB struct {
	db      *sql.DB
	dialect Dialect
	// rebound caches queries rewritten for numbered placeholders
	// (string -> string).
	rebound sync.Map
}

var _ store.Store = (*DB)(nil)

// New wraps db. Migrations from migrations (files NNNN_name.sql, applied in
// order, each in its own transaction and recorded in schema_migrations) are
// applied before New returns.
func New(ctx context.Context, db *sql.DB, d Dialect, migrations fs.FS) (*DB, error) {
	s := &DB{db: db, dialect: d}
	if err := s.migrate(ctx, migrations); err != nil {
		return nil, fmt.Errorf("migrate %s store: %w", d.Name, err)
	}
	return s, nil
}

// SQL returns the underlying database, for tests that tamper with rows.
func (s *DB) SQL() *sql.DB { return s.db }

// Backend implements store.Store.
func (s *DB) Backend() string { return s.dialect.Name }

// Ping implements store.Store.
func (s *DB) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// Close implements store.Store.
func (s *DB) Close() error { return s.db.Close() }

// View implements store.Store.
func (s *DB) View(ctx context.Context, fn func(store.Tx) error) error {
	return s.run(ctx, true, fn)
}

// Update implements store.Store.
func (s *DB) Update(ctx context.Context, fn func(store.Tx) error) error {
	return s.run(ctx, false, fn)
}

func (s *DB) run(ctx context.Context, readOnly bool, fn func(store.Tx) error) (err error) {
	sqlTx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: readOnly})
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	t := &tx{s: s, tx: sqlTx, ctx: ctx}
	defer func() {
		if p := recover(); p != nil {
			_ = sqlTx.Rollback()
			panic(p)
		}
	}()
	if err := fn(t); err != nil {
		_ = sqlTx.Rollback()
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return s.wrap(fmt.Errorf("commit: %w", err))
	}
	return nil
}

// q rewrites '?' placeholders for the dialect. Queries are constants, so the
// rewrite is computed once per query text.
func (s *DB) q(query string) string {
	if !s.dialect.Numbered {
		return query
	}
	if r, ok := s.rebound.Load(query); ok {
		return r.(string)
	}
	var b strings.Builder
	n := 0
	for _, c := range query {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	s.rebound.Store(query, b.String())
	return b.String()
}

// wrap classifies driver errors into store sentinels.
func (s *DB) wrap(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	if s.dialect.IsUnique != nil && s.dialect.IsUnique(err) {
		return fmt.Errorf("%w: %v", store.ErrConflict, err)
	}
	return err
}

func (s *DB) migrate(ctx context.Context, migrations fs.FS) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if s.dialect.MigrationLock != "" {
		if _, err := conn.ExecContext(ctx, s.dialect.MigrationLock); err != nil {
			return fmt.Errorf("migration lock: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), s.dialect.MigrationUnlock)
	}
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`); err != nil {
		return err
	}
	entries, err := fs.ReadDir(migrations, ".")
	if err != nil {
		return err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".sql") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	for _, name := range names {
		num, _, ok := strings.Cut(name, "_")
		version, err := strconv.ParseInt(num, 10, 64)
		if !ok || err != nil {
			return fmt.Errorf("migration %s: name must start with a number and '_'", name)
		}
		var have int
		if err := conn.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM schema_migrations WHERE version = ?`), version).Scan(&have); err != nil {
			return err
		}
		if have > 0 {
			continue
		}
		body, err := fs.ReadFile(migrations, name)
		if err != nil {
			return err
		}
		t, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := t.ExecContext(ctx, string(body)); err != nil {
			_ = t.Rollback()
			return fmt.Errorf("migration %s: %w", name, err)
		}
		if _, err := t.ExecContext(ctx, s.q(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`), version, name, time.Now().UnixMicro()); err != nil {
			_ = t.Rollback()
			return err
		}
		if err := t.Commit(); err != nil {
			return fmt.Errorf("migration %s: commit: %w", name, err)
		}
	}
	return nil
}
