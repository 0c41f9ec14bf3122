// Package pgtest gives tests a private PostgreSQL schema on the server named
// by FLEETGATE_TEST_POSTGRES (default: the local test database), dropped when
// the test ends. Tests fail, not skip, when the server is missing: CI starts
// it, and a silently skipped backend is an untested backend.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// DefaultURL is the PostgreSQL used by tests when FLEETGATE_TEST_POSTGRES is unset.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// BaseURL returns the server URL tests use.
func BaseURL() string {
	if u := os.Getenv("FLEETGATE_TEST_POSTGRES"); u != "" {
		return u
	}
	return DefaultURL
}

// SchemaURL creates a fresh schema and returns a URL whose search_path
// points at it. The schema is dropped at cleanup.
func SchemaURL(t testing.TB) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "fgtest_" + hex.EncodeToString(b)
	cfg, err := pgx.ParseConfig(BaseURL())
	if err != nil {
		t.Fatalf("FLEETGATE_TEST_POSTGRES: %v", err)
	}
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		t.Fatalf("PostgreSQL at %s is required (run .ci/run or start it): %v", BaseURL(), err)
	}
	t.Cleanup(func() {
		db := stdlib.OpenDB(*cfg)
		defer db.Close()
		_, _ = db.ExecContext(context.Background(), `DROP SCHEMA `+schema+` CASCADE`)
	})
	u, _ := url.Parse(BaseURL())
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
