package cli

import (
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

func writeFile(t *testing.T, path, content string, mode os.FileMode) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestResolveSettingsPrecedence(t *testing.T) {
	const fileCfg = "server: http://file:1\ntoken: file-token\ntenant: file-tenant\n"
	tests := []struct {
		name        string
		args        []string
		env         map[string]string
		defaultFile string // content of ~/.config/fleetgate/cli.yaml, "" for none
		otherFile   string // content of a file named by {other}
		want        settings
		wantErr     string
		wantWarn    string
	}{
		{
			name: "defaults",
			want: settings{Server: DefaultServer, Output: "table"},
		},
		{
			name:        "default config file",
			defaultFile: fileCfg,
			want:        settings{Server: "http://file:1", Token: "file-token", Tenant: "file-tenant", Output: "table", ConfigPath: "{default}"},
		},
		{
			name:        "env beats file",
			defaultFile: fileCfg,
			env:         map[string]string{EnvServer: "http://env:2", EnvToken: "env-token", EnvTenant: "env-tenant"},
			want:        settings{Server: "http://env:2", Token: "env-token", Tenant: "env-tenant", Output: "table", ConfigPath: "{default}"},
		},
		{
			name:        "flags beat env",
			defaultFile: fileCfg,
			env:         map[string]string{EnvServer: "http://env:2", EnvToken: "env-token", EnvTenant: "env-tenant"},
			args:        []string{"--server", "http://flag:3", "--token", "flag-token", "--tenant", "flag-tenant", "-o", "json"},
			want:        settings{Server: "http://flag:3", Token: "flag-token", Tenant: "flag-tenant", Output: "json", ConfigPath: "{default}"},
		},
		{
			name: "explicitly empty flag overrides env",
			env:  map[string]string{EnvTenant: "env-tenant"},
			args: []string{"--tenant="},
			want: settings{Server: DefaultServer, Output: "table"},
		},
		{
			name:        "mixed sources per key",
			defaultFile: "token: file-token\n",
			env:         map[string]string{EnvServer: "http://env:2"},
			args:        []string{"--tenant", "flag-tenant"},
			want:        settings{Server: "http://env:2", Token: "file-token", Tenant: "flag-tenant", Output: "table", ConfigPath: "{default}"},
		},
		{
			name:        "--cli-config replaces the default file",
			defaultFile: fileCfg,
			otherFile:   "server: http://other:4\n",
			args:        []string{"--cli-config", "{other}"},
			want:        settings{Server: "http://other:4", Output: "table", ConfigPath: "{other}"},
		},
		{
			name:      "env names the config file",
			otherFile: "tenant: other-tenant\n",
			env:       map[string]string{EnvCLIConfig: "{other}"},
			want:      settings{Server: DefaultServer, Tenant: "other-tenant", Output: "table", ConfigPath: "{other}"},
		},
		{
			name:        "--cli-config empty disables the default file",
			defaultFile: fileCfg,
			args:        []string{"--cli-config="},
			want:        settings{Server: DefaultServer, Output: "table"},
		},
		{
			name:    "explicit config file must exist",
			args:    []string{"--cli-config", "{missing}"},
			wantErr: "does not exist",
		},
		{
			name:        "unknown key in config file",
			defaultFile: "server: http://x:1\ntokne: abc\n",
			wantErr:     "cli.yaml:2: field tokne not found",
		},
		{
			name:    "bad output",
			args:    []string{"-o", "yaml"},
			wantErr: `invalid --output "yaml"`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			home := t.TempDir()
			def := filepath.Join(home, ".config", "fleetgate", "cli.yaml")
			other := filepath.Join(t.TempDir(), "other.yaml")
			subst := func(s string) string {
				s = strings.ReplaceAll(s, "{default}", def)
				s = strings.ReplaceAll(s, "{other}", other)
				return strings.ReplaceAll(s, "{missing}", filepath.Join(home, "missing.yaml"))
			}
			if tc.defaultFile != "" {
				writeFile(t, def, tc.defaultFile, 0o600)
			}
			if tc.otherFile != "" {
				writeFile(t, other, tc.otherFile, 0o600)
			}
			var g globalFlags
			cmd := &cobra.Command{Use: "x", RunE: func(*cobra.Command, []string) error { return nil }}
			addGlobalFlags(cmd, &g)
			args := make([]string, len(tc.args))
			for i, a := range tc.args {
				args[i] = subst(a)
			}
			if err := cmd.ParseFlags(args); err != nil {
				t.Fatal(err)
			}
			getenv := func(k string) string { return subst(tc.env[k]) }
			got, warns, err := resolveSettings(cmd.Flags(), &g, getenv, func() (string, error) { return home, nil })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := tc.want
			want.ConfigPath = subst(want.ConfigPath)
			if got != want {
				t.Errorf("settings\n got %+v\nwant %+v", got, want)
			}
			if len(warns) != 0 {
				t.Errorf("unexpected warnings %q", warns)
			}
		})
	}
}

func TestConfigFileReadableByOthersWarns(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	f := newFakeAPI(t, map[string]http.HandlerFunc{"GET /admin/v1/whoami": reply(200, map[string]any{"tenant": "acme"})})
	home := t.TempDir()
	path := writeFile(t, filepath.Join(home, ".config", "fleetgate", "cli.yaml"), "server: "+f.URL+"\ntoken: "+testToken+"\n", 0o644)
	if err := os.Chmod(path, 0o644); err != nil { // umask-proof
		t.Fatal(err)
	}
	r := runCLI(t, runOpts{home: home}, "whoami")
	if r.err != nil {
		t.Fatal(r.err)
	}
	if !strings.Contains(r.stderr, "readable by other users") {
		t.Errorf("stderr = %q, want a permission warning", r.stderr)
	}
	if strings.Contains(r.all(), testToken) {
		t.Error("the token was printed")
	}
}

// TestPrecedenceEndToEnd checks that the resolved settings are what goes on
// the wire: which server is called, and with which token and tenant.
func TestPrecedenceEndToEnd(t *testing.T) {
	servers := map[string]*fakeAPI{}
	for _, n := range []string{"file", "env", "flag"} {
		servers[n] = newFakeAPI(t, map[string]http.HandlerFunc{
			"GET /admin/v1/whoami": reply(200, map[string]any{"tenant": n}),
		})
	}
	tests := []struct {
		name       string
		env        map[string]string
		args       []string
		wantServer string
		wantToken  string
		wantTenant string
	}{
		{"file only", nil, nil, "file", "file-token", "file-tenant"},
		{"env over file", map[string]string{EnvServer: servers["env"].URL, EnvToken: "env-token", EnvTenant: "env-tenant"}, nil, "env", "env-token", "env-tenant"},
		{"flag over env", map[string]string{EnvServer: servers["env"].URL, EnvToken: "env-token"},
			[]string{"--server", servers["flag"].URL, "--token", "flag-token", "--tenant", "flag-tenant"}, "flag", "flag-token", "flag-tenant"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			home := t.TempDir()
			writeFile(t, filepath.Join(home, ".config", "fleetgate", "cli.yaml"),
				"server: "+servers["file"].URL+"\ntoken: file-token\ntenant: file-tenant\n", 0o600)
			before := map[string]int{}
			for n, s := range servers {
				before[n] = len(s.requests())
			}
			r := runCLI(t, runOpts{env: tc.env, home: home}, append([]string{"whoami"}, tc.args...)...)
			if r.err != nil {
				t.Fatalf("%v\n%s", r.err, r.stderr)
			}
			for n, s := range servers {
				called := len(s.requests()) > before[n]
				if called != (n == tc.wantServer) {
					t.Errorf("server %s called = %v", n, called)
				}
			}
			req := servers[tc.wantServer].last(t)
			if got := req.Header.Get("Authorization"); got != "Bearer "+tc.wantToken {
				t.Errorf("Authorization = %q", got)
			}
			if got := req.Header.Get("Fleetgate-Tenant"); got != tc.wantTenant {
				t.Errorf("Fleetgate-Tenant = %q, want %q", got, tc.wantTenant)
			}
		})
	}
}
