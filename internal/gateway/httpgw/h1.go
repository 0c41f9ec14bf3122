package httpgw

// The lean proxy core: an HTTP/1.1 client written for the one thing a
// gateway does, relaying a request it already parsed to a plain-HTTP
// upstream over a pooled keep-alive connection.
//
// Why not http.Transport behind httputil.ReverseProxy: under load the
// Transport costs more CPU than the whole policy chain. Each exchange clones
// the request and its header map, hands the request to a per-connection
// write goroutine and the response back from a per-connection read
// goroutine over channels (two goroutine switches), and arms timers. Here
// the serving goroutine writes the request straight into the connection's
// buffer and parses the answer with the standard http.ReadResponse, so the
// wire format stays the standard library's. HTTPS upstreams, protocol
// upgrades (WebSocket) and anything unusual still go through ReverseProxy.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fleetgate/fleetgate/internal/policy"
)

const (
	maxIdlePerTarget = 256
	idleTimeout      = 90 * time.Second
	dialTimeout      = 5 * time.Second
)

// h1Conn is one keep-alive connection to an upstream target.
type h1Conn struct {
	c      net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	idleAt time.Time
	reused bool
	// stop detaches the exchange from the client's context; false when the
	// client went away and the connection was cut (never reuse it then).
	stop func() bool
}

// release ends an exchange: the connection goes back to the pool when the
// response was read to its end, the upstream keeps it open and the client
// did not go away mid-way; otherwise it is closed.
func (c *h1Conn) release(t *target, reusable bool) {
	if c.stop != nil && !c.stop() {
		reusable = false
	}
	c.stop = nil
	if reusable {
		t.idle.put(c, time.Now())
		return
	}
	c.c.Close()
}

// idleConns is a target's stack of idle connections: the most recently
// used is taken first (its peer is least likely to have timed it out) and
// the oldest are closed once idle past idleTimeout.
type idleConns struct {
	mu    sync.Mutex
	conns []*h1Conn
}

func (ic *idleConns) get(now time.Time) *h1Conn {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	for n := len(ic.conns); n > 0; n = len(ic.conns) {
		c := ic.conns[n-1]
		ic.conns[n-1] = nil
		ic.conns = ic.conns[:n-1]
		if now.Sub(c.idleAt) < idleTimeout {
			c.reused = true
			return c
		}
		c.c.Close()
	}
	return nil
}

func (ic *idleConns) put(c *h1Conn, now time.Time) {
	c.idleAt = now
	ic.mu.Lock()
	// The oldest connection sits at the bottom: close it once expired,
	// so idle sockets do not linger when traffic drops.
	if len(ic.conns) > 0 && now.Sub(ic.conns[0].idleAt) >= idleTimeout {
		old := ic.conns[0]
		copy(ic.conns, ic.conns[1:])
		ic.conns[len(ic.conns)-1] = nil
		ic.conns = ic.conns[:len(ic.conns)-1]
		defer old.c.Close()
	}
	if len(ic.conns) >= maxIdlePerTarget {
		ic.mu.Unlock()
		c.c.Close()
		return
	}
	ic.conns = append(ic.conns, c)
	ic.mu.Unlock()
}

var h1Dialer = &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}

func dialH1(ctx context.Context, addr string) (*h1Conn, error) {
	c, err := h1Dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return &h1Conn{c: c, br: bufio.NewReaderSize(c, 4096), bw: bufio.NewWriterSize(c, 4096)}, nil
}

// alive reports whether an idle connection can carry a request whose body
// cannot be replayed: a peer that closed it, or sent something unasked,
// shows up as a readable socket. One non-blocking peek (h1_peek_*.go);
// only requests that could not be retried on a fresh connection pay it.
func (c *h1Conn) alive() bool {
	if c.br.Buffered() > 0 {
		return false
	}
	return peekIdle(c.c)
}

var aLongTimeAgo = time.Unix(1, 0)

// copyBufs recycles the response copy buffers; pointers, so that putting
// one back allocates nothing.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// hopHeaders are connection-specific and never relayed (RFC 9110 §7.6.1).
var hopHeaders = map[string]bool{
	"Connection": true, "Proxy-Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
}

// skipOutbound are request headers the core writes itself or drops.
var skipOutbound = map[string]bool{
	"Forwarded": true, "X-Forwarded-For": true, "X-Forwarded-Host": true, "X-Forwarded-Proto": true,
	"Content-Length": true, "Expect": true, "Host": true,
}

// connectionTokens lists the extra hop-by-hop headers a message names in
// its Connection header; nil (no allocation) in the common case.
func connectionTokens(h http.Header) map[string]bool {
	var m map[string]bool
	for _, v := range h["Connection"] {
		for _, f := range strings.Split(v, ",") {
			if f = textproto.TrimString(f); f != "" {
				if m == nil {
					m = map[string]bool{}
				}
				m[textproto.CanonicalMIMEHeaderKey(f)] = true
			}
		}
	}
	return m
}

// leanEligible: requests the lean core relays. Protocol upgrades keep the
// connection after the response and go through ReverseProxy.
func leanEligible(r *http.Request) bool {
	return r.Header.Get("Upgrade") == "" && r.Method != http.MethodConnect
}

// errStale marks a failure on a reused connection before any response
// byte arrived: the peer had closed it while idle.
var errStale = errors.New("reused upstream connection closed")

// exchange sends r to target t over a pooled connection and returns the
// response with the connection it came on. replayable: the body (if any)
// can be sent again, so a stale pooled connection is retried on a fresh one.
func (g *Gateway) exchange(r *http.Request, t *target, body []byte, replayable bool, clientIP string) (*http.Response, *h1Conn, error) {
	for try := 0; try < 2; try++ {
		var c *h1Conn
		if try == 0 { // a retry dials: the other pooled connections may be stale too
			c = t.idle.get(time.Now())
		}
		if c != nil && !replayable && !c.alive() {
			c.c.Close()
			c = nil
		}
		if c == nil {
			var err error
			if c, err = dialH1(r.Context(), t.addr); err != nil {
				return nil, nil, &net.OpError{Op: "dial", Net: "tcp", Err: err}
			}
		}
		// A client that goes away cuts the exchange at once instead of
		// holding the upstream connection until the timeout.
		conn := c.c
		c.stop = context.AfterFunc(r.Context(), func() { _ = conn.SetDeadline(aLongTimeAgo) })
		resp, err := g.roundTrip(c, r, t, body, clientIP)
		if err == nil {
			return resp, c, nil
		}
		c.release(t, false)
		if !(c.reused && errors.Is(err, errStale) && replayable) {
			return nil, nil, err
		}
	}
	return nil, nil, errStale
}

// roundTrip writes the request and reads the response head. The
// connection's deadline bounds the whole wait for the response head
// (Options.UpstreamTimeout); the caller clears it before streaming the body.
func (g *Gateway) roundTrip(c *h1Conn, r *http.Request, t *target, body []byte, clientIP string) (*http.Response, error) {
	_ = c.c.SetDeadline(time.Now().Add(g.headerTimeout))
	if err := writeRequest(c.bw, r, t, body, clientIP); err != nil {
		if c.reused {
			return nil, errors.Join(errStale, err)
		}
		return nil, err
	}
	for {
		resp, err := http.ReadResponse(c.br, r)
		if err != nil {
			if c.reused && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isReset(err)) && c.br.Buffered() == 0 {
				return nil, errors.Join(errStale, err)
			}
			return nil, err
		}
		if resp.StatusCode < 100 || resp.StatusCode > 599 {
			// RFC 9110 §15 defines 1xx–5xx only; relaying 700 would pass
			// nonsense on to a client that trusts the gateway.
			return nil, fmt.Errorf("upstream answered with invalid status %d", resp.StatusCode)
		}
		// 1xx answers are informational: wait for the final one. A 101
		// was never asked for (upgrades do not come here).
		if resp.StatusCode >= 100 && resp.StatusCode < 200 {
			if resp.StatusCode == http.StatusSwitchingProtocols {
				return nil, errors.New("upstream switched protocols unasked")
			}
			continue
		}
		return resp, nil
	}
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

// writeRequest writes r in HTTP/1.1 wire format: the gateway's view of it
// (hop-by-hop headers dropped, X-Forwarded-* stated by the gateway, the
// target's base path prefixed), straight into the connection's buffer.
func writeRequest(bw *bufio.Writer, r *http.Request, t *target, body []byte, clientIP string) error {
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	if t.basePath != "" {
		bw.WriteString(t.basePath)
	}
	bw.WriteString(r.URL.EscapedPath())
	if r.URL.RawQuery != "" {
		bw.WriteByte('?')
		bw.WriteString(r.URL.RawQuery)
	}
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(r.Host)
	bw.WriteString("\r\n")
	conn := connectionTokens(r.Header)
	for k, vv := range r.Header {
		if hopHeaders[k] || skipOutbound[k] || conn[k] {
			continue
		}
		for _, v := range vv {
			writeHeader(bw, k, v)
		}
	}
	// Te: trailers is the one hop-by-hop value relayed: it tells the
	// upstream the chain understands trailers (gRPC needs it).
	for _, v := range r.Header["Te"] {
		if strings.EqualFold(textproto.TrimString(v), "trailers") {
			writeHeader(bw, "Te", "trailers")
			break
		}
	}
	if clientIP != "" {
		writeHeader(bw, "X-Forwarded-For", clientIP)
	}
	writeHeader(bw, "X-Forwarded-Host", r.Host)
	if r.TLS != nil {
		writeHeader(bw, "X-Forwarded-Proto", "https")
	} else {
		writeHeader(bw, "X-Forwarded-Proto", "http")
	}
	switch {
	case body != nil:
		writeContentLength(bw, int64(len(body)))
		bw.WriteString("\r\n")
		bw.Write(body)
	case r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0:
		if r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch {
			writeContentLength(bw, 0)
		}
		bw.WriteString("\r\n")
	case r.ContentLength > 0:
		writeContentLength(bw, r.ContentLength)
		bw.WriteString("\r\n")
		if n, err := io.CopyN(bw, r.Body, r.ContentLength); err != nil {
			return errClientBody{err: err, n: n}
		}
	default: // unknown length: chunked
		bw.WriteString("Transfer-Encoding: chunked\r\n\r\n")
		cw := httputil.NewChunkedWriter(bw)
		if _, err := io.Copy(cw, r.Body); err != nil {
			return errClientBody{err: err}
		}
		cw.Close()
		bw.WriteString("\r\n")
	}
	return bw.Flush()
}

// errClientBody: the client's request body failed while relaying it; the
// upstream connection is unusable and the exchange is not retried.
type errClientBody struct {
	err error
	n   int64
}

func (e errClientBody) Error() string { return "reading the request body: " + e.err.Error() }
func (e errClientBody) Unwrap() error { return e.err }

func writeHeader(bw *bufio.Writer, k, v string) {
	bw.WriteString(k)
	bw.WriteString(": ")
	bw.WriteString(v)
	bw.WriteString("\r\n")
}

func writeContentLength(bw *bufio.Writer, n int64) {
	var buf [20]byte
	bw.WriteString("Content-Length: ")
	bw.Write(strconv.AppendInt(buf[:0], n, 10))
	bw.WriteString("\r\n")
}

// relayResponse copies the upstream response to the client and gives the
// connection back to the pool when the response was read to its end and
// the upstream keeps it open. Headers the gateway already set (request id,
// rate limit, deprecation) win over the upstream's.
func (g *Gateway) relayResponse(w http.ResponseWriter, resp *http.Response, c *h1Conn, t *target) {
	_ = c.c.SetDeadline(time.Time{})
	if resp.Request != nil && resp.Request.Context().Err() != nil {
		c.release(t, false) // the client left; clearing the deadline must not revive the exchange
		return
	}
	dst := w.Header()
	conn := connectionTokens(resp.Header)
	for k, vv := range resp.Header {
		if hopHeaders[k] || conn[k] {
			continue
		}
		if _, ours := dst[k]; ours {
			continue
		}
		dst[k] = vv
	}
	if len(resp.Trailer) > 0 {
		names := make([]string, 0, len(resp.Trailer))
		for k := range resp.Trailer {
			names = append(names, k)
		}
		dst["Trailer"] = []string{strings.Join(names, ", ")}
	}
	w.WriteHeader(resp.StatusCode)
	stream := resp.ContentLength < 0 || strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")
	bp := copyBufs.Get().(*[]byte)
	ok := copyBody(w, resp.Body, *bp, stream)
	copyBufs.Put(bp)
	for k, vv := range resp.Trailer {
		dst[http.TrailerPrefix+k] = vv
	}
	if ok && !resp.Close {
		resp.Body.Close()
		c.release(t, true)
		return
	}
	c.release(t, false)
}

// copyBody relays body to w and reports whether body was read to its end.
// stream: flush after every chunk (server-sent events, unknown lengths).
func copyBody(w http.ResponseWriter, body io.Reader, buf []byte, stream bool) bool {
	var fl http.Flusher
	if stream {
		fl, _ = w.(http.Flusher)
	}
	for {
		n, err := body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return false
			}
			if fl != nil {
				fl.Flush()
			}
		}
		if err == io.EOF {
			return true
		}
		if err != nil {
			return false
		}
	}
}

// proxyLean relays an authorized request through the lean core: round
// robin over the pool's healthy targets, a failed dial retried on the next
// target (nothing was sent), a connection failure retried only for an
// idempotent request whose body can be sent again. Responses, even 5xx,
// are never retried: the upstream may have acted. Returns the status sent.
func (g *Gateway) proxyLean(w http.ResponseWriter, r *http.Request, reqID string, rt *policy.Route, p *pool, body []byte, clientIP string) int {
	replayable := body != nil || r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0
	var last *target
	var err error
	for attempt := 0; attempt < maxAttempts; attempt++ {
		t := p.pick(last)
		if t == nil {
			err = errNoHealthy
			break
		}
		var resp *http.Response
		var c *h1Conn
		resp, c, err = g.exchange(r, t, body, replayable, clientIP)
		if err == nil {
			t.succeeded()
			if verr := g.checkRouteResponse(rt, resp); verr != nil {
				c.release(t, false)
				err = verr
				break
			}
			g.relayResponse(w, resp, c, t)
			return resp.StatusCode
		}
		if r.Context().Err() != nil {
			break
		}
		var cb errClientBody
		if errors.As(err, &cb) {
			break // the client's body failed, not the upstream
		}
		t.failed(time.Now())
		last = t
		var op *net.OpError
		dialFailed := errors.As(err, &op) && op.Op == "dial"
		if !dialFailed && !(replayable && isIdempotentMethod(r.Method) && retryable(err)) {
			break
		}
	}
	if r.Context().Err() != nil {
		err = context.Canceled
	}
	var cb errClientBody
	if errors.As(err, &cb) {
		g.problem(w, r, reqID, http.StatusBadRequest, "invalid-request", "Invalid request", "the request body could not be read", "/body")
		return http.StatusBadRequest
	}
	if status := g.answerUpstreamError(w, r, rt, err); status != 0 {
		return status
	}
	return 499 // client closed the request (nginx's convention, for metrics)
}

func isIdempotentMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete, http.MethodTrace:
		return true
	}
	return false
}
