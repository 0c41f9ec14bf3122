package httpgw

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Passive health: a target that fails failThreshold consecutive times is
// skipped for cooldown; one success resets it.
const (
	failThreshold = 3
	cooldown      = 10 * time.Second
	maxAttempts   = 3
)

var errNoHealthy = errors.New("no healthy upstream target")

type target struct {
	url       *url.URL
	addr      string // host:port to dial (lean core)
	basePath  string // the target URL's path, prefixed to request paths
	fails     atomic.Int32
	downUntil atomic.Int64 // unix nanoseconds
	idle      idleConns    // pooled keep-alive connections (lean core)
}

func (t *target) healthy(now int64) bool { return t.downUntil.Load() <= now }

func (t *target) failed(now time.Time) {
	if t.fails.Add(1) >= failThreshold {
		t.downUntil.Store(now.Add(cooldown).UnixNano())
		t.fails.Store(0)
	}
}

func (t *target) succeeded() {
	if t.fails.Load() != 0 {
		t.fails.Store(0)
	}
}

// pool balances over the targets of one upstream, round robin, skipping
// targets marked down. When every target is down it still tries the next
// one, so an upstream that recovers is found without waiting out the
// cooldown of every target.
type pool struct {
	targets []*target
	next    atomic.Uint64
	// lean: every target is plain HTTP, so the lean core (h1.go) relays
	// requests; otherwise ReverseProxy and http.Transport do.
	lean bool
}

func (p *pool) pick(exclude *target) *target {
	n := len(p.targets)
	if n == 0 {
		return nil
	}
	now := time.Now().UnixNano()
	start := p.next.Add(1)
	for i := 0; i < n; i++ {
		t := p.targets[(start+uint64(i))%uint64(n)]
		if t != exclude && t.healthy(now) {
			return t
		}
	}
	t := p.targets[start%uint64(n)]
	if t == exclude && n > 1 {
		t = p.targets[(start+1)%uint64(n)]
	}
	return t
}

// pools caches one pool per distinct target list across snapshots, so
// health state and connection reuse survive configuration changes.
type pools struct {
	mu sync.RWMutex
	m  map[string]*pool
}

func (ps *pools) get(targets []string) (*pool, error) {
	key := strings.Join(targets, "\x00")
	ps.mu.RLock()
	p := ps.m[key]
	ps.mu.RUnlock()
	if p != nil {
		return p, nil
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if p = ps.m[key]; p != nil {
		return p, nil
	}
	p = &pool{lean: true}
	for _, s := range targets {
		u, err := url.Parse(s)
		if err != nil {
			return nil, err
		}
		t := &target{url: u, addr: u.Host}
		if u.Port() == "" {
			port := "80"
			if u.Scheme == "https" {
				port = "443"
			}
			t.addr = net.JoinHostPort(u.Hostname(), port)
		}
		if u.Path != "" && u.Path != "/" {
			t.basePath = strings.TrimSuffix(u.Path, "/")
		}
		if u.Scheme != "http" {
			p.lean = false
		}
		p.targets = append(p.targets, t)
	}
	if ps.m == nil {
		ps.m = map[string]*pool{}
	}
	ps.m[key] = p
	return p, nil
}

// balancer is the proxy's RoundTripper: it picks the target per attempt and
// retries connection failures of idempotent requests without a body on
// another target. Responses, even 5xx, are never retried: the upstream may
// have acted.
type balancer struct {
	rt http.RoundTripper
}

func idempotent(r *http.Request) bool {
	return isIdempotentMethod(r.Method) && (r.Body == nil || r.Body == http.NoBody)
}

func (b *balancer) RoundTrip(req *http.Request) (*http.Response, error) {
	info, _ := req.Context().Value(reqInfoKey{}).(*reqInfo)
	if info == nil || info.pool == nil {
		return nil, errNoHealthy
	}
	p := info.pool
	var last *target
	var err error
	for attempt := 0; attempt < maxAttempts; attempt++ {
		t := p.pick(last)
		if t == nil {
			return nil, errNoHealthy
		}
		out := req
		if attempt > 0 {
			out = req.Clone(req.Context())
		}
		u := *out.URL
		u.Scheme, u.Host = t.url.Scheme, t.url.Host
		if t.url.Path != "" && t.url.Path != "/" {
			u.Path = strings.TrimSuffix(t.url.Path, "/") + u.Path
			u.RawPath = ""
		}
		out.URL = &u
		var resp *http.Response
		resp, err = b.rt.RoundTrip(out)
		if err == nil {
			t.succeeded()
			return resp, nil
		}
		if req.Context().Err() != nil {
			return nil, err
		}
		t.failed(time.Now())
		last = t
		if !idempotent(req) || !retryable(err) {
			return nil, err
		}
	}
	return nil, err
}

// retryable: the request never reached the upstream application (dial
// failure, reset before a response).
func retryable(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return errors.Is(err, context.DeadlineExceeded) == false && strings.Contains(err.Error(), "connection reset")
}

func newTransport(headerTimeout time.Duration) *http.Transport {
	if headerTimeout <= 0 {
		headerTimeout = 30 * time.Second
	}
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 nil, // never route upstream traffic through an environment proxy
		DialContext:           d.DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: headerTimeout,
		ExpectContinueTimeout: time.Second,
	}
}

// bufferPool recycles the proxy's 32 KiB copy buffers: without it every
// proxied response allocates one, and the garbage collector's work becomes
// a visible share of the gateway's CPU.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }
