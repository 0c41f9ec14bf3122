// Package mqttgw is the MQTT adapter of the data plane. It authenticates
// sessions at CONNECT, turns every PUBLISH and SUBSCRIBE into a
// policy.Request, asks the one policy engine, and enforces the Decision
// with MQTT reason codes (MQTT 5) or the closest 3.1.1 behaviour. It
// decides nothing itself and never reads the store.
//
// Two modes share the listeners (TCP, TLS, WebSocket) and the decisions:
//
//   - Embedded (default): a mochi-mqtt broker runs in process; a hook, the
//     broker's seam, asks the engine at CONNECT, PUBLISH, SUBSCRIBE and on
//     every delivery, and denies whatever it was not asked about.
//   - Proxy (Options.Upstream set): each device session is terminated here
//     and relayed over one upstream connection of its own to an external
//     broker (Mosquitto, EMQX, VerneMQ, HiveMQ, or another Fleetgate), under
//     the device's per-tenant session key (upstreamClientID) and the
//     gateway's credentials. Packets are parsed and enforced in both
//     directions.
//
// Identity rules, both modes: the password is an application API key, or
// the TLS client certificate is a device certificate Fleetgate issued or is
// pinned to an application; the client id must be the principal's ID or
// start with "<ID>-" (see clientIDBound), and is unique per tenant only
// (sessionKey); undeclared topics are denied and recorded as shadow
// traffic.
//
// Spec rules are cited as [MQTT-x.y.z-n] with MQTT 5.0 numbering; rules
// that exist only in 3.1.1 say so.
package mqttgw

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/fleetgate/fleetgate/internal/third_party/mochi"

	"github.com/fleetgate/fleetgate/internal/devobs"
	"github.com/fleetgate/fleetgate/internal/policy"
	"github.com/fleetgate/fleetgate/internal/telemetry"
	"github.com/fleetgate/fleetgate/internal/usage"
)

// DefaultMaxPacketSize bounds MQTT packets when Options.MaxPacketSize is 0.
const DefaultMaxPacketSize = 256 << 10

// Options configure a Gateway.
type Options struct {
	Engine  *policy.Engine
	Usage   *usage.Recorder
	Metrics *telemetry.DataPlane // may be nil
	Logger  *slog.Logger
	// TCPAddr, TLSAddr and WSAddr are the listen addresses ("" disables
	// each; ":0" picks a free port, see Addrs). TLS uses TLSConfig, which
	// decides whether client certificates are requested and verified.
	TCPAddr, TLSAddr, WSAddr string
	TLSConfig                *tls.Config
	// Upstream selects proxy mode: "tcp://host:port" (or "mqtt://") of an
	// external broker. "" runs the embedded broker.
	Upstream string
	// UpstreamUsername and UpstreamPassword are the gateway's own
	// credentials at the external broker; devices' credentials never
	// leave the gateway.
	UpstreamUsername, UpstreamPassword string
	// MaxPacketSize bounds every packet in both directions (default 256 KiB).
	MaxPacketSize int
	// Forbidden311 is what a forbidden PUBLISH from an MQTT 3.1.1 client
	// does, since 3.1.1 has no negative PUBACK (3.1.1 [MQTT-3.3.5-2]):
	// "disconnect" (default) closes the connection, "drop" acknowledges
	// the message as usual and discards it.
	Forbidden311 string
	// Forward, when set, receives every allowed publish on a channel whose
	// version names upstream targets (telemetry to webhooks). It must not
	// block and must copy payload.
	Forward func(rt *policy.Route, topic, sender string, payload []byte, at time.Time)
	// MaxWaitingReplies bounds the commands waiting for a device's reply
	// at once (Request); more get ErrBusy. 0 means DefaultMaxWaitingReplies.
	MaxWaitingReplies int
	// Devices, when set, notes device sessions (CONNECT and every
	// decision: last seen; firmware from the CONNECT) and CONNECTs
	// refused for a revoked API key. Certificates are observed at the TLS
	// handshake by whoever builds TLSConfig.
	Devices *devobs.Recorder
}

// Gateway is the MQTT data-plane adapter. Its methods are safe for
// concurrent use.
type Gateway struct {
	o        Options
	log      *slog.Logger
	upstream string // host:port in proxy mode

	broker *mqtt.Server // embedded mode

	lns []*listener

	mu       sync.Mutex
	sessions map[*session]struct{}
	owners   map[string]*session // session key -> live session (proxy mode)
	started  bool
	closed   bool
	proxyWG  sync.WaitGroup
	mediator *mediator // proxy-mode Publish

	waiting    atomic.Int64 // Request calls waiting for a reply
	inlineSubs atomic.Int32 // identifiers of Request's inline subscriptions
}

// New validates o and builds a gateway; Start binds the listeners.
func New(o Options) (*Gateway, error) {
	if o.Engine == nil {
		return nil, errors.New("mqtt: Options.Engine is required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case o.MaxPacketSize == 0:
		o.MaxPacketSize = DefaultMaxPacketSize
	case o.MaxPacketSize < 1024 || o.MaxPacketSize > 256<<20:
		return nil, fmt.Errorf("mqtt: max packet size %d: want 1 KiB to 256 MiB", o.MaxPacketSize)
	}
	switch o.Forbidden311 {
	case "":
		o.Forbidden311 = "disconnect"
	case "disconnect", "drop":
	default:
		return nil, fmt.Errorf("mqtt: forbidden 3.1.1 publish behaviour %q: want disconnect or drop", o.Forbidden311)
	}
	if o.TLSAddr != "" && o.TLSConfig == nil {
		return nil, errors.New("mqtt: a TLS listen address needs a TLS configuration")
	}
	g := &Gateway{o: o, log: o.Logger.With("component", "mqtt"), sessions: map[*session]struct{}{}, owners: map[string]*session{}}
	if o.Upstream != "" {
		u, err := url.Parse(o.Upstream)
		if err != nil || (u.Scheme != "tcp" && u.Scheme != "mqtt") || u.Host == "" || u.Port() == "" {
			return nil, fmt.Errorf("mqtt: upstream %q: want tcp://host:port", o.Upstream)
		}
		g.upstream = u.Host
		g.mediator = &mediator{g: g}
		return g, nil
	}
	g.broker = newBroker(g)
	return g, nil
}

// Start binds the configured listeners and starts serving. A port in use
// is reported with the flag that configures it.
func (g *Gateway) Start() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.started || g.closed {
		return errors.New("mqtt: gateway already started or closed")
	}
	for _, spec := range []struct{ id, flag, addr string }{
		{"tcp", "--mqtt-addr", g.o.TCPAddr},
		{"tls", "--mqtts-addr", g.o.TLSAddr},
		{"ws", "--mqtt-ws-addr", g.o.WSAddr},
	} {
		if spec.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", spec.addr)
		if err != nil {
			for _, l := range g.lns {
				_ = l.ln.Close()
			}
			g.lns = nil
			return fmt.Errorf("mqtt: %s %s: %w", spec.flag, spec.addr, err)
		}
		g.lns = append(g.lns, newListener(g, spec.id, ln))
	}
	g.started = true
	if g.broker != nil {
		for _, l := range g.lns {
			if err := g.broker.AddListener(l); err != nil {
				return fmt.Errorf("mqtt: listener %s: %w", l.id, err)
			}
		}
		return g.broker.Serve()
	}
	for _, l := range g.lns {
		go l.Serve(g.serveProxy)
	}
	return nil
}

// Addrs returns the bound address of each listener: "tcp", "tls", "ws".
func (g *Gateway) Addrs() map[string]string {
	g.mu.Lock()
	defer g.mu.Unlock()
	m := make(map[string]string, len(g.lns))
	for _, l := range g.lns {
		m[l.id] = l.Address()
	}
	return m
}

// Revalidate ends the sessions whose credential the current snapshot no
// longer backs (revoked or expired key or device certificate, suspended
// device, removed application or pin: policy.Snapshot.SessionValid). The
// lead calls it after every snapshot swap. MQTT 5 clients get DISCONNECT
// 0x87 Not authorized first (MQTT 5 §3.14.2.1: the Server may send it
// "when the request is not authorized"; 0x8D is for keep-alive timeouts);
// every affected connection is closed within kickTimeout (< 1 s). A
// revoked session's Will is not published: the broker would otherwise send
// a message on behalf of an identity that is no longer trusted.
func (g *Gateway) Revalidate() {
	snap := g.o.Engine.Snapshot()
	now := time.Now()
	type credential struct {
		p    *policy.Principal
		cert *x509.Certificate
	}
	g.mu.Lock()
	var kick []*session
	valid := map[credential]bool{} // many sessions share a principal
	for s := range g.sessions {
		k := credential{s.principal, s.cert}
		ok, seen := valid[k]
		if !seen {
			ok = snap.SessionValid(s.principal, s.cert, now)
			valid[k] = ok
		}
		if !ok {
			kick = append(kick, s)
		}
	}
	g.mu.Unlock()
	for _, s := range kick {
		g.log.Info("mqtt session revoked", "client_id", s.clientID, "subject", s.principal.Subject)
		g.denial("revoked")
		if s.kick != nil {
			s.kick(codeNotAuthorized)
		}
	}
}

// register adds an admitted session, then checks it against the current
// snapshot once more: a Revalidate that ran between authentication and
// registration would otherwise have missed it.
func (g *Gateway) register(s *session) bool {
	g.mu.Lock()
	g.sessions[s] = struct{}{}
	if g.broker == nil {
		g.owners[s.key] = s
	}
	g.mu.Unlock()
	if !g.o.Engine.Snapshot().SessionValid(s.principal, s.cert, time.Now()) {
		g.unregister(s)
		return false
	}
	return true
}

func (g *Gateway) unregister(s *session) {
	g.mu.Lock()
	delete(g.sessions, s)
	if g.owners[s.key] == s {
		delete(g.owners, s.key)
	}
	g.mu.Unlock()
}

// Publish sends a message from the gateway itself (HTTP -> MQTT mediation:
// the HTTP operation that asked for it was already authorized by the
// engine). It is not decided again as a publish, but each subscriber still
// receives it only if its session may subscribe to topic. In proxy mode it
// goes through one gateway-owned upstream connection.
func (g *Gateway) Publish(ctx context.Context, topic string, payload []byte, qos byte, retain bool) error {
	if err := g.checkPublish(topic, payload, qos); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if g.broker != nil {
		return g.broker.Publish(topic, payload, retain, qos)
	}
	return g.mediator.publish(ctx, topic, payload, qos, retain)
}

// checkPublish checks a message the gateway itself publishes.
func (g *Gateway) checkPublish(topic string, payload []byte, qos byte) error {
	if !validTopicName(topic) {
		return fmt.Errorf("mqtt: publish: invalid topic name %q", topic)
	}
	if qos > 2 {
		return fmt.Errorf("mqtt: publish: qos %d: want 0, 1 or 2", qos)
	}
	// 16 bytes of fixed header and packet id, 64 of request properties.
	if len(payload)+len(topic)+80 > g.o.MaxPacketSize {
		return fmt.Errorf("mqtt: publish: message larger than the %d-byte packet limit", g.o.MaxPacketSize)
	}
	return nil
}

// Close stops the listeners and ends every session. Embedded-mode Wills
// are published as for any lost connection; in proxy mode the upstream
// connections are closed without DISCONNECT, so the external broker does
// the same.
func (g *Gateway) Close() error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	g.closed = true
	started := g.started
	g.mu.Unlock()
	if g.broker != nil {
		if !started {
			return nil
		}
		return g.broker.Close()
	}
	for _, l := range g.lns {
		l.Close(func(string) {})
	}
	g.proxyWG.Wait()
	g.mediator.close()
	return nil
}
