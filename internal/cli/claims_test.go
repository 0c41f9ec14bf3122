package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	fgapp "github.com/fleetgate/fleetgate/internal/app"
	"github.com/fleetgate/fleetgate/internal/config"
	"github.com/fleetgate/fleetgate/internal/identity/pki/pkitest"
)

// TestClaimsAndExternalCACommands runs the commands against a real node.
func TestClaimsAndExternalCACommands(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir, cfg.AdminAddr, cfg.HTTPAddr, cfg.AdminToken = t.TempDir(), "127.0.0.1:0", "", "fgt_cli-claims-token-0123456789abcdef"
	cfg.DeviceKEK = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{5}, 32))
	a, err := fgapp.New(context.Background(), cfg, slog.New(slog.DiscardHandler), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Shutdown(context.Background()) })
	o := runOpts{env: map[string]string{EnvServer: a.AdminURL(), EnvToken: cfg.AdminToken}}
	run := func(args ...string) cliResult {
		t.Helper()
		r := runCLI(t, o, args...)
		if r.err != nil {
			t.Fatalf("%v: %s", args, r.all())
		}
		return r
	}
	run("ca", "create")
	r := run("claims", "create", "batch-1", "--model", "em-300", "--model", "em-400", "--max-devices", "10", "--expires-in", "720h")
	if !strings.HasPrefix(r.stdout, "fgc_") || strings.Count(r.stdout, "\n") != 1 || !strings.Contains(r.stderr, "will not be shown again") {
		t.Fatalf("token claim output: %q %q", r.stdout, r.stderr)
	}
	r = run("claims", "create", "batch-2", "--model", "em-300", "--max-devices", "1", "--expires-in", "24h", "--certificate")
	if !strings.Contains(r.stdout, "BEGIN CERTIFICATE") || !strings.Contains(r.stdout, "BEGIN PRIVATE KEY") {
		t.Fatalf("certificate claim output: %q", r.stdout)
	}
	if r := runCLI(t, o, "claims", "create", "x", "--model", "m", "--max-devices", "1"); r.err == nil || !strings.Contains(r.all(), "expires-in") {
		t.Fatalf("missing --expires-in: %s", r.all())
	}
	if r := runCLI(t, o, "claims", "create", "x", "--model", "m", "--max-devices", "0", "--expires-in", "1h"); r.err == nil || !strings.Contains(r.all(), "max_devices") {
		t.Fatalf("server validation not shown: %s", r.all())
	}
	r = run("claims", "list")
	if !strings.Contains(r.stdout, "batch-1  token") || !strings.Contains(r.stdout, "0/10") || !strings.Contains(r.stdout, "batch-2  certificate") {
		t.Fatalf("list: %s", r.stdout)
	}
	run("claims", "revoke", "batch-1", "--reason", "done")
	if r := run("claims", "get", "batch-1"); !strings.Contains(r.stdout, "revoked") {
		t.Fatalf("get after revoke: %s", r.stdout)
	}

	ca := pkitest.NewExternalCA(t, nil)
	dir := t.TempDir()
	file, verif, wrong := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "verif.pem"), filepath.Join(dir, "wrong.pem")
	if r := run("external-cas", "registration-code"); r.stdout != "fleetgate-ca-verification:default\n" {
		t.Fatalf("registration-code: %q", r.stdout)
	}
	if r := run("-o", "json", "external-cas", "registration-code"); !strings.Contains(r.stdout, `"registration_code": "fleetgate-ca-verification:default"`) {
		t.Fatalf("registration-code -o json: %q", r.stdout)
	}
	for name, body := range map[string]string{file: ca.PEM, verif: ca.Verification(t, "default"), wrong: ca.Verification(t, "other")} {
		if err := os.WriteFile(name, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if r := runCLI(t, o, "external-cas", "add", "factory", "--cert", file, "--source", "cn"); r.err == nil || !strings.Contains(r.all(), "verification-cert") {
		t.Fatalf("add without --verification-cert: %s", r.all())
	}
	if r := runCLI(t, o, "external-cas", "add", "factory", "--cert", file, "--verification-cert", wrong); r.err == nil ||
		!strings.Contains(r.all(), "/verification_certificate") || !strings.Contains(r.all(), "fleetgate-ca-verification:default") {
		t.Fatalf("add with another tenant's proof: %s", r.all())
	}
	run("external-cas", "add", "factory", "--cert", file, "--verification-cert", verif, "--source", "san-dns", "--pattern", "{device}.devices.example.com")
	if r := run("external-cas", "list"); !strings.Contains(r.stdout, "factory") || !strings.Contains(r.stdout, "{device}.devices.example.com") {
		t.Fatalf("external-cas list: %s", r.stdout)
	}
	if r := runCLI(t, o, "external-cas", "add", "bad", "--cert", file, "--verification-cert", verif, "--source", "san-dns"); r.err == nil || !strings.Contains(r.all(), "mapping") {
		t.Fatalf("bad mapping accepted: %s", r.all())
	}
	run("external-cas", "delete", "factory")
	if r := run("external-cas", "list"); strings.Contains(r.stdout, "factory") {
		t.Fatalf("deleted CA still listed: %s", r.stdout)
	}
}
