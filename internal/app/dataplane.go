package app

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fleetgate/fleetgate/internal/forward"
	mqttgw "github.com/fleetgate/fleetgate/internal/gateway/mqtt"
	"github.com/fleetgate/fleetgate/internal/policy"
)

// startDataPlane binds the HTTP and HTTPS data-plane listeners.
func (a *App) startDataPlane() error {
	// MQTT first: HTTP operations may publish commands through it, so it
	// must exist before the HTTP listeners accept requests.
	if a.cfg.MQTTAddr != "" || a.cfg.MQTTSAddr != "" || a.cfg.MQTTWSAddr != "" {
		if err := a.startMQTT(); err != nil {
			return err
		}
	}
	// Device enrollment shares the data-plane listeners: devices reach the
	// gateway, not the admin API.
	dp := http.NewServeMux()
	dp.Handle("POST /.well-known/fleetgate/enroll", a.admin.EnrollHandler())
	dp.Handle("POST /.well-known/fleetgate/claim", a.admin.ClaimHandler())
	dp.Handle("/.well-known/est/", a.admin.ESTHandler())
	rev := a.admin.RevocationHandler()
	dp.Handle("GET /.well-known/fleetgate/{tenant}/crl", rev)
	dp.Handle("POST /.well-known/fleetgate/{tenant}/ocsp", rev)
	dp.Handle("GET /.well-known/fleetgate/{tenant}/jwks.json", a.admin.DeviceJWKSHandler())
	dp.Handle("/", a.gateway)
	newSrv := func() *http.Server {
		return &http.Server{
			Handler:           dp,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       120 * time.Second,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelDebug),
		}
	}
	if a.cfg.HTTPAddr != "" {
		ln, err := listen(a.cfg.HTTPAddr, "--http-addr")
		if err != nil {
			return err
		}
		srv := newSrv()
		a.dataSrvs, a.dataLns, a.dataKinds = append(a.dataSrvs, srv), append(a.dataLns, ln), append(a.dataKinds, 0)
		go a.serve(srv, func() error { return srv.Serve(ln) }, "http")
	}
	if a.cfg.DebugAddr != "" {
		ln, err := listen(a.cfg.DebugAddr, "--debug-addr")
		if err != nil {
			return err
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		a.dataSrvs = append(a.dataSrvs, srv)
		go a.serve(srv, func() error { return srv.Serve(ln) }, "debug")
	}
	if a.cfg.HTTPSAddr != "" {
		tc, err := a.tlsConfig("https")
		if err != nil {
			return err
		}
		ln, err := listen(a.cfg.HTTPSAddr, "--https-addr")
		if err != nil {
			return err
		}
		srv := newSrv()
		srv.TLSConfig = tc
		srv.ConnState = a.certConns.track(a)
		a.dataSrvs, a.dataLns, a.dataKinds = append(a.dataSrvs, srv), append(a.dataLns, ln), append(a.dataKinds, 1)
		// ServeTLS enables HTTP/2 (ALPN h2) alongside HTTP/1.1.
		go a.serve(srv, func() error { return srv.ServeTLS(ln, "", "") }, "https")
	}
	return nil
}

func (a *App) serve(_ *http.Server, run func() error, name string) {
	if err := run(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		a.log.Error("data-plane listener stopped", "listener", name, "err", err)
	}
}

// tlsConfig: TLS 1.2+, and client certificates per --client-auth;
// refused certificates are recorded under listener ("https", "mqtts"). Without a
// client CA, "request" still asks for a certificate and TLS proves the
// client holds its key; the engine then accepts only certificates pinned to
// an application, like SSH keys.
func (a *App) tlsConfig(listener string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(a.cfg.TLSCert, a.cfg.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if listener == "https" {
		// Stated here rather than left to http.Server.ServeTLS, which adds
		// them to its own copy: the per-connection configs of
		// withHandshakeObserver are cloned from this one.
		tc.NextProtos = []string{"h2", "http/1.1"}
	}
	if a.cfg.TLSClientCA != "" {
		pem, err := os.ReadFile(a.cfg.TLSClientCA)
		if err != nil {
			return nil, fmt.Errorf("--tls-client-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-client-ca %s: no PEM certificates found", a.cfg.TLSClientCA)
		}
		tc.ClientCAs = pool
	}
	// With a client CA, the chain is verified by our cached verifier
	// (chainVerifier) after the handshake instead of by crypto/tls in it:
	// TLS is asked for the certificate only, and still checks that the
	// client holds its key.
	var chain *chainVerifier
	switch {
	case a.cfg.ClientAuth == "require":
		tc.ClientAuth = tls.RequireAnyClientCert
		chain = newChainVerifier(tc.ClientCAs, true)
	case a.cfg.ClientAuth == "request" && tc.ClientCAs != nil:
		tc.ClientAuth = tls.RequestClientCert
		chain = newChainVerifier(tc.ClientCAs, false)
	case a.cfg.ClientAuth == "request":
		tc.ClientAuth = tls.RequestClientCert
	}
	return a.withHandshakeObserver(tc, listener, chain), nil
}

// DataURLs lists the bound data-plane base URLs ("http://127.0.0.1:8080").
func (a *App) DataURLs() []string {
	var out []string
	for i, l := range a.dataLns {
		out = append(out, []string{"http://", "https://"}[a.dataKinds[i]]+l.Addr().String())
	}
	return out
}

// startMQTT starts the MQTT adapter: embedded broker, or proxy to
// --mqtt-upstream.
func (a *App) startMQTT() error {
	a.forwarder = forward.New(forward.Options{Logger: a.log})
	a.forwarder.Start(a.bgCtx)
	fw := a.forwarder
	for _, c := range []struct {
		result string
		get    func(forward.Stats) uint64
	}{
		{"delivered", func(s forward.Stats) uint64 { return s.Delivered }},
		{"failed", func(s forward.Stats) uint64 { return s.Failed }},
		{"dropped", func(s forward.Stats) uint64 { return s.Dropped }},
		{"retried", func(s forward.Stats) uint64 { return s.Retries }},
	} {
		get := c.get
		a.metrics.Registry().MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "fleetgate_forwarded_messages_total", Help: "Telemetry forwarded to webhooks, by result (retried counts batches).",
			ConstLabels: prometheus.Labels{"result": c.result},
		}, func() float64 { return float64(get(fw.Stats())) }))
	}
	o := mqttgw.Options{Engine: a.engine, Usage: a.usage, Metrics: a.dp, Logger: a.log, Devices: a.devices,
		// Telemetry on channels whose version names http(s) upstreams is
		// forwarded to them (webhooks), batched and retried.
		Forward: func(rt *policy.Route, topic, sender string, payload []byte, at time.Time) {
			if len(rt.Webhooks) > 0 {
				fw.Enqueue(rt.Webhooks, topic, sender, payload, at)
			}
		},
		TCPAddr: a.cfg.MQTTAddr, TLSAddr: a.cfg.MQTTSAddr, WSAddr: a.cfg.MQTTWSAddr,
		Upstream: a.cfg.MQTTUpstream, UpstreamUsername: a.cfg.MQTTUpstreamUser, UpstreamPassword: a.cfg.MQTTUpstreamPassword,
		MaxPacketSize: a.cfg.MQTTMaxPacketSize, Forbidden311: a.cfg.MQTTForbidden311}
	if a.cfg.MQTTSAddr != "" {
		tc, err := a.tlsConfig("mqtts")
		if err != nil {
			return err
		}
		o.TLSConfig = tc
	}
	g, err := mqttgw.New(o)
	if err != nil {
		return err // mqttgw errors already say "mqtt:"
	}
	if err := g.Start(); err != nil {
		return err
	}
	a.mqtt = g
	return nil
}

// MQTTAddrs lists the bound MQTT listeners ("tcp", "tls", "ws" -> address).
func (a *App) MQTTAddrs() map[string]string {
	if a.mqtt == nil {
		return nil
	}
	return a.mqtt.Addrs()
}

// certConns remembers HTTPS connections whose client certificate
// authenticated someone when the connection started, so that a revocation
// closes them (keep-alive and HTTP/2 connections would otherwise live on;
// each request on them would be refused, but the session should end).
type certConns struct {
	mu    sync.Mutex
	conns map[net.Conn]*x509.Certificate
}

func (c *certConns) track(a *App) func(net.Conn, http.ConnState) {
	return func(conn net.Conn, st http.ConnState) {
		switch st {
		case http.StateActive:
			tc, ok := conn.(*tls.Conn)
			if !ok {
				return
			}
			certs := tc.ConnectionState().PeerCertificates
			if len(certs) == 0 {
				return
			}
			if _, status, _ := a.engine.AuthenticateSession(a.engine.Snapshot(), policy.Credentials{PeerCert: certs[0]}, time.Now()); status != policy.Allow {
				return
			}
			c.mu.Lock()
			if c.conns == nil {
				c.conns = map[net.Conn]*x509.Certificate{}
			}
			c.conns[conn] = certs[0]
			c.mu.Unlock()
		case http.StateClosed, http.StateHijacked:
			c.mu.Lock()
			delete(c.conns, conn)
			c.mu.Unlock()
		}
	}
}

// revalidate closes tracked connections whose certificate no longer
// authenticates anyone in snapshot s. Called after every snapshot swap.
func (c *certConns) revalidate(e *policy.Engine, s *policy.Snapshot) {
	now := time.Now()
	c.mu.Lock()
	var dead []net.Conn
	for conn, cert := range c.conns {
		if _, status, _ := e.AuthenticateSession(s, policy.Credentials{PeerCert: cert}, now); status != policy.Allow {
			dead = append(dead, conn)
			delete(c.conns, conn)
		}
	}
	c.mu.Unlock()
	for _, conn := range dead {
		_ = conn.Close()
	}
}
