package mqttgw

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/fleetgate/fleetgate/internal/third_party/mochi"
	"github.com/fleetgate/fleetgate/internal/third_party/mochi/listeners"
	"github.com/fleetgate/fleetgate/internal/third_party/mochi/packets"
	"github.com/gorilla/websocket"
)

// listener serves one of the gateway's addresses. It implements mochi's
// listeners.Listener so the embedded broker can use it, and the proxy
// calls Serve with its own function: both modes get the same accept loop,
// connection tracking and connection guard. The socket is bound by
// Gateway.Start, so a port in use fails Start (with the flag's name) and
// ":0" reports the port it got.
type listener struct {
	g   *Gateway
	id  string // "tcp", "tls" or "ws"
	ln  net.Listener
	srv *http.Server // ws only

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

var _ listeners.Listener = (*listener)(nil)

func newListener(g *Gateway, id string, ln net.Listener) *listener {
	if id == "tls" {
		ln = tls.NewListener(ln, g.o.TLSConfig)
	}
	return &listener{g: g, id: id, ln: ln, conns: map[net.Conn]struct{}{}}
}

// ID implements listeners.Listener.
func (l *listener) ID() string { return l.id }

// Address implements listeners.Listener: the bound address.
func (l *listener) Address() string { return l.ln.Addr().String() }

// Protocol implements listeners.Listener.
func (l *listener) Protocol() string { return l.id }

// Init implements listeners.Listener; the socket is already bound.
func (l *listener) Init(*slog.Logger) error { return nil }

// Serve accepts connections until Close and hands each, guarded, to
// establish on its own goroutine. Temporary accept errors (out of file
// descriptors) back off from 5 ms to 1 s instead of spinning.
func (l *listener) Serve(establish listeners.EstablishFn) {
	if l.id == "ws" {
		l.serveWS(establish)
		return
	}
	var backoff time.Duration
	for {
		conn, err := l.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return // closed
		}
		backoff = 0
		go l.handle(conn, establish)
	}
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// handle runs one connection to its end. The connect deadline bounds the
// TLS handshake and the wait for CONNECT; the broker or the proxy sets the
// keep-alive deadline once CONNECT is accepted.
func (l *listener) handle(conn net.Conn, establish listeners.EstablishFn) {
	gc := &guardConn{Conn: conn, transport: l.id, max: l.g.o.MaxPacketSize}
	if !l.track(gc) {
		_ = conn.Close()
		return
	}
	defer l.untrack(gc)
	_ = conn.SetDeadline(time.Now().Add(connectTimeout))
	if err := establish(l.id, gc); err != nil {
		l.g.log.Debug("mqtt connection ended", "listener", l.id, "remote", conn.RemoteAddr().String(), "err", err.Error())
	}
}

func (l *listener) track(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.conns[c] = struct{}{}
	return true
}

func (l *listener) untrack(c net.Conn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
	_ = c.Close()
}

// Close implements listeners.Listener: it stops accepting, lets the broker
// disconnect its clients (closeClients), then closes every connection
// still open, including those that never completed CONNECT.
func (l *listener) Close(closeClients listeners.CloseFn) {
	l.mu.Lock()
	already, srv := l.closed, l.srv
	l.closed = true
	l.mu.Unlock()
	if already {
		return
	}
	_ = l.ln.Close()
	if srv != nil {
		_ = srv.Close()
	}
	// mochi writes each client a DISCONNECT; a client that does not read
	// would block that write, so after closeGrace the connections are
	// closed under it, which unblocks it.
	done := make(chan struct{})
	go func() {
		defer close(done)
		closeClients(l.id)
	}()
	select {
	case <-done:
	case <-time.After(closeGrace):
	}
	l.mu.Lock()
	conns := make([]net.Conn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
	<-done
}

// closeGrace bounds the polite part of Close.
const closeGrace = time.Second

// serveWS serves MQTT over WebSocket (subprotocol "mqtt", binary frames,
// MQTT 5 §6). Authentication is the MQTT CONNECT's, never a cookie, so any
// origin may connect.
func (l *listener) serveWS(establish listeners.EstablishFn) {
	up := &websocket.Upgrader{
		Subprotocols:     []string{"mqtt"},
		CheckOrigin:      func(*http.Request) bool { return true },
		ReadBufferSize:   1024,
		WriteBufferSize:  1024,
		WriteBufferPool:  &sync.Pool{},
		HandshakeTimeout: connectTimeout,
	}
	l.mu.Lock()
	l.srv = &http.Server{
		ReadHeaderTimeout: connectTimeout,
		ErrorLog:          slog.NewLogLogger(l.g.log.Handler(), slog.LevelDebug),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			l.handle(&wsConn{Conn: c.NetConn(), c: c}, establish)
		}),
	}
	srv := l.srv
	closed := l.closed
	l.mu.Unlock()
	if !closed {
		_ = srv.Serve(l.ln)
	}
}

// wsConn presents a WebSocket as a byte stream: MQTT packets may span
// frames and frames may hold several packets [MQTT-6.0.0-2].
type wsConn struct {
	net.Conn
	c *websocket.Conn
	r io.Reader // current message, nil between messages
}

func (w *wsConn) Read(p []byte) (int, error) {
	for range 64 { // empty frames are legal; a run of them ends the read
		if w.r == nil {
			op, r, err := w.c.NextReader()
			if err != nil {
				return 0, err
			}
			if op != websocket.BinaryMessage {
				return 0, errors.New("mqtt over websocket: text frame") // [MQTT-6.0.0-1]
			}
			w.r = r
		}
		n, err := w.r.Read(p)
		if errors.Is(err, io.EOF) {
			w.r = nil
			err = nil
		}
		if n > 0 || err != nil {
			return n, err
		}
	}
	return 0, errors.New("mqtt over websocket: too many empty frames")
}

func (w *wsConn) Write(p []byte) (int, error) {
	if err := w.c.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// guardConn is the connection handed to the broker or the proxy. It
// carries the session once CONNECT is accepted (the embedded hook finds it
// through mochi's Client.Net.Conn without a map lookup), and it watches
// the packet framing of the inbound byte stream to refuse, before mochi's
// decoder sees it, an MQTT 5 SUBSCRIBE that would make mochi v2.7.9 panic
// (SubscribeDecode reads the options byte past the end of a packet that
// ends right after a filter; found by fuzzing). Read is called by one
// goroutine only, so the framing state needs no lock.
type guardConn struct {
	net.Conn
	transport string
	max       int
	sess      atomic.Pointer[session]

	state   uint8 // 0: fixed header byte, 1: remaining length, 2: body
	typ     byte
	lenMul  uint
	left    int
	first   bool // the first packet (CONNECT) has been framed
	version byte
	capture bool
	buf     []byte // body of the current packet, when captured

	lazy     *mqtt.LazyTCP // for ReadLazy, made by its first call
	lazyInit bool
}

var errGuardMalformed = errors.New("mqtt: malformed packet")

func (c *guardConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		if ferr := c.scan(p[:n]); ferr != nil {
			return 0, ferr
		}
	}
	return n, err
}

// ReadLazy implements mochi's LazyReader for plain TCP connections, so
// that an idle device's reader waits for its next packet without holding
// a read buffer and a packet costs one read system call; the bytes are
// scanned as Read scans them.
func (c *guardConn) ReadLazy(get func() []byte, put func()) ([]byte, error) {
	if !c.lazyInit {
		c.lazyInit = true
		c.lazy = mqtt.NewLazyTCP(c.Conn)
	}
	if c.lazy == nil {
		return nil, errors.ErrUnsupported
	}
	p, err := c.lazy.ReadLazy(get, put)
	if len(p) > 0 {
		if ferr := c.scan(p); ferr != nil {
			return nil, ferr
		}
	}
	return p, err
}

// scan advances the framing state over b. Body bytes are skipped in
// chunks, so the cost is per packet, not per byte.
func (c *guardConn) scan(b []byte) error {
	for len(b) > 0 {
		switch c.state {
		case 0:
			c.typ, c.left, c.lenMul, c.state = b[0]>>4, 0, 0, 1
			b = b[1:]
		case 1:
			v := b[0]
			b = b[1:]
			c.left |= int(v&127) << c.lenMul
			c.lenMul += 7
			if c.left+1 > c.max {
				return packets.ErrPacketTooLarge // [MQTT-3.2.2-15]
			}
			if v&128 != 0 {
				if c.lenMul >= 28 {
					return errGuardMalformed // [MQTT-1.5.5] at most 4 bytes
				}
				continue
			}
			// Capture the CONNECT head (protocol name, version) and MQTT 5
			// SUBSCRIBE bodies; nothing else is copied.
			c.capture = (!c.first && c.typ == packets.Connect) || (c.version == 5 && c.typ == packets.Subscribe)
			c.buf = c.buf[:0]
			c.state = 2
			if c.left == 0 {
				if err := c.done(); err != nil {
					return err
				}
			}
		case 2:
			k := min(c.left, len(b))
			if c.capture {
				take := k
				if c.typ == packets.Connect {
					take = max(0, min(k, 16-len(c.buf))) // name and version suffice
				}
				c.buf = append(c.buf, b[:take]...)
			}
			b, c.left = b[k:], c.left-k
			if c.left == 0 {
				if err := c.done(); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// done checks a complete packet.
func (c *guardConn) done() error {
	c.state = 0
	defer func() {
		if cap(c.buf) > 4096 {
			c.buf = nil // do not pin a large SUBSCRIBE's buffer
		}
	}()
	if !c.first {
		c.first = true
		if c.typ == packets.Connect && len(c.buf) >= 2 {
			if n := int(c.buf[0])<<8 | int(c.buf[1]); len(c.buf) > 2+n {
				c.version = c.buf[2+n]
			}
		}
		return nil
	}
	if c.version == 5 && c.typ == packets.Subscribe && !decodes(c.buf) {
		return errGuardMalformed
	}
	return nil
}

// decodes reports whether mochi decodes an MQTT 5 SUBSCRIBE body without
// panicking.
func decodes(body []byte) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	pk := packets.Packet{ProtocolVersion: 5, FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1}}
	_ = pk.SubscribeDecode(append([]byte(nil), body...))
	return true
}

// peerCert returns the verified TLS client certificate, if any.
func (c *guardConn) peerCert() *x509.Certificate {
	if tc, ok := c.Conn.(*tls.Conn); ok {
		if cs := tc.ConnectionState(); len(cs.PeerCertificates) > 0 {
			return cs.PeerCertificates[0]
		}
	}
	return nil
}

// remoteIP is the client's address without the port.
func (c *guardConn) remoteIP() string {
	h, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return c.RemoteAddr().String()
	}
	return h
}
