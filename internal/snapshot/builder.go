// Package snapshot builds the data plane's configuration snapshot from the
// control-plane store and installs it in the policy engine. Builds are
// triggered by every committed admin change and coalesced, so a burst of
// changes costs one or two builds, never one per change.
package snapshot

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/fleetgate/fleetgate/internal/identity/credential"
	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/policy"
	"github.com/fleetgate/fleetgate/internal/store"
)

// Builder rebuilds snapshots.
type Builder struct {
	st      store.Store
	eng     *policy.Engine
	log     *slog.Logger
	trigger chan struct{}
	serial  uint64
	jwt     *jwtCache
	kek     []byte // device KEK, to open PSKs (device_secrets.go)
	// OnBuild, when set, is called after every successful swap.
	OnBuild func(*policy.Snapshot)
}

// New returns a builder for eng reading st. ctx bounds the background JWKS
// refreshers of JWT verifiers.
func New(ctx context.Context, st store.Store, eng *policy.Engine, log *slog.Logger) *Builder {
	return &Builder{st: st, eng: eng, log: log, trigger: make(chan struct{}, 1), jwt: newJWTCache(ctx)}
}

// Notify asks for a rebuild; it never blocks.
func (b *Builder) Notify() {
	select {
	case b.trigger <- struct{}{}:
	default:
	}
}

// Build reads the state in one read transaction (a consistent view),
// compiles it and swaps it in.
func (b *Builder) Build(ctx context.Context) (*policy.Snapshot, error) {
	in := &policy.Input{}
	err := b.st.View(ctx, func(tx store.Tx) error {
		var err error
		if in.Versions, err = tx.ListVersionsByState("", model.StatePublished, model.StateDeprecated, model.StateBlocked, model.StateRetired); err != nil {
			return err
		}
		if in.Apps, err = tx.ListApps("", store.Page{Limit: -1}); err != nil {
			return err
		}
		if in.Keys, err = tx.ListAPIKeys("", "", store.Page{Limit: -1}); err != nil {
			return err
		}
		if in.Ownerships, err = tx.ListOwnerships("", store.OwnershipFilter{Limit: -1}); err != nil {
			return err
		}
		if in.Devices.Devices, err = tx.ListDevices("", store.Page{Limit: -1}); err != nil {
			return err
		}
		if in.Devices.ExternalCAs, err = tx.ListExternalCAs("", store.Page{Limit: -1}); err != nil {
			return err
		}
		if in.Devices.Credentials, err = tx.ListDeviceCredentials("", "", store.Page{Limit: -1}); err != nil {
			return err
		}
		return b.readDeviceSecrets(tx, &in.Devices)
	})
	if err != nil {
		return nil, err
	}
	b.serial++
	in.Serial = b.serial
	start := time.Now()
	s := policy.Compile(in, b.jwt.get)
	for _, w := range s.Warnings {
		b.log.Warn("snapshot", "warning", w)
	}
	b.eng.Swap(s)
	b.log.Debug("snapshot installed", "serial", s.Serial, "versions", len(in.Versions), "compile_ms", time.Since(start).Milliseconds())
	if b.OnBuild != nil {
		b.OnBuild(s)
	}
	return s, nil
}

// Run rebuilds on every Notify until ctx ends. Failed builds keep the last
// good snapshot serving and are retried on the next change or after a
// short delay.
func (b *Builder) Run(ctx context.Context) {
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.trigger:
		case <-retry.C:
		}
		if _, err := b.Build(ctx); err != nil && ctx.Err() == nil {
			b.log.Error("snapshot build failed; serving the previous one", "err", err)
			retry.Reset(2 * time.Second)
		}
	}
}

// jwtCache keeps one verifier per JWT configuration across snapshots, so a
// rebuild does not refetch every JWKS.
type jwtCache struct {
	ctx    context.Context
	client *http.Client
	mu     sync.Mutex
	m      map[string]*credential.Verifier
}

func newJWTCache(ctx context.Context) *jwtCache {
	return &jwtCache{ctx: ctx, client: &http.Client{Timeout: 10 * time.Second}, m: map[string]*credential.Verifier{}}
}

func (c *jwtCache) get(p *model.JWTPolicy) (policy.JWTVerifier, error) {
	key, _ := json.Marshal(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.m[string(key)]; ok {
		return verifier{v}, nil
	}
	cfg := credential.JWTConfig{Issuer: p.Issuer, Audiences: p.Audiences, JWKSURL: p.JWKSURL}
	if p.ClockSkew != "" {
		d, err := time.ParseDuration(p.ClockSkew)
		if err != nil {
			return nil, err
		}
		cfg.ClockSkew = d
	}
	v, err := credential.NewVerifier(c.ctx, cfg, c.client)
	if err != nil {
		return nil, err
	}
	c.m[string(key)] = v
	return verifier{v}, nil
}

type verifier struct{ v *credential.Verifier }

func (v verifier) Verify(token string, now time.Time) (map[string]any, error) {
	c, err := v.v.Verify(token, now)
	return c, err
}
