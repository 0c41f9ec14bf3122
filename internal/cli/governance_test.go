package cli

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	fgapp "github.com/fleetgate/fleetgate/internal/app"
	"github.com/fleetgate/fleetgate/internal/config"
)

// TestGovernanceCommands drives the commands against a real node.
func TestGovernanceCommands(t *testing.T) {
	const token = "fgt_governance-cli-test-token-0123456789"
	cfg := config.Default()
	cfg.DataDir, cfg.AdminAddr, cfg.HTTPAddr, cfg.AdminToken = t.TempDir(), "127.0.0.1:0", "", token
	a, err := fgapp.New(context.Background(), cfg, slog.New(slog.DiscardHandler), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Shutdown(context.Background()) })
	o := runOpts{env: map[string]string{EnvServer: a.AdminURL(), EnvToken: token}}
	if r := runCLI(t, o, "apis", "create", "vehicles", "--owner", "fleet-team"); r.err != nil {
		t.Fatalf("create API: %s", r.all())
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "gov.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(good, []byte("lint_levels:\n  version-in-path: off\nversion_budget: 3\napi_budgets: {vehicles: 4}\nretire_window: 14d\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("lint_levels:\n  no-such-rule: off\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		wantOut []string
		wantErr string
	}{
		{"show defaults", []string{"governance", "show"}, []string{"Version budget:  2 (default)", "Retire window:   30d (default)", "operation-security"}, ""},
		{"set keeps the rest", []string{"governance", "set", "--version-budget", "3", "--lint", "error-responses=error"},
			[]string{"Version budget:  3\n", "error-responses         error (set)"}, ""},
		{"set one API budget", []string{"governance", "set", "--api-budget", "vehicles=5"}, []string{"API budgets:     vehicles=5", "Version budget:  3\n"}, ""},
		{"unknown rule is refused", []string{"governance", "set", "--lint", "nope=off"}, nil, "known rules"},
		{"malformed flag", []string{"governance", "set", "--lint", "nope"}, nil, `invalid --lint "nope": want rule=level`},
		{"apply a file", []string{"governance", "apply", "-f", good}, []string{"Version budget:  3\n", "API budgets:     vehicles=4", "Retire window:   14d\n", "version-in-path         off (set)"}, ""},
		{"apply locates the error in the file", []string{"governance", "apply", "-f", bad}, nil, "bad.yaml:2:3"},
		{"reset", []string{"governance", "set", "--reset"}, []string{"Version budget:  2 (default)"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, o, tc.args...)
			if tc.wantErr != "" {
				if r.err == nil || !strings.Contains(r.all(), tc.wantErr) {
					t.Fatalf("want error %q, got: %s", tc.wantErr, r.all())
				}
				return
			}
			if r.err != nil {
				t.Fatalf("error: %s", r.all())
			}
			// Column widths depend on the longest rule name: compare words.
			squeeze := func(s string) string { return strings.Join(strings.Fields(s), " ") }
			for _, w := range tc.wantOut {
				if !strings.Contains(squeeze(r.stdout), squeeze(w)) {
					t.Fatalf("output lacks %q:\n%s", w, r.stdout)
				}
			}
			if strings.Contains(r.all(), token) {
				t.Fatal("the token was printed")
			}
		})
	}
}
