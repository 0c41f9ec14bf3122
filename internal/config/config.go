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
	"strconv"
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
	// Data plane.
	HTTPAddr     string // plain HTTP listener ("" disables it)
	HTTPSAddr    string // TLS listener ("" disables it)
	TLSCert      string // PEM certificate chain of the HTTPS listener
	TLSKey       string // PEM private key of the HTTPS listener
	TLSClientCA  string // PEM bundle of CAs trusted for client certificates
	ClientAuth   string // none, request or require (client certificates on HTTPS)
	AccessLog    bool
	RateLimitMax int    // cap on local rate-limit buckets
	DebugAddr    string // net/http/pprof listener ("" disables it)
	// RateLimitRedis keeps rate-limit counters in Redis (redis://host:port/db)
	// so every node of a cluster shares them; "" keeps them in memory.
	RateLimitRedis string
	// MQTT data plane ("" disables each listener).
	MQTTAddr, MQTTSAddr, MQTTWSAddr string
	// MQTTUpstream ("tcp://host:port") proxies MQTT sessions to an external
	// broker instead of the embedded one.
	MQTTUpstream, MQTTUpstreamUser string
	// MQTTUpstreamPassword: env FLEETGATE_MQTT_UPSTREAM_PASSWORD only.
	MQTTUpstreamPassword string
	// MQTTMaxPacketSize bounds MQTT packets (bytes); MQTTForbidden311 is
	// what a forbidden PUBLISH from an MQTT 3.1.1 client does: disconnect
	// or drop.
	MQTTMaxPacketSize int
	MQTTForbidden311  string
	// DeviceSeenInterval is how often device sightings (last seen,
	// reported firmware) are written to the store in one batch.
	DeviceSeenInterval time.Duration
	// ReviewPublishInterval is how often approved versions whose
	// publish_at has come are published (0 turns the scheduler off).
	ReviewPublishInterval time.Duration
	// DeviceKEK seals tenant CA private keys (base64 of 32 bytes; env
	// FLEETGATE_DEVICE_KEK only, like the admin token: never a flag).
	DeviceKEK string
	// UsageFlushInterval is how often per-version usage is written to the
	// store; SunsetSweepInterval how often deprecated versions past their
	// sunset are retired (or alerted on).
	UsageFlushInterval, SunsetSweepInterval time.Duration
	// AdminToken presets the bootstrap admin token (env
	// FLEETGATE_ADMIN_TOKEN only: secrets do not belong in flags, which
	// show up in process listings).
	AdminToken string
}

// Default returns the defaults.
func Default() Config {
	return Config{
		DataDir:               "./fleetgate-data",
		AdminAddr:             "127.0.0.1:9400",
		Store:                 "sqlite",
		LogFormat:             "text",
		LogLevel:              "info",
		ShutdownTimeout:       15 * time.Second,
		HTTPAddr:              "127.0.0.1:8080",
		ClientAuth:            "request",
		AccessLog:             true,
		RateLimitMax:          1_000_000,
		MQTTMaxPacketSize:     256 << 10,
		MQTTForbidden311:      "disconnect",
		UsageFlushInterval:    30 * time.Second,
		SunsetSweepInterval:   time.Hour,
		DeviceSeenInterval:    30 * time.Second,
		ReviewPublishInterval: 30 * time.Second,
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
	fs.String("http-addr", d.HTTPAddr, "listen address of the plain-HTTP data plane (empty disables it)")
	fs.String("https-addr", d.HTTPSAddr, "listen address of the HTTPS data plane (needs --tls-cert and --tls-key)")
	fs.String("tls-cert", d.TLSCert, "PEM certificate chain of the HTTPS data plane")
	fs.String("tls-key", d.TLSKey, "PEM private key of the HTTPS data plane")
	fs.String("tls-client-ca", d.TLSClientCA, "PEM CAs trusted to sign client certificates (mTLS)")
	fs.String("client-auth", d.ClientAuth, "client certificates on HTTPS: none, request (verify when sent) or require")
	fs.Bool("access-log", d.AccessLog, "log one line per data-plane request")
	fs.Int("rate-limit-max-buckets", d.RateLimitMax, "cap on rate-limit buckets kept in memory")
	fs.String("rate-limit-redis", d.RateLimitRedis, "redis:// URL of cluster-wide rate-limit counters (empty: in memory, per node)")
	fs.String("mqtt-addr", d.MQTTAddr, "listen address of MQTT over TCP (e.g. 127.0.0.1:1883; empty disables it)")
	fs.String("mqtts-addr", d.MQTTSAddr, "listen address of MQTT over TLS (uses --tls-cert/--tls-key and --client-auth)")
	fs.String("mqtt-ws-addr", d.MQTTWSAddr, "listen address of MQTT over WebSocket")
	fs.String("mqtt-upstream", d.MQTTUpstream, "tcp://host:port of an external MQTT broker to proxy sessions to (empty: embedded broker)")
	fs.Int("mqtt-max-packet-size", d.MQTTMaxPacketSize, "largest MQTT packet accepted, in bytes")
	fs.String("mqtt-forbidden-311", d.MQTTForbidden311, "a forbidden PUBLISH from an MQTT 3.1.1 client: disconnect or drop")
	fs.String("mqtt-upstream-username", d.MQTTUpstreamUser, "the gateway's user name at the external broker (password: FLEETGATE_MQTT_UPSTREAM_PASSWORD)")
	fs.Duration("usage-flush-interval", d.UsageFlushInterval, "how often per-version usage (for usage-aware retirement) is written to the store")
	fs.Duration("sunset-sweep-interval", d.SunsetSweepInterval, "how often deprecated versions past their sunset are retired, or alerted on when still called")
	fs.Duration("device-seen-interval", d.DeviceSeenInterval, "how often devices' last-seen times and reported firmware are written to the store (100ms to 1h)")
	fs.Duration("review-publish-interval", d.ReviewPublishInterval, "how often scheduled publications of approved versions run (0 disables them)")
	fs.String("debug-addr", d.DebugAddr, "listen address of the Go profiler (/debug/pprof); keep it on loopback; empty disables it")
}

// fileConfig mirrors Config for strict YAML decoding.
type fileConfig struct {
	DataDir            *string `yaml:"data_dir"`
	AdminAddr          *string `yaml:"admin_addr"`
	Store              *string `yaml:"store"`
	LogFormat          *string `yaml:"log_format"`
	LogLevel           *string `yaml:"log_level"`
	ShutdownTimeout    *string `yaml:"shutdown_timeout"`
	HTTPAddr           *string `yaml:"http_addr"`
	HTTPSAddr          *string `yaml:"https_addr"`
	TLSCert            *string `yaml:"tls_cert"`
	TLSKey             *string `yaml:"tls_key"`
	TLSClientCA        *string `yaml:"tls_client_ca"`
	ClientAuth         *string `yaml:"client_auth"`
	AccessLog          *string `yaml:"access_log"`
	RateLimitMax       *string `yaml:"rate_limit_max_buckets"`
	DebugAddr          *string `yaml:"debug_addr"`
	RateLimitRedis     *string `yaml:"rate_limit_redis"`
	MQTTAddr           *string `yaml:"mqtt_addr"`
	MQTTSAddr          *string `yaml:"mqtts_addr"`
	MQTTWSAddr         *string `yaml:"mqtt_ws_addr"`
	MQTTUpstream       *string `yaml:"mqtt_upstream"`
	MQTTUpstreamUser   *string `yaml:"mqtt_upstream_username"`
	MQTTMaxPacket      *string `yaml:"mqtt_max_packet_size"`
	MQTTForbidden311   *string `yaml:"mqtt_forbidden_311"`
	UsageFlush         *string `yaml:"usage_flush_interval"`
	SunsetSweep        *string `yaml:"sunset_sweep_interval"`
	DeviceSeenInterval *string `yaml:"device_seen_interval"`
	ReviewPublish      *string `yaml:"review_publish_interval"`
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
	for _, name := range []string{"data-dir", "admin-addr", "store", "log-format", "log-level", "shutdown-timeout",
		"http-addr", "https-addr", "tls-cert", "tls-key", "tls-client-ca", "client-auth", "access-log", "rate-limit-max-buckets", "debug-addr", "rate-limit-redis",
		"mqtt-addr", "mqtts-addr", "mqtt-ws-addr", "mqtt-upstream", "mqtt-upstream-username", "mqtt-max-packet-size", "mqtt-forbidden-311",
		"usage-flush-interval", "sunset-sweep-interval", "device-seen-interval", "review-publish-interval"} {
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
		case "http-addr":
			c.HTTPAddr = v
		case "https-addr":
			c.HTTPSAddr = v
		case "tls-cert":
			c.TLSCert = v
		case "tls-key":
			c.TLSKey = v
		case "tls-client-ca":
			c.TLSClientCA = v
		case "client-auth":
			c.ClientAuth = v
		case "access-log":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return c, fmt.Errorf("access-log %q: want true or false", v)
			}
			c.AccessLog = b
		case "debug-addr":
			c.DebugAddr = v
		case "rate-limit-redis":
			c.RateLimitRedis = v
		case "mqtt-addr":
			c.MQTTAddr = v
		case "mqtts-addr":
			c.MQTTSAddr = v
		case "mqtt-ws-addr":
			c.MQTTWSAddr = v
		case "mqtt-upstream":
			c.MQTTUpstream = v
		case "mqtt-upstream-username":
			c.MQTTUpstreamUser = v
		case "mqtt-max-packet-size":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1024 || n > 256<<20 {
				return c, fmt.Errorf("mqtt-max-packet-size %q: want 1024 to 268435456 bytes", v)
			}
			c.MQTTMaxPacketSize = n
		case "mqtt-forbidden-311":
			if v != "disconnect" && v != "drop" {
				return c, fmt.Errorf("mqtt-forbidden-311 %q: want disconnect or drop", v)
			}
			c.MQTTForbidden311 = v
		case "usage-flush-interval", "sunset-sweep-interval":
			d, err := time.ParseDuration(v)
			if err != nil || d < time.Second || d > 24*time.Hour {
				return c, fmt.Errorf("%s %q: want a duration from 1s to 24h", name, v)
			}
			if name == "usage-flush-interval" {
				c.UsageFlushInterval = d
			} else {
				c.SunsetSweepInterval = d
			}
		case "device-seen-interval":
			d, err := time.ParseDuration(v)
			if err != nil || d < 100*time.Millisecond || d > time.Hour {
				return c, fmt.Errorf("device-seen-interval %q: want a duration from 100ms to 1h", v)
			}
			c.DeviceSeenInterval = d
		case "review-publish-interval":
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 || (d > 0 && d < 100*time.Millisecond) || d > 24*time.Hour {
				return c, fmt.Errorf("review-publish-interval %q: want 0 (off) or a duration from 100ms to 24h", v)
			}
			c.ReviewPublishInterval = d
		case "rate-limit-max-buckets":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1000 {
				return c, fmt.Errorf("rate-limit-max-buckets %q: want an integer of at least 1000", v)
			}
			c.RateLimitMax = n
		}
	}
	c.AdminToken = getenv("FLEETGATE_ADMIN_TOKEN")
	c.DeviceKEK = getenv("FLEETGATE_DEVICE_KEK")
	c.MQTTUpstreamPassword = getenv("FLEETGATE_MQTT_UPSTREAM_PASSWORD")
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
	put("http-addr", fc.HTTPAddr)
	put("https-addr", fc.HTTPSAddr)
	put("tls-cert", fc.TLSCert)
	put("tls-key", fc.TLSKey)
	put("tls-client-ca", fc.TLSClientCA)
	put("client-auth", fc.ClientAuth)
	put("access-log", fc.AccessLog)
	put("rate-limit-max-buckets", fc.RateLimitMax)
	put("debug-addr", fc.DebugAddr)
	put("rate-limit-redis", fc.RateLimitRedis)
	put("mqtt-addr", fc.MQTTAddr)
	put("mqtts-addr", fc.MQTTSAddr)
	put("mqtt-ws-addr", fc.MQTTWSAddr)
	put("mqtt-upstream", fc.MQTTUpstream)
	put("mqtt-upstream-username", fc.MQTTUpstreamUser)
	put("mqtt-max-packet-size", fc.MQTTMaxPacket)
	put("mqtt-forbidden-311", fc.MQTTForbidden311)
	put("usage-flush-interval", fc.UsageFlush)
	put("sunset-sweep-interval", fc.SunsetSweep)
	put("device-seen-interval", fc.DeviceSeenInterval)
	put("review-publish-interval", fc.ReviewPublish)
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
	for flag, addr := range map[string]string{"http-addr": c.HTTPAddr, "https-addr": c.HTTPSAddr, "debug-addr": c.DebugAddr,
		"mqtt-addr": c.MQTTAddr, "mqtts-addr": c.MQTTSAddr, "mqtt-ws-addr": c.MQTTWSAddr} {
		if addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return fmt.Errorf("%s %q: want host:port", flag, addr)
		}
	}
	if (c.HTTPSAddr != "" || c.MQTTSAddr != "") && (c.TLSCert == "" || c.TLSKey == "") {
		return errors.New("https-addr and mqtts-addr need tls-cert and tls-key")
	}
	switch c.ClientAuth {
	case "none", "request", "require":
	default:
		return fmt.Errorf("client-auth %q: want none, request or require", c.ClientAuth)
	}
	if c.ClientAuth == "require" && c.TLSClientCA == "" {
		return errors.New("client-auth require needs tls-client-ca")
	}
	if c.RateLimitRedis != "" && !strings.HasPrefix(c.RateLimitRedis, "redis://") && !strings.HasPrefix(c.RateLimitRedis, "rediss://") {
		return fmt.Errorf("rate-limit-redis %q: want a redis:// or rediss:// URL", c.RateLimitRedis)
	}
	if c.ShutdownTimeout <= 0 {
		return errors.New("shutdown-timeout must be positive")
	}
	return nil
}
