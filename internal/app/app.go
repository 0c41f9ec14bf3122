// Package app is the composition root: it builds every part of a Fleetgate
// node from its configuration, starts the listeners and stops them in
// order. Only this package imports all the others.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fleetgate/fleetgate/internal/admin"
	"github.com/fleetgate/fleetgate/internal/config"
	"github.com/fleetgate/fleetgate/internal/devobs"
	"github.com/fleetgate/fleetgate/internal/forward"
	"github.com/fleetgate/fleetgate/internal/gateway/httpgw"
	mqttgw "github.com/fleetgate/fleetgate/internal/gateway/mqtt"
	"github.com/fleetgate/fleetgate/internal/identity/pki"
	"github.com/fleetgate/fleetgate/internal/lifecycle"
	"github.com/fleetgate/fleetgate/internal/policy"
	"github.com/fleetgate/fleetgate/internal/ratelimit"
	"github.com/fleetgate/fleetgate/internal/review"
	"github.com/fleetgate/fleetgate/internal/snapshot"
	"github.com/fleetgate/fleetgate/internal/store"
	"github.com/fleetgate/fleetgate/internal/store/postgres"
	"github.com/fleetgate/fleetgate/internal/store/sqlite"
	"github.com/fleetgate/fleetgate/internal/telemetry"
	"github.com/fleetgate/fleetgate/internal/usage"
	"github.com/fleetgate/fleetgate/internal/usage/usagestore"
)

// App is a running (or ready to run) Fleetgate node.
type App struct {
	cfg      config.Config
	log      *slog.Logger
	store    store.Store
	metrics  *telemetry.Metrics
	admin    *admin.Server
	adminSrv *http.Server
	adminLn  net.Listener

	engine    *policy.Engine
	builder   *snapshot.Builder
	usage     *usage.Recorder
	devices   *devobs.Recorder
	seenDone  chan struct{}
	counter   *ratelimit.Local
	redis     *redis.Client
	gateway   *httpgw.Gateway
	mqtt      *mqttgw.Gateway
	forwarder *forward.Forwarder
	dp        *telemetry.DataPlane
	dataSrvs  []*http.Server
	dataLns   []net.Listener
	dataKinds []int // 0 http, 1 https, per dataLns entry
	certConns certConns
	bgCtx     context.Context
	bgCancel  context.CancelFunc
	bgDone    chan struct{}
	// Governance loops: usage persistence and the sunset sweeper.
	flusher *usagestore.Flusher
	sweeper *lifecycle.SunsetSweeper
	govLoop sync.WaitGroup
	// reviews publishes approved versions at their scheduled time;
	// reviewDone is closed when its loop ends (nil when it never ran).
	reviews    *review.ScheduledPublisher
	reviewDone chan struct{}
}

// New opens the store (applying migrations), bootstraps the first tenant and
// admin token when the store is empty, and builds the servers. The
// bootstrap secret, when one is generated, is written once to notice
// (stderr), never to the log.
func New(ctx context.Context, cfg config.Config, log *slog.Logger, notice io.Writer) (*App, error) {
	a := &App{cfg: cfg, log: log, metrics: telemetry.NewMetrics()}
	var err error
	switch {
	case cfg.Store == "sqlite":
		a.store, err = sqlite.Open(ctx, cfg.DataDir)
	default:
		a.store, err = postgres.Open(ctx, cfg.Store)
	}
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	secret, err := bootstrap(ctx, a.store, cfg.AdminToken)
	if err != nil {
		a.store.Close()
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	if secret != "" {
		fmt.Fprintf(notice, "\nFleetgate bootstrap admin token (shown once; it is stored only as a hash):\n\n    %s\n\nexport FLEETGATE_TOKEN=%s\n\n", secret, secret)
	}
	bg, cancel := context.WithCancel(context.Background())
	a.bgCtx, a.bgCancel, a.bgDone = bg, cancel, make(chan struct{})
	a.counter = ratelimit.NewLocal(ratelimit.LocalOptions{MaxBuckets: cfg.RateLimitMax})
	var counter ratelimit.Counter = a.counter
	if cfg.RateLimitRedis != "" {
		opt, err := redis.ParseURL(cfg.RateLimitRedis)
		if err != nil {
			cancel()
			a.store.Close()
			return nil, fmt.Errorf("--rate-limit-redis: %w", err)
		}
		a.redis = redis.NewClient(opt)
		pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
		err = a.redis.Ping(pctx).Err()
		pcancel()
		if err != nil {
			cancel()
			a.store.Close()
			return nil, fmt.Errorf("--rate-limit-redis: %s unreachable: %w", opt.Addr, err)
		}
		counter = ratelimit.NewRedis(a.redis, "fleetgate:rl:")
	}
	dp := a.metrics.NewDataPlane()
	a.dp = dp
	a.engine = policy.NewEngine(policy.Options{Counter: counter, OnCounterError: func(err error) {
		log.Warn("rate-limit counter failed; request allowed", "err", err)
	}})
	a.usage = usage.New()
	var kek []byte
	if cfg.DeviceKEK != "" {
		if kek, err = pki.ParseKEK(cfg.DeviceKEK); err != nil {
			cancel()
			a.store.Close()
			return nil, fmt.Errorf("FLEETGATE_DEVICE_KEK: %w", err)
		}
	}
	a.devices = devobs.New(0, 0)
	a.registerDeviceMetrics()
	a.builder = snapshot.New(bg, a.store, a.engine, log)
	a.builder.SetKEK(kek) // DTLS PSKs are opened into the snapshot
	a.builder.OnBuild = func(s *policy.Snapshot) {
		dp.Snapshot(s.Serial)
		// Sessions of revoked or removed credentials end with the swap.
		if a.mqtt != nil {
			a.mqtt.Revalidate()
		}
		a.certConns.revalidate(a.engine, s)
	}
	if _, err := a.builder.Build(ctx); err != nil {
		cancel()
		a.store.Close()
		return nil, fmt.Errorf("first snapshot: %w", err)
	}
	a.gateway = httpgw.New(httpgw.Options{Engine: a.engine, Usage: a.usage, Metrics: dp, Logger: log, AccessLog: cfg.AccessLog,
		Publisher: mqttPublisher{a}, Devices: a.devices})
	gov := lifecycle.Governance{Usage: a.usage}
	// The approvals check runs before the governance checks: who may
	// publish is settled before whether the gateway can take the version.
	machine := lifecycle.New(append([]lifecycle.Check{review.Check}, gov.Checks()...)...)
	a.flusher = &usagestore.Flusher{Recorder: a.usage, Store: a.store}
	a.sweeper = newSweeper(a, machine)
	a.reviews = &review.ScheduledPublisher{Store: a.store, Machine: machine, Log: log, OnChange: a.builder.Notify}
	a.admin = admin.New(admin.Options{Store: a.store, Lifecycle: machine, Logger: log, Metrics: a.metrics, OnChange: a.builder.Notify, Usage: a.usage, Governance: gov, Devices: a.devices})
	a.admin.SetDeviceOptions(admin.DeviceOptions{KEK: kek})
	mux := http.NewServeMux()
	mux.Handle(admin.Prefix+"/", a.admin)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "text/plain")
		if err := a.store.Ping(ctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "store unavailable\n")
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	})
	mux.Handle("GET /metrics", a.metrics.Handler())
	a.adminSrv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return a, nil
}

// Store exposes the store (for tests and embedded use).
func (a *App) Store() store.Store { return a.store }

// Start binds the listeners and serves in the background. A port already in
// use is reported with the flag that changes it.
func (a *App) Start() error {
	ln, err := listen(a.cfg.AdminAddr, "--admin-addr")
	if err != nil {
		return err
	}
	a.adminLn = ln
	go func() {
		defer close(a.bgDone)
		a.builder.Run(a.bgCtx)
	}()
	a.seenDone = make(chan struct{})
	go func() {
		defer close(a.seenDone)
		a.runSeenFlusher(a.bgCtx, a.cfg.DeviceSeenInterval)
	}()
	if every := a.cfg.ReviewPublishInterval; every > 0 {
		a.reviewDone = make(chan struct{})
		go a.runScheduledPublications(a.bgCtx, every)
	}
	if err := a.startDataPlane(); err != nil {
		return err
	}
	a.startGovernance()
	go a.recheckSessions(a.bgCtx, sessionRecheckInterval)
	go func() {
		if err := a.adminSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("admin listener stopped", "err", err)
		}
	}()
	attrs := []any{"admin", "http://" + ln.Addr().String(), "store", a.store.Backend(), "data_dir", a.cfg.DataDir}
	for i, l := range a.dataLns {
		attrs = append(attrs, []string{"http", "https"}[a.dataKinds[i]], l.Addr().String())
	}
	a.log.Info("fleetgate started", attrs...)
	return nil
}

// sessionRecheckInterval bounds how long a live session outlasts a
// credential that expires by the clock alone (a device token's exp, a
// certificate's NotAfter): revocations end sessions at the snapshot swap,
// but expiry changes no snapshot.
const sessionRecheckInterval = 5 * time.Second

// recheckSessions re-validates live MQTT sessions and client-certificate
// HTTPS connections against the current snapshot every interval, until ctx
// ends.
func (a *App) recheckSessions(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if a.mqtt != nil {
				a.mqtt.Revalidate()
			}
			a.certConns.revalidate(a.engine, a.engine.Snapshot())
		}
	}
}

func listen(addr, flag string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("%s is already in use; choose another address with %s (or its FLEETGATE_%s env var)",
				addr, flag, strings.ToUpper(strings.ReplaceAll(strings.TrimPrefix(flag, "--"), "-", "_")))
		}
		return nil, fmt.Errorf("listen %s (%s): %w", addr, flag, err)
	}
	return ln, nil
}

// AdminURL is the base URL of the bound admin listener.
func (a *App) AdminURL() string { return "http://" + a.adminLn.Addr().String() }

// Shutdown stops accepting, lets in-flight requests finish (until ctx ends)
// and closes the store.
func (a *App) Shutdown(ctx context.Context) error {
	var errs []error
	for _, srv := range a.dataSrvs {
		errs = append(errs, srv.Shutdown(ctx))
	}
	if a.mqtt != nil {
		errs = append(errs, a.mqtt.Close())
	}
	if a.adminLn != nil {
		errs = append(errs, a.adminSrv.Shutdown(ctx))
	}
	a.bgCancel()
	if a.adminLn != nil {
		<-a.bgDone
	}
	a.govLoop.Wait()
	// The data plane has stopped: the last calls are persisted now.
	if _, err := a.flusher.Flush(context.WithoutCancel(ctx)); err != nil {
		errs = append(errs, fmt.Errorf("flush usage: %w", err))
	}
	if a.seenDone != nil {
		<-a.seenDone
		// The data plane is stopped: the last sightings are final.
		if _, err := a.flushSeen(ctx); err != nil {
			errs = append(errs, fmt.Errorf("device sightings: %w", err))
		}
	}
	if a.reviewDone != nil {
		<-a.reviewDone
	}
	if a.forwarder != nil {
		a.forwarder.Wait()
	}
	a.counter.Close()
	if a.redis != nil {
		errs = append(errs, a.redis.Close())
	}
	errs = append(errs, a.store.Close())
	a.log.Info("fleetgate stopped")
	return errors.Join(errs...)
}

// mqttPublisher lets HTTP operations publish commands on the MQTT data
// plane, which starts after the HTTP gateway is built (and may be off).
type mqttPublisher struct{ a *App }

var _ httpgw.Requester = mqttPublisher{}

func (p mqttPublisher) Publish(ctx context.Context, topic string, payload []byte, qos byte, retain bool) error {
	if p.a.mqtt == nil {
		return errors.New("the MQTT data plane is not enabled (--mqtt-addr)")
	}
	return p.a.mqtt.Publish(ctx, topic, payload, qos, retain)
}

// Request implements httpgw.Requester: a command that waits for the
// device's MQTT 5 reply.
func (p mqttPublisher) Request(ctx context.Context, topic string, payload []byte, qos byte, replyTopic string) ([]byte, string, error) {
	if p.a.mqtt == nil {
		return nil, "", errors.New("the MQTT data plane is not enabled (--mqtt-addr)")
	}
	r, err := p.a.mqtt.Request(ctx, topic, payload, qos, replyTopic)
	if errors.Is(err, mqttgw.ErrBusy) {
		return nil, "", httpgw.ErrTooManyWaiting
	}
	return r.Payload, r.ContentType, err
}
