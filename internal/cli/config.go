package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"
)

// DefaultServer is the server address when nothing else is configured: the
// listen address of `fleetgate serve` with its defaults.
const DefaultServer = "http://127.0.0.1:9400"

// Environment variables of the client settings.
const (
	EnvServer    = "FLEETGATE_SERVER"
	EnvToken     = "FLEETGATE_TOKEN"
	EnvTenant    = "FLEETGATE_TENANT"
	EnvCLIConfig = "FLEETGATE_CLI_CONFIG"
)

// Flag names shared by every client command.
const (
	flagServer    = "server"
	flagToken     = "token"
	flagTenant    = "tenant"
	flagCLIConfig = "cli-config"
	flagOutput    = "output"
)

// globalFlags receives the values of the shared flags. Whether a flag was
// given is asked of the flag set, not inferred from the value, so that an
// explicitly empty --tenant "" can override FLEETGATE_TENANT.
type globalFlags struct {
	server, token, tenant, config, output string
}

// settings are the resolved client settings of one invocation.
type settings struct {
	Server string
	Token  string
	Tenant string
	Output string // "table" or "json"
	// ConfigPath is the config file that was read, "" if none.
	ConfigPath string
}

// fileConfig is the CLI config file. It is decoded strictly: a misspelt key
// would otherwise silently fall back to a default, for instance send
// requests to the wrong server.
type fileConfig struct {
	Server string `yaml:"server"`
	Token  string `yaml:"token"`
	Tenant string `yaml:"tenant"`
}

// addGlobalFlags declares the shared flags as persistent flags of cmd, so
// that every subcommand accepts them. Defaults are shown in the help text
// rather than as flag defaults because the effective value may come from the
// environment or the config file.
func addGlobalFlags(cmd *cobra.Command, g *globalFlags) {
	f := cmd.PersistentFlags()
	f.StringVar(&g.server, flagServer, "", "server URL (env "+EnvServer+", default "+DefaultServer+")")
	f.StringVar(&g.token, flagToken, "", "bearer token (env "+EnvToken+"); prefer the env or the config file: flags show in the process list")
	f.StringVar(&g.tenant, flagTenant, "", "tenant to act on, for system admins (env "+EnvTenant+")")
	f.StringVar(&g.config, flagCLIConfig, "", "CLI config file with server, token, tenant (env "+EnvCLIConfig+", default ~/.config/fleetgate/cli.yaml if present)")
	f.StringVarP(&g.output, flagOutput, "o", "table", "output format: table or json")
}

// resolveSettings applies the precedence flags > environment > config file >
// default. It returns warnings (to print) besides the settings.
func resolveSettings(flags *pflag.FlagSet, g *globalFlags, getenv func(string) string, home func() (string, error)) (settings, []string, error) {
	var st settings
	var warnings []string
	switch g.output {
	case "table", "json":
		st.Output = g.output
	default:
		return st, nil, fmt.Errorf("invalid --output %q: want table or json", g.output)
	}

	path, explicit := g.config, flags.Changed(flagCLIConfig)
	if !explicit {
		if v := getenv(EnvCLIConfig); v != "" {
			path, explicit = v, true
		} else if h, err := home(); err == nil && h != "" {
			path = filepath.Join(h, ".config", "fleetgate", "cli.yaml")
		}
	}
	var fc fileConfig
	if path != "" {
		cfg, warn, err := loadFileConfig(path)
		switch {
		case errors.Is(err, fs.ErrNotExist) && !explicit:
			// The default file is optional.
		case err != nil:
			return st, nil, err
		default:
			fc, st.ConfigPath = cfg, path
			if warn != "" {
				warnings = append(warnings, warn)
			}
		}
	}

	pick := func(flag, env, file, def string) string {
		if flags.Changed(flag) {
			switch flag {
			case flagServer:
				return g.server
			case flagToken:
				return g.token
			case flagTenant:
				return g.tenant
			}
		}
		if v := getenv(env); v != "" {
			return v
		}
		if file != "" {
			return file
		}
		return def
	}
	st.Server = pick(flagServer, EnvServer, fc.Server, DefaultServer)
	st.Token = strings.TrimSpace(pick(flagToken, EnvToken, fc.Token, ""))
	st.Tenant = pick(flagTenant, EnvTenant, fc.Tenant, "")
	return st, warnings, nil
}

// loadFileConfig reads the CLI config file. The warning is set when the file
// holds a token and other users may read it.
func loadFileConfig(path string) (fileConfig, string, error) {
	var fc fileConfig
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fc, "", fmt.Errorf("CLI config file %s: %w", path, fs.ErrNotExist)
		}
		return fc, "", fmt.Errorf("reading CLI config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&fc); err != nil && !errors.Is(err, io.EOF) {
		return fc, "", fmt.Errorf("CLI config: %w", yamlError(path, err))
	}
	warn := ""
	if fc.Token != "" && runtime.GOOS != "windows" {
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
			warn = fmt.Sprintf("%s holds a token and is readable by other users; run chmod 600 %s", path, path)
		}
	}
	return fc, warn, nil
}
