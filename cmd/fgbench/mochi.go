package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// mochi runs stock mochi-mqtt (default options) with its auth ledger
// holding the same users and ACL as the private Mosquitto of
// scripts/bench-mqtt: the floor under Fleetgate's embedded broker, which
// is mochi plus the policy hook. Users come from a -creds file
// (mqtt-pubsub's format); -idle adds one user allowed to connect only.
func mochi(args []string) error {
	fs := flag.NewFlagSet("mochi", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:9219", "listen address")
	creds := fs.String("creds", "", "mqtt-pubsub -creds file")
	topic := fs.String("topic", "fleet/%s/telemetry", "topic of a publisher (%s: its name)")
	idle := fs.String("idle", "", "NAME:PASSWORD of a user who may only connect")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, err := os.ReadFile(*creds)
	if err != nil {
		return err
	}
	pubs, sub, err := parseCreds(string(b))
	if err != nil {
		return err
	}
	users := auth.Users{}
	for _, p := range pubs {
		users[p.name] = auth.UserRule{Username: auth.RString(p.name), Password: auth.RString(p.password),
			ACL: auth.Filters{auth.RString(fmt.Sprintf(*topic, p.name)): auth.WriteOnly}}
	}
	users[sub.name] = auth.UserRule{Username: auth.RString(sub.name), Password: auth.RString(sub.password),
		ACL: auth.Filters{auth.RString(fmt.Sprintf(*topic, "+")): auth.ReadOnly}}
	if n, p, ok := strings.Cut(*idle, ":"); ok {
		users[n] = auth.UserRule{Username: auth.RString(n), Password: auth.RString(p),
			ACL: auth.Filters{"#": auth.Deny}}
	}
	srv := mqtt.New(&mqtt.Options{InlineClient: false, Logger: slog.New(slog.DiscardHandler)})
	if err := srv.AddHook(new(auth.Hook), &auth.Options{Ledger: &auth.Ledger{Users: users}}); err != nil {
		return err
	}
	if err := srv.AddListener(listeners.NewTCP(listeners.Config{ID: "tcp", Address: *addr})); err != nil {
		return err
	}
	if err := srv.Serve(); err != nil {
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	return srv.Close()
}
