package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func load(t *testing.T, args []string, env map[string]string, file string) (Config, error) {
	t.Helper()
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	Flags(fs)
	if file != "" {
		p := filepath.Join(t.TempDir(), "fleetgate.yaml")
		if err := os.WriteFile(p, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--config", p)
	}
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return Load(fs, func(k string) string { return env[k] })
}

func TestPrecedence(t *testing.T) {
	c, err := load(t, []string{"--admin-addr", "127.0.0.1:1"}, map[string]string{"FLEETGATE_ADMIN_ADDR": "127.0.0.1:2", "FLEETGATE_DATA_DIR": "/env"},
		"admin_addr: 127.0.0.1:3\ndata_dir: /file\nlog_level: debug\naccess_log: false\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.AdminAddr != "127.0.0.1:1" || c.DataDir != "/env" || c.LogLevel != "debug" || c.AccessLog {
		t.Fatalf("flag > env > file > default violated: %+v", c)
	}
	if d := Default(); d.HTTPAddr != c.HTTPAddr || c.Store != "sqlite" {
		t.Fatalf("defaults lost: %+v", c)
	}
}

func TestBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		file string
		want string // the error must name the field (and line, for files)
	}{
		{name: "unknown file key", file: "data_dir: x\nadmin_adr: y\n", want: "line 2"},
		{name: "file key of the wrong type", file: "shutdown_timeout: [1]\n", want: "line 1"},
		{name: "admin address", args: []string{"--admin-addr", "nowhere"}, want: "admin-addr"},
		{name: "store", args: []string{"--store", "mysql://x"}, want: "store"},
		{name: "log format", args: []string{"--log-format", "xml"}, want: "log-format"},
		{name: "https without certificate", args: []string{"--https-addr", "127.0.0.1:0"}, want: "tls-cert"},
		{name: "client auth", args: []string{"--client-auth", "maybe"}, want: "client-auth"},
		{name: "require without CA", args: []string{"--client-auth", "require"}, want: "tls-client-ca"},
		{name: "access log", env: map[string]string{"FLEETGATE_ACCESS_LOG": "sometimes"}, want: "access-log"},
		{name: "bucket cap", args: []string{"--rate-limit-max-buckets", "5"}, want: "rate-limit-max-buckets"},
		{name: "redis url", args: []string{"--rate-limit-redis", "127.0.0.1:6379"}, want: "rate-limit-redis"},
		{name: "mqtt address", args: []string{"--mqtt-addr", "1883"}, want: "mqtt-addr"},
		{name: "mqtt packet size", args: []string{"--mqtt-max-packet-size", "10"}, want: "mqtt-max-packet-size"},
		{name: "mqtt 3.1.1 behaviour", args: []string{"--mqtt-forbidden-311", "ignore"}, want: "mqtt-forbidden-311"},
		{name: "device seen interval too short", args: []string{"--device-seen-interval", "1ms"}, want: "device-seen-interval"},
		{name: "device seen interval in a file", file: "device_seen_interval: often\n", want: "device-seen-interval"},
		{name: "shutdown timeout", env: map[string]string{"FLEETGATE_SHUTDOWN_TIMEOUT": "soon"}, want: "shutdown-timeout"},
		{name: "review publish interval too short", args: []string{"--review-publish-interval", "1ms"}, want: "review-publish-interval"},
		{name: "review publish interval negative", env: map[string]string{"FLEETGATE_REVIEW_PUBLISH_INTERVAL": "-1s"}, want: "review-publish-interval"},
		{name: "review publish interval in a file", file: "review_publish_interval: often\n", want: "review-publish-interval"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.args, tc.env, tc.file)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one naming %q", err, tc.want)
			}
		})
	}
}

func TestReviewPublishInterval(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		file string
		want time.Duration
	}{
		{name: "default", want: 30 * time.Second},
		{name: "file", file: "review_publish_interval: 5s\n", want: 5 * time.Second},
		{name: "env 0 turns it off over the file", file: "review_publish_interval: 5s\n", env: map[string]string{"FLEETGATE_REVIEW_PUBLISH_INTERVAL": "0"}, want: 0},
		{name: "flag over env", args: []string{"--review-publish-interval", "1m"}, env: map[string]string{"FLEETGATE_REVIEW_PUBLISH_INTERVAL": "0"}, want: time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := load(t, tc.args, tc.env, tc.file)
			if err != nil || c.ReviewPublishInterval != tc.want {
				t.Fatalf("interval %v, %v; want %v", c.ReviewPublishInterval, err, tc.want)
			}
		})
	}
}
