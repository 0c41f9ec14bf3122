// Package config holds the server configuration: defaults, a strict YAML
// file (unknown keys are errors with file:line:col), FLEETGATE_* environment
// variables and command-line flags, in increasing order of precedence.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"
)

// Config is the server configuration. Each field has a command-line flag
// (--data-dir), an env var (FLEETGATE_DATA_DIR) and a YAML key (data_dir).
type Config struct {
	DataDir         string
	AdminAddr       string
	Store           string
	LogFormat       string
	LogLevel        string
	ShutdownTimeout time.Duration
	// AdminToken presets the bootstrap admin token (env
	// FLEETGATE_ADMIN_TOKEN only: secrets do not belong in flags, which
	// show up in process listings).
	AdminToken string
}

// Default returns the defaults.
func Default() Config {
	return Config{
		DataDir:         "./fleetgate-data",
		AdminAddr:       "127.0.0.1:9400",
		Store:           "sqlite",
		LogFormat:       "text",
		LogLevel:        "info",
		ShutdownTimeout: 15 * time.Second,
	}
}

// Flags registers the flags on fs, with defaults from Default.
func Flags(fs *pflag.FlagSet) {
	d := Default()
	fs.String("config", "", "YAML config file (keys: data_dir, admin_addr, store, log_format, log_level, shutdown_timeout)")
	fs.String("data-dir", d.DataDir, "directory of the embedded SQLite store and local state")
	fs.String("admin-addr", d.AdminAddr, "listen address of the admin API, /metrics and health checks")
	fs.String("store", d.Store, "store backend: sqlite (embedded, default) or a postgres:// URL")
	fs.String("log-format", d.LogFormat, "log format: text or json")
	fs.String("log-level", d.LogLevel, "log level: debug, info, warn or error")
	fs.Duration("shutdown-timeout", d.ShutdownTimeout, "how long in-flight requests may run after SIGINT/SIGTERM")
}

// fileConfig mirrors Config for strict YAML decoding.
type fileConfig struct {
	DataDir         *string `yaml:"data_dir"`
	AdminAddr       *string `yaml:"admin_addr"`
	Store           *string `yaml:"store"`
	LogFormat       *string `yaml:"log_format"`
	LogLevel        *string `yaml:"log_level"`
	ShutdownTimeout *string `yaml:"shutdown_timeout"`
}

// Load builds the configuration from defaults, the file named by --config
// (or FLEETGATE_CONFIG), the environment and the flags that were set.
func Load(fs *pflag.FlagSet, getenv func(string) string) (Config, error) {
	c := Default()
	set := map[string]string{}
	path, _ := fs.GetString("config")
	if path == "" {
		path = getenv("FLEETGATE_CONFIG")
	}
	if path != "" {
		if err := loadFile(path, set); err != nil {
			return c, err
		}
	}
	for _, name := range []string{"data-dir", "admin-addr", "store", "log-format", "log-level", "shutdown-timeout"} {
		if v := getenv("FLEETGATE_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))); v != "" {
			set[name] = v
		}
		if f := fs.Lookup(name); f != nil && f.Changed {
			set[name] = f.Value.String()
		}
	}
	for name, v := range set {
		switch name {
		case "data-dir":
			c.DataDir = v
		case "admin-addr":
			c.AdminAddr = v
		case "store":
			c.Store = v
		case "log-format":
			c.LogFormat = v
		case "log-level":
			c.LogLevel = v
		case "shutdown-timeout":
			d, err := time.ParseDuration(v)
			if err != nil {
				return c, fmt.Errorf("shutdown-timeout: %w", err)
			}
			c.ShutdownTimeout = d
		}
	}
	c.AdminToken = getenv("FLEETGATE_ADMIN_TOKEN")
	return c, c.Validate()
}

func loadFile(path string, set map[string]string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	var fc fileConfig
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&fc); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: %s", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	put := func(name string, v *string) {
		if v != nil {
			set[name] = *v
		}
	}
	put("data-dir", fc.DataDir)
	put("admin-addr", fc.AdminAddr)
	put("store", fc.Store)
	put("log-format", fc.LogFormat)
	put("log-level", fc.LogLevel)
	put("shutdown-timeout", fc.ShutdownTimeout)
	return nil
}

// Validate checks values that would otherwise fail late.
func (c *Config) Validate() error {
	if c.DataDir == "" {
		return errors.New("data-dir must not be empty")
	}
	if _, _, err := net.SplitHostPort(c.AdminAddr); err != nil {
		return fmt.Errorf("admin-addr %q: want host:port", c.AdminAddr)
	}
	if c.Store != "sqlite" && !strings.HasPrefix(c.Store, "postgres://") && !strings.HasPrefix(c.Store, "postgresql://") {
		return fmt.Errorf("store %q: want sqlite or a postgres:// URL", c.Store)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("log-format %q: want text or json", c.LogFormat)
	}
	if c.ShutdownTimeout <= 0 {
		return errors.New("shutdown-timeout must be positive")
	}
	return nil
}
