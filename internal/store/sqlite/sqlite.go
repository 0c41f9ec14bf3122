// Package sqlite opens the embedded default store: a single SQLite file in
// WAL mode through a pure-Go driver (no cgo), so `fleetgate serve` needs
// nothing installed.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	"github.com/ncruces/go-sqlite3"
	_ "github.com/ncruces/go-sqlite3/driver" // registers "sqlite3"

	"github.com/fleetgate/fleetgate/internal/store/sqlstore"
)

// FileName is the database file inside the data directory.
const FileName = "fleetgate.db"

// Open opens (creating when missing) the store in dir.
//
// Durability: WAL with synchronous=FULL, so a transaction acknowledged to a
// client survives kill -9 and power loss. Writers use BEGIN IMMEDIATE (the
// driver default), which serializes them and keeps the audit chain linear;
// busy_timeout makes concurrent writers wait instead of failing.
func Open(ctx context.Context, dir string) (*sqlstore.DB, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir %s: %w", dir, err)
	}
	path := filepath.Join(dir, FileName)
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(15000)")
	q.Add("_pragma", "journal_mode(wal)")
	q.Add("_pragma", "synchronous(full)")
	q.Add("_pragma", "foreign_keys(on)")
	q.Set("_txlock", "immediate")
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		db.Close()
		return nil, err
	}
	s, err := sqlstore.New(ctx, db, Dialect(), sqlstore.Migrations())
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Dialect describes SQLite to sqlstore.
func Dialect() sqlstore.Dialect {
	return sqlstore.Dialect{
		Name: "sqlite",
		IsUnique: func(err error) bool {
			var e *sqlite3.Error
			return errors.As(err, &e) && (e.ExtendedCode() == sqlite3.CONSTRAINT_UNIQUE || e.ExtendedCode() == sqlite3.CONSTRAINT_PRIMARYKEY)
		},
	}
}
