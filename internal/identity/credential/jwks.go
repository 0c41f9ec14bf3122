package credential

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

const (
	// maxJWKSBytes caps a JWKS response. Real key sets are a few KiB; the
	// cap keeps a broken or hostile endpoint from exhausting memory.
	maxJWKSBytes = 1 << 20
	// maxJWKSRedirects bounds same-host redirects (e.g. /jwks -> /jwks/).
	maxJWKSRedirects = 3
)

// jwksTiming holds the JWKS refresh schedule.
type jwksTiming struct {
	refreshEvery  time.Duration // periodic refresh, picks up rotations and revocations
	minRefreshGap time.Duration // at most one unknown-kid refresh per gap
	fetchTimeout  time.Duration // bound on one fetch, connection to last byte
}

// defaultJWKSTiming refreshes hourly, and on an unknown kid at most every
// 30 s: often enough that a rotation is picked up on the first token signed
// with the new key, rarely enough that a stream of tokens with random kids
// cannot turn the gateway into a load generator against the issuer.
func defaultJWKSTiming() jwksTiming {
	return jwksTiming{refreshEvery: time.Hour, minRefreshGap: 30 * time.Second, fetchTimeout: 10 * time.Second}
}

// jwksSource is the key cache of one Verifier in JWKS mode. Fetching,
// parsing and key selection are done by MicahParks/jwkset and keyfunc; this
// type adds the transport limits, the non-blocking rate limit and health.
type jwksSource struct {
	cache   *trackedStorage // the keys of the last successful fetch
	store   jwkset.Storage  // cache plus refresh-on-unknown-kid
	limiter *rate.Limiter
	keyfunc jwt.Keyfunc
	ctx     context.Context
}

// refreshProbeKid is looked up to force a rate-limited refresh for tokens
// without "kid", which keyfunc never refreshes for. Should an issuer ever
// publish a key with this kid, the lookup merely finds it and skips the
// refresh; the key is never used because of this lookup.
const refreshProbeKid = "fleetgate.credential/refresh-probe"

func newJWKSSource(ctx context.Context, u *url.URL, client *http.Client, timing jwksTiming) (*jwksSource, error) {
	rawURL := u.String()
	s := &jwksSource{
		cache:   &trackedStorage{Storage: jwkset.NewMemoryStorage()},
		limiter: rate.NewLimiter(rate.Every(timing.minRefreshGap), 1),
		ctx:     ctx,
	}
	// The first fetch happens inside NewStorageFromHTTP, synchronously and
	// bounded by HTTPTimeout; a failure is recorded, not returned.
	remote, err := jwkset.NewStorageFromHTTP(rawURL, jwkset.HTTPClientStorageOptions{
		Client:                    hardenClient(client, u, timing.fetchTimeout),
		Ctx:                       ctx,
		HTTPTimeout:               timing.fetchTimeout,
		NoErrorReturnFirstHTTPReq: true,
		RefreshErrorHandler:       s.cache.fetchFailed,
		RefreshInterval:           timing.refreshEvery,
		Storage:                   s.cache,
	})
	if err != nil {
		return nil, cfgErr("JWKSURL", "%v", err)
	}
	s.store, err = jwkset.NewHTTPClient(jwkset.HTTPClientOptions{
		HTTPURLs: map[string]jwkset.Storage{rawURL: remote},
		// jwkset waits on the limiter for up to RateLimitWaitMax and then
		// runs the refresh under the same deadline, so this is also the
		// bound on an unknown-kid fetch. key() makes sure the wait itself
		// is never taken (see there).
		RateLimitWaitMax:  timing.fetchTimeout,
		RefreshUnknownKID: s.limiter,
	})
	if err != nil {
		return nil, cfgErr("JWKSURL", "%v", err)
	}
	kf, err := keyfunc.New(keyfunc.Options{
		Ctx:     ctx,
		Storage: s.store,
		// [RFC 7517 §4.2] "enc" keys are for encryption, not signatures.
		// Most issuers omit "use", so absent is accepted.
		UseWhitelist: []jwkset.USE{jwkset.UseSig, ""},
	})
	if err != nil {
		return nil, cfgErr("JWKSURL", "%v", err)
	}
	s.keyfunc = kf.KeyfuncCtx(ctx)
	return s, nil
}

// key selects the verification key for a token whose alg is already known
// to be allowed.
func (s *jwksSource) key(t *jwt.Token, alg string) (any, error) {
	if raw, hasKid := t.Header["kid"]; hasKid {
		kid, ok := raw.(string)
		if !ok {
			return nil, verr(ReasonMalformed, `"kid" is not a string`)
		}
		// An unknown kid makes jwkset wait on the limiter, and that wait can
		// last up to fetchTimeout when the next token is close. Peeking
		// first turns "refresh not allowed yet" into an immediate refusal,
		// so a request never blocks behind the rate limit. (A concurrent
		// caller may take the token between peek and wait; jwkset then sees
		// a full gap ahead, longer than its wait limit, and fails at once.
		// That holds while minRefreshGap > fetchTimeout, as by default.)
		if _, err := s.cache.KeyRead(s.ctx, kid); err != nil && s.limiter.Tokens() < 1 {
			return nil, verr(ReasonUnknownKey, "kid not in the cached JWKS; refresh is rate-limited")
		}
	}
	got, err := s.keyfunc(t)
	if err != nil {
		// Not found after a refresh, refresh refused, "use":"enc", or a
		// JWK "alg" that differs from the token's: in every case the issuer
		// publishes no key for this (kid, alg).
		return nil, verr(ReasonUnknownKey, "no matching key in the JWKS")
	}
	if set, ok := got.(jwt.VerificationKeySet); ok {
		// No kid: keyfunc offers every published key. Keep those that fit.
		fit := fitting(set, alg)
		if len(fit.Keys) == 0 && s.limiter.Tokens() >= 1 {
			// Nothing fits, perhaps because the first fetch failed or the
			// issuer rotated: refresh as an unknown kid would, and retry.
			_, _ = s.store.KeyRead(s.ctx, refreshProbeKid)
			if got, err := s.keyfunc(t); err == nil {
				set, _ := got.(jwt.VerificationKeySet)
				fit = fitting(set, alg)
			}
		}
		if len(fit.Keys) == 0 {
			return nil, verr(ReasonUnknownKey, "no key in the JWKS fits alg "+alg)
		}
		return fit, nil
	}
	if !keyFits(alg, got) {
		return nil, verr(ReasonAlgorithmNotAllowed, "alg "+alg+" does not match the type of the key named by kid")
	}
	return got, nil
}

// fitting returns the keys of set that may verify alg.
func fitting(set jwt.VerificationKeySet, alg string) jwt.VerificationKeySet {
	var fit jwt.VerificationKeySet
	for _, k := range set.Keys {
		if keyFits(alg, k) {
			fit.Keys = append(fit.Keys, k)
		}
	}
	return fit
}

func (s *jwksSource) health() error {
	if st := s.cache.state.Load(); st != nil && st.err != nil {
		return st.err
	}
	return nil
}

// trackedStorage is the in-memory key store, instrumented to record the
// outcome of each fetch: jwkset calls KeyReplaceAll only after a fetch was
// fully parsed, and RefreshErrorHandler after every failed one.
type trackedStorage struct {
	jwkset.Storage
	state atomic.Pointer[fetchState]
}

type fetchState struct{ err error }

func (s *trackedStorage) KeyReplaceAll(ctx context.Context, given []jwkset.JWK) error {
	err := s.Storage.KeyReplaceAll(ctx, given)
	if err == nil {
		s.state.Store(&fetchState{})
	}
	return err
}

func (s *trackedStorage) fetchFailed(_ context.Context, err error) {
	s.state.Store(&fetchState{err: fmt.Errorf("credential: JWKS fetch failed: %w", err)})
}

// hardenClient returns a copy of client (or of a default client) that can
// only talk to the JWKS origin. Redirects are checked twice: CheckRedirect
// refuses them politely, and the transport refuses any request outside the
// origin whatever produced it. Responses are capped at maxJWKSBytes.
func hardenClient(client *http.Client, u *url.URL, timeout time.Duration) *http.Client {
	c := &http.Client{}
	if client != nil {
		*c = *client
	}
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	want := origin(u)
	c.Transport = &jwksTransport{base: base, origin: want}
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= maxJWKSRedirects {
			return fmt.Errorf("JWKS: more than %d redirects", maxJWKSRedirects)
		}
		if origin(req.URL) != want {
			return fmt.Errorf("JWKS: redirect to another origin %q refused", req.URL.Host)
		}
		return nil
	}
	c.Jar = nil // an issuer's cookies have no business in a key fetch
	if c.Timeout == 0 || c.Timeout > timeout {
		c.Timeout = timeout
	}
	return c
}

// origin is scheme://host:port with defaults made explicit and the host
// lower-cased, so that equal origins compare equal as strings.
func origin(u *url.URL) string {
	scheme, port := strings.ToLower(u.Scheme), u.Port()
	if port == "" {
		switch scheme {
		case "https":
			port = "443"
		case "http":
			port = "80"
		}
	}
	return scheme + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// jwksTransport enforces the origin and the size limit on every request.
type jwksTransport struct {
	base   http.RoundTripper
	origin string
}

func (t *jwksTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if got := origin(req.URL); got != t.origin {
		return nil, fmt.Errorf("JWKS: request to %q refused, only %q is allowed", got, t.origin)
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.ContentLength > maxJWKSBytes {
		resp.Body.Close()
		return nil, tooLarge()
	}
	resp.Body = &cappedBody{rc: resp.Body, left: maxJWKSBytes}
	return resp, nil
}

func tooLarge() error { return fmt.Errorf("JWKS: response exceeds %d bytes", maxJWKSBytes) }

// cappedBody fails a read past the limit instead of truncating silently:
// a truncated key set could otherwise parse as a smaller valid one.
type cappedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// Probe one byte to tell "exactly at the limit" from "over it".
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			return 0, tooLarge()
		}
		return 0, err // io.EOF when the body ended exactly at the limit
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *cappedBody) Close() error { return b.rc.Close() }
