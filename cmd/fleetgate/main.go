// Command fleetgate is the whole of Fleetgate in one binary: `fleetgate
// serve` runs a node (control plane and, as they land, the data-plane
// listeners); the other subcommands are the CLI client of the admin API.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/fleetgate/fleetgate/internal/app"
	"github.com/fleetgate/fleetgate/internal/cli"
	"github.com/fleetgate/fleetgate/internal/config"
	"github.com/fleetgate/fleetgate/internal/telemetry"
)

func main() {
	root := &cobra.Command{
		Use:          "fleetgate",
		Short:        "Fleetgate: a security gateway for IoT APIs over HTTP, MQTT and CoAP",
		SilenceUsage: true,
	}
	root.AddCommand(serveCmd(os.Stderr))
	root.AddCommand(cli.Commands(os.Stdout, os.Stderr)...)
	// Cobra prints the error ("Error: ...") itself.
	if err := root.Execute(); err != nil {
		os.Exit(1)
	}
}

func serveCmd(stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a Fleetgate node (embedded SQLite store by default)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(cmd.Flags(), os.Getenv)
			if err != nil {
				return err
			}
			log, err := telemetry.NewLogger(stderr, cfg.LogFormat, cfg.LogLevel)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			a, err := app.New(ctx, cfg, log, stderr)
			if err != nil {
				return err
			}
			if err := a.Start(); err != nil {
				_ = a.Shutdown(context.Background())
				return err
			}
			<-ctx.Done()
			log.Info("shutting down", "timeout", cfg.ShutdownTimeout)
			sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
			defer cancel()
			return a.Shutdown(sctx)
		},
	}
	config.Flags(cmd.Flags())
	return cmd
}
