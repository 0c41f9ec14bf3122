// Package httpgw is the HTTP adapter of the data plane: it matches a request
// to a route of the current snapshot, asks the policy engine, enforces the
// decision with HTTP statuses and problem+json, and proxies allowed
// requests to the version's upstream. It decides nothing itself and never
// reads the store.
package httpgw

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fleetgate/fleetgate/internal/devobs"
	"github.com/fleetgate/fleetgate/internal/policy"
	"github.com/fleetgate/fleetgate/internal/ratelimit"
	"github.com/fleetgate/fleetgate/internal/telemetry"
	"github.com/fleetgate/fleetgate/internal/usage"
)

// defaultMaxBody bounds bodies the gateway reads for routes without a
// declared limit.
const defaultMaxBody = 1 << 20

// ProblemBase prefixes problem types of the data plane.
const ProblemBase = "https://fleetgate.dev/problems/"

// Options configure a Gateway.
type Options struct {
	Engine    *policy.Engine
	Usage     *usage.Recorder
	Metrics   *telemetry.DataPlane
	Logger    *slog.Logger
	AccessLog bool
	// UpstreamTimeout bounds the wait for the upstream's response headers
	// (default 30 s).
	UpstreamTimeout time.Duration
	// Publisher delivers the body of operations whose upstream is an MQTT
	// target (commands to devices). Nil: such operations answer 502.
	Publisher Publisher
	// Devices, when set, notes authenticated devices (last seen, the
	// firmware they report in the Fleetgate-Firmware header) and refused
	// revoked API keys. Certificates are observed at the TLS handshake.
	Devices *devobs.Recorder
}

// Publisher publishes a message on the MQTT data plane. The composition
// root supplies it, so this adapter never imports the MQTT one.
type Publisher interface {
	Publish(ctx context.Context, topic string, payload []byte, qos byte, retain bool) error
}

// Gateway is the HTTP data-plane handler.
type Gateway struct {
	o             Options
	proxy         *httputil.ReverseProxy
	headerTimeout time.Duration
	pools         pools
	metrics       sync.Map // *policy.Route -> *telemetry.RouteMetrics
	metricsN      atomic.Int64
}

// New builds a gateway.
func New(o Options) *Gateway {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	g := &Gateway{o: o, headerTimeout: o.UpstreamTimeout}
	if g.headerTimeout <= 0 {
		g.headerTimeout = 30 * time.Second
	}
	g.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			// The balancer sets scheme and host per attempt; keep the path.
			pr.Out.URL.Scheme, pr.Out.URL.Host = "http", "upstream.invalid"
			pr.SetXForwarded()
			pr.Out.Host = pr.In.Host
		},
		Transport:  &balancer{rt: newTransport(o.UpstreamTimeout)},
		BufferPool: &bufferPool{},
		// FlushInterval 0: ReverseProxy still flushes at once for
		// text/event-stream and bodies of unknown length (long polls);
		// flushing every write would cost a system call per chunk.
		ErrorHandler:   g.upstreamError,
		ModifyResponse: g.checkResponse,
		ErrorLog:       slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn),
	}
	return g
}

// command publishes the request body to the device topic of an MQTT
// target and answers 202: the engine has already authorized the caller for
// this operation and its parameters.
func (g *Gateway) command(w http.ResponseWriter, r *http.Request, reqID string, s *policy.Snapshot, rt *policy.Route, params []policy.Param, body []byte) int {
	target := rt.Command
	if g.o.Publisher == nil {
		g.problem(w, r, reqID, http.StatusBadGateway, "no-upstream", "Bad gateway", "commands to devices need the MQTT data plane (--mqtt-addr)", "")
		return http.StatusBadGateway
	}
	topic, ok := target.Expand(params)
	if !ok {
		g.problem(w, r, reqID, http.StatusBadGateway, "no-upstream", "Bad gateway", "the request's parameters do not make a valid command topic", "")
		return http.StatusBadGateway
	}
	if body == nil && r.Body != nil {
		b, err := io.ReadAll(io.LimitReader(r.Body, defaultMaxBody+1))
		if err != nil || len(b) > defaultMaxBody {
			g.problem(w, r, reqID, http.StatusRequestEntityTooLarge, "too-large", "Request body too large", "a command is at most 1 MiB", "/body")
			return http.StatusRequestEntityTooLarge
		}
		body = b
	}
	if target.Reply != "" {
		return g.commandReply(w, r, reqID, s, rt, params, topic, body)
	}
	if err := g.o.Publisher.Publish(r.Context(), topic, body, target.QoS, false); err != nil {
		g.o.Logger.Warn("command publish failed", "topic", topic, "err", err.Error(), "request_id", reqID)
		g.problem(w, r, reqID, http.StatusBadGateway, "upstream-mqtt", "Bad gateway", "the command could not be published", "")
		return http.StatusBadGateway
	}
	return writeAccepted(w, topic, target.QoS)
}

func writeAccepted(w http.ResponseWriter, topic string, qos byte) int {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(map[string]any{"published": topic, "qos": qos})
	return http.StatusAccepted
}

// routeMetrics returns the cached metrics handle of a route. Routes are
// replaced with every snapshot; handles of old routes are dropped when the
// cache outgrows twice the live routes (cheap, and bounded).
func (g *Gateway) routeMetrics(rt *policy.Route) *telemetry.RouteMetrics {
	if m, ok := g.metrics.Load(rt); ok {
		return m.(*telemetry.RouteMetrics)
	}
	m := g.o.Metrics.Route("http", rt.API, rt.Version, rt.OperationID)
	if g.metricsN.Add(1) > 4096 {
		g.metrics.Clear()
		g.metricsN.Store(0)
	}
	g.metrics.Store(rt, m)
	return m
}

type reqInfoKey struct{}

// reqInfo travels with the request through the proxy for error handling.
type reqInfo struct {
	route *policy.Route
	pool  *pool
}

// ServeHTTP implements http.Handler.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	reqID := r.Header.Get("X-Request-Id")
	if !validRequestID(reqID) {
		reqID = newRequestID()
	}
	r.Header.Set("X-Request-Id", reqID)
	w.Header().Set("X-Request-Id", reqID)
	s := g.o.Engine.Snapshot()
	var pbuf [policy.MaxParams]policy.Param
	rt, params := s.MatchHTTP(r.Method, r.URL.Path, pbuf[:0])
	clientIP, _, _ := net.SplitHostPort(r.RemoteAddr)
	if rt == nil {
		if g.o.Usage != nil {
			g.o.Usage.Shadow("http", r.Method, r.URL.Path, callerHint(r), start)
		}
		g.deny(w, r, reqID, &policy.Decision{Status: policy.NotFound, Reason: policy.ReasonNoRoute, Detail: "no published API declares " + r.Method + " " + r.URL.Path}, start)
		return
	}
	req := policy.Request{
		Protocol: policy.HTTP, Action: r.Method, Path: r.URL.Path, Route: rt, Params: params,
		Query: r.URL.Query(), Header: r.Header, ContentType: r.Header.Get("Content-Type"), ClientIP: clientIP, Now: start,
	}
	req.Credentials.APIKey = r.Header.Get(rt.APIKeyHeader())
	if auth := r.Header.Get("Authorization"); len(auth) > 7 && strings.EqualFold(auth[:7], "Bearer ") {
		req.Credentials.Bearer = strings.TrimSpace(auth[7:])
	}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		req.Credentials.PeerCert = r.TLS.PeerCertificates[0]
	}
	if rt.Validator != nil && r.Body != nil && r.Body != http.NoBody {
		limit := rt.Validator.MaxBodyBytes()
		body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
		if err != nil {
			g.deny(w, r, reqID, &policy.Decision{Route: rt, Status: policy.Invalid, Reason: policy.ReasonInvalid, Detail: "the request body could not be read", Pointer: "/body"}, start)
			return
		}
		if int64(len(body)) > limit {
			g.deny(w, r, reqID, &policy.Decision{Route: rt, Status: policy.TooLarge, Reason: policy.ReasonInvalid, Detail: "the request body exceeds the operation's limit", Pointer: "/body"}, start)
			return
		}
		req.Body = body
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
	}
	d := g.o.Engine.Decide(r.Context(), s, &req)
	if g.o.Devices != nil {
		g.observe(s, &req, &d, r)
	}
	if d.HasRateLimit {
		setRateLimitHeaders(w.Header(), &d.RateLimit)
	}
	if !d.Allowed() {
		g.deny(w, r, reqID, &d, start)
		return
	}
	if g.o.Usage != nil {
		g.o.Usage.Use(rt.Tenant, rt.VersionID, d.Principal.Subject, d.Principal.Model, d.Principal.Firmware, start)
	}
	if rt.DeprecationHeader != "" {
		h := w.Header()
		h.Set("Deprecation", rt.DeprecationHeader)
		if rt.SunsetHeader != "" {
			h.Set("Sunset", rt.SunsetHeader)
		}
		if rt.Successor != "" {
			h.Set("Link", `<`+rt.Successor+`>; rel="successor-version"`)
		}
	}
	if rt.Command != nil {
		status := g.command(w, r, reqID, s, rt, params, req.Body)
		g.record(rt, status, start, r, d.Principal)
		return
	}
	p, err := g.pools.get(rt.Upstream)
	if err != nil || len(rt.Upstream) == 0 {
		g.problem(w, r, reqID, http.StatusBadGateway, "no-upstream", "Bad gateway", "this API version has no upstream", "")
		g.record(rt, http.StatusBadGateway, start, r, d.Principal)
		return
	}
	// Identity headers for the upstream: drop anything the caller sent
	// under our prefix, then state who was authenticated.
	for k := range r.Header {
		if strings.HasPrefix(k, "X-Fleetgate-") {
			r.Header.Del(k)
		}
	}
	r.Header.Set("X-Fleetgate-Subject", d.Principal.Subject)
	r.Header.Del("Authorization")
	r.Header.Del(rt.APIKeyHeader())
	if p.lean && leanEligible(r) {
		status := g.proxyLean(w, r, reqID, rt, p, req.Body, clientIP)
		g.record(rt, status, start, r, d.Principal)
		return
	}
	// One context value carries what the balancer and the error handler
	// need. The upstream's answer is bounded by the transport's
	// ResponseHeaderTimeout, not by a per-request timer: a timer per request
	// costs more CPU than the whole policy decision.
	info := &reqInfo{route: rt, pool: p}
	sw := &statusWriter{ResponseWriter: w}
	g.proxy.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), reqInfoKey{}, info)))
	g.record(rt, sw.code(), start, r, d.Principal)
}

func (g *Gateway) record(rt *policy.Route, status int, start time.Time, r *http.Request, p *policy.Principal) {
	if g.o.Metrics != nil {
		g.routeMetrics(rt).Observe(status, time.Since(start))
	}
	if g.o.AccessLog {
		sub := ""
		if p != nil {
			sub = p.Subject
		}
		g.o.Logger.Info("access", "method", r.Method, "path", r.URL.Path, "status", status, "api", rt.API, "version", rt.Version,
			"operation", rt.OperationID, "subject", sub, "request_id", r.Header.Get("X-Request-Id"), "duration_us", time.Since(start).Microseconds())
	}
}

// statusOf maps a decision to an HTTP status and problem type.
func statusOf(d *policy.Decision) (int, string, string) {
	switch d.Status {
	case policy.Unauthenticated:
		return http.StatusUnauthorized, "unauthenticated/" + d.Reason, "Unauthenticated"
	case policy.Forbidden:
		return http.StatusForbidden, "forbidden/" + d.Reason, "Forbidden"
	case policy.NotFound:
		return http.StatusNotFound, "not-found", "Not found"
	case policy.Gone:
		return http.StatusGone, "gone/version-retired", "Gone"
	case policy.Blocked:
		return http.StatusForbidden, "forbidden/version-blocked", "Forbidden"
	case policy.RateLimited:
		return http.StatusTooManyRequests, "rate-limited", "Too many requests"
	case policy.Invalid:
		return http.StatusBadRequest, "invalid-request", "Invalid request"
	case policy.TooLarge:
		return http.StatusRequestEntityTooLarge, "too-large", "Request body too large"
	}
	return http.StatusInternalServerError, "internal", "Internal error"
}

func (g *Gateway) deny(w http.ResponseWriter, r *http.Request, reqID string, d *policy.Decision, start time.Time) {
	status, typ, title := statusOf(d)
	if d.WWWAuthenticate != "" && status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", d.WWWAuthenticate)
	}
	if d.Status == policy.Gone && d.Route != nil && d.Route.Successor != "" {
		w.Header().Set("Link", `<`+d.Route.Successor+`>; rel="successor-version"`)
	}
	if g.o.Metrics != nil {
		g.o.Metrics.Denial("http", d.Reason)
	}
	g.problem(w, r, reqID, status, typ, title, d.Detail, d.Pointer)
	if d.Route != nil {
		g.record(d.Route, status, start, r, d.Principal)
	} else if g.o.Metrics != nil {
		g.o.Metrics.Request("http", "", "", "", status, time.Since(start))
	}
}

type problemBody struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail,omitempty"`
	Instance  string `json:"instance,omitempty"`
	RequestID string `json:"request_id"`
	Pointer   string `json:"pointer,omitempty"`
}

func (g *Gateway) problem(w http.ResponseWriter, r *http.Request, reqID string, status int, typ, title, detail, pointer string) {
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(problemBody{Type: ProblemBase + typ, Title: title, Status: status, Detail: detail,
		Instance: r.URL.Path, RequestID: reqID, Pointer: pointer})
}

func (g *Gateway) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	info, _ := r.Context().Value(reqInfoKey{}).(*reqInfo)
	var rt *policy.Route
	if info != nil {
		rt = info.route
	}
	g.answerUpstreamError(w, r, rt, err)
}

// answerUpstreamError answers a failed upstream exchange (502, 503 or 504)
// and returns the status; 0 when the client went away and nothing was sent.
func (g *Gateway) answerUpstreamError(w http.ResponseWriter, r *http.Request, rt *policy.Route, err error) int {
	status, kind, detail := http.StatusBadGateway, "connect", "the upstream could not be reached"
	switch {
	case errors.Is(err, errNoHealthy):
		status, kind, detail = http.StatusServiceUnavailable, "unavailable", "no healthy upstream"
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		status, kind, detail = http.StatusGatewayTimeout, "timeout", "the upstream did not answer in time"
	case errors.Is(err, context.Canceled):
		return 0 // the client went away
	}
	if rt != nil && g.o.Metrics != nil {
		g.o.Metrics.UpstreamError(rt.API, rt.Version, kind)
	}
	g.o.Logger.Warn("upstream error", "kind", kind, "err", err.Error(), "request_id", r.Header.Get("X-Request-Id"))
	g.problem(w, r, r.Header.Get("X-Request-Id"), status, "upstream-"+kind, http.StatusText(status), detail, "")
	return status
}

// maxCheckedResponse bounds the responses read for log-only validation;
// larger ones are passed through unchecked.
const maxCheckedResponse = 1 << 20

// checkResponse validates upstream responses against the operation's
// declared responses when the version asks for it ("log" mode): mismatches
// are logged and counted, never changed or blocked, so a contract drift is
// seen before it is enforced.
func (g *Gateway) checkResponse(res *http.Response) error {
	info, _ := res.Request.Context().Value(reqInfoKey{}).(*reqInfo)
	if info == nil {
		return nil
	}
	return g.checkRouteResponse(info.route, res)
}

// checkRouteResponse is checkResponse for a known route. A body larger
// than maxCheckedResponse is relayed whole, unchecked.
func (g *Gateway) checkRouteResponse(rt *policy.Route, res *http.Response) error {
	if rt.ValidateResponses != "log" || rt.Validator == nil || res.ContentLength > maxCheckedResponse {
		return nil
	}
	orig := res.Body
	body, err := io.ReadAll(io.LimitReader(orig, maxCheckedResponse+1))
	if err != nil {
		return err
	}
	if len(body) > maxCheckedResponse {
		res.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(body), orig), orig}
		return nil
	}
	res.Body = struct {
		io.Reader
		io.Closer
	}{bytes.NewReader(body), orig}
	if verr := rt.Validator.ValidateResponse(res.StatusCode, res.Header.Get("Content-Type"), body); verr != nil {
		g.o.Logger.Warn("response does not match the API description", "api", rt.API, "version", rt.Version,
			"operation", rt.OperationID, "status", res.StatusCode, "pointer", verr.Pointer, "detail", verr.Detail,
			"request_id", res.Request.Header.Get("X-Request-Id"))
		if g.o.Metrics != nil {
			g.o.Metrics.Denial("http", "response-mismatch")
		}
	}
	return nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func setRateLimitHeaders(h http.Header, v *policy.RateLimitVerdict) {
	pol, rl, retry := ratelimit.Headers(v.Policy, v.Limit, v.Result)
	h.Set("RateLimit-Policy", pol)
	h.Set("RateLimit", rl)
	if retry != "" {
		h.Set("Retry-After", retry)
	}
}

// callerHint names the caller of shadow traffic without verifying
// anything: the key prefix or "anonymous". Never the secret.
func callerHint(r *http.Request) string {
	if k := r.Header.Get("X-API-Key"); len(k) >= 12 {
		return "api_key:" + k[:12]
	}
	if r.Header.Get("Authorization") != "" {
		return "bearer"
	}
	return "anonymous"
}

func validRequestID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// Request ids: a random per-process prefix and a counter. Unique and
// unguessable enough to correlate logs, without a getrandom system call per
// request.
var (
	reqIDPrefix = func() string {
		var b [6]byte
		_, _ = rand.Read(b[:])
		return hex.EncodeToString(b[:])
	}()
	reqIDSeq atomic.Uint64
)

func newRequestID() string {
	var buf [32]byte
	b := append(buf[:0], reqIDPrefix...)
	b = append(b, '-')
	b = strconv.AppendUint(b, reqIDSeq.Add(1), 36)
	return string(b)
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(c int) {
	if w.status == 0 {
		w.status = c
	}
	w.ResponseWriter.WriteHeader(c)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// Flush lets the proxy stream.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap exposes the underlying writer to http.ResponseController.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
