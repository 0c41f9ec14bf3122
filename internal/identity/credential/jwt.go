package credential

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	// MaxTokenBytes bounds the size of a JWT accepted by Verify. Real
	// access tokens are well under 2 KiB; the cap stops oversized input
	// before any base64 or JSON work is spent on it.
	MaxTokenBytes = 8 << 10

	// DefaultClockSkew is the leeway applied to "exp" and "nbf" when
	// JWTConfig.ClockSkew is zero: devices and issuers rarely agree on the
	// time to the second (RFC 7519 §4.1.4 allows "some small leeway").
	DefaultClockSkew = 30 * time.Second

	// MaxClockSkew is the largest leeway accepted. More would silently
	// extend every token's lifetime by a meaningful amount.
	MaxClockSkew = 5 * time.Minute

	// minHMACSecret is RFC 7518 §3.2: "A key of the same size as the hash
	// output (for instance, 256 bits for "HS256") or larger MUST be used".
	minHMACSecret = 32

	// minRSABits is RFC 7518 §3.3: "A key of size 2048 bits or larger MUST
	// be used with these algorithms."
	minRSABits = 2048
)

// JWTConfig describes how an application's JWTs are verified. It comes from
// the gateway's config snapshot; the zero value of every optional field is
// the safe choice.
type JWTConfig struct {
	// Issuer is required and must equal the token's "iss" exactly.
	Issuer string
	// Audiences, when non-empty, requires "aud" to contain at least one of
	// them. An empty list disables the audience check.
	Audiences []string
	// JWKSURL is an https URL publishing the issuer's keys (RS256, ES256,
	// EdDSA, ...). Keys are cached, refreshed periodically and on an unknown
	// "kid" (rate-limited). Exactly one of JWKSURL and HMACSecret is set.
	JWKSURL string
	// HMACSecret selects HS256 with a shared secret of at least 32 bytes.
	HMACSecret []byte
	// Algorithms lists the accepted "alg" values. Empty means RS256, ES256
	// and EdDSA for JWKSURL, HS256 for HMACSecret. Symmetric and asymmetric
	// algorithms never mix (that mix is what algorithm confusion exploits),
	// and "none" is always refused.
	Algorithms []string
	// ClockSkew is the leeway for "exp" and "nbf": 0 means DefaultClockSkew,
	// the maximum is MaxClockSkew.
	ClockSkew time.Duration
	// AllowNoExp accepts tokens without "exp". By default such tokens are
	// refused (ReasonMissingExp): a token that never expires cannot be
	// contained once leaked.
	AllowNoExp bool
}

// Verifier verifies JWTs against one JWTConfig. It is safe for concurrent
// use. Its only background work is the JWKS refresh, which stops on Close or
// when the context given to NewVerifier is done.
type Verifier struct {
	issuer     string
	audiences  []string
	skew       time.Duration
	allowNoExp bool
	algs       []string
	hmacKey    []byte      // set in HMAC mode
	jwks       *jwksSource // set in JWKS mode
	parser     *jwt.Parser
	keyfunc    jwt.Keyfunc
	cancel     context.CancelFunc
}

// NewVerifier validates cfg and returns a Verifier. In JWKS mode it fetches
// the key set once (bounded by a 10 s timeout and a 1 MiB body limit) and
// starts a background refresh bound to ctx. A failed first fetch does not
// fail NewVerifier: a briefly unreachable issuer must not stop the gateway
// from applying a config snapshot. Tokens are then refused with
// ReasonUnknownKey until a refresh succeeds, and Health reports the failure.
//
// client is used for JWKS fetches only; nil means a fresh client on
// http.DefaultTransport. NewVerifier works on a copy that refuses redirects
// to other hosts, refuses any URL outside the configured origin, and has no
// cookie jar; the caller's client is not modified.
func NewVerifier(ctx context.Context, cfg JWTConfig, client *http.Client) (*Verifier, error) {
	return newVerifier(ctx, cfg, client, defaultJWKSTiming())
}

// newVerifier is NewVerifier with explicit JWKS timing, so that tests can
// observe periodic refreshes without waiting an hour.
func newVerifier(ctx context.Context, cfg JWTConfig, client *http.Client, timing jwksTiming) (*Verifier, error) {
	v := &Verifier{
		issuer:     cfg.Issuer,
		audiences:  slices.Clone(cfg.Audiences),
		skew:       cfg.ClockSkew,
		allowNoExp: cfg.AllowNoExp,
		// Decoding is strict so that a token has exactly one encoding: a
		// signature cannot be "re-encoded" into a different token string
		// that caches or replay filters would treat as new.
		parser: jwt.NewParser(jwt.WithoutClaimsValidation(), jwt.WithStrictDecoding()),
	}
	if err := v.configure(cfg); err != nil {
		return nil, err
	}
	v.keyfunc = v.keyFor
	if v.hmacKey != nil {
		return v, nil
	}
	u, err := parseJWKSURL(cfg.JWKSURL)
	if err != nil {
		return nil, err
	}
	ctx, v.cancel = context.WithCancel(ctx)
	if v.jwks, err = newJWKSSource(ctx, u, client, timing); err != nil {
		v.cancel()
		return nil, err
	}
	return v, nil
}

// configure checks every field of cfg and fills in defaults.
func (v *Verifier) configure(cfg JWTConfig) error {
	if cfg.Issuer == "" {
		return cfgErr("Issuer", "is required")
	}
	for i, a := range cfg.Audiences {
		if a == "" {
			return cfgErr(fmt.Sprintf("Audiences[%d]", i), "is empty")
		}
	}
	switch {
	case cfg.JWKSURL != "" && len(cfg.HMACSecret) > 0:
		return cfgErr("HMACSecret", "cannot be combined with JWKSURL")
	case cfg.JWKSURL == "" && len(cfg.HMACSecret) == 0:
		return cfgErr("JWKSURL", "one of JWKSURL and HMACSecret is required")
	case len(cfg.HMACSecret) > 0 && len(cfg.HMACSecret) < minHMACSecret:
		return cfgErr("HMACSecret", "is %d bytes, at least %d are required (RFC 7518 §3.2)", len(cfg.HMACSecret), minHMACSecret)
	}
	symmetric := len(cfg.HMACSecret) > 0
	if symmetric {
		v.hmacKey = slices.Clone(cfg.HMACSecret)
	}

	v.algs = slices.Clone(cfg.Algorithms)
	if len(v.algs) == 0 {
		v.algs = []string{"RS256", "ES256", "EdDSA"}
		if symmetric {
			v.algs = []string{"HS256"}
		}
	}
	for i, alg := range v.algs {
		field := fmt.Sprintf("Algorithms[%d]", i)
		isHMAC, known := algFamily(alg)
		switch {
		case strings.EqualFold(alg, "none"):
			return cfgErr(field, `"none" is never allowed`)
		case !known:
			return cfgErr(field, "unsupported algorithm %q", alg)
		case isHMAC && !symmetric:
			return cfgErr(field, "%s needs HMACSecret; it is refused with JWKSURL to prevent algorithm confusion", alg)
		case !isHMAC && symmetric:
			return cfgErr(field, "%s needs JWKSURL; only HMAC algorithms go with HMACSecret", alg)
		}
	}

	switch {
	case v.skew < 0:
		return cfgErr("ClockSkew", "is negative")
	case v.skew > MaxClockSkew:
		return cfgErr("ClockSkew", "%s exceeds the maximum of %s", v.skew, MaxClockSkew)
	case v.skew == 0:
		v.skew = DefaultClockSkew
	}
	return nil
}

// parseJWKSURL accepts only absolute https URLs without credentials: keys
// fetched over plain http could be swapped by anyone on the path, and
// userinfo would end up in logs.
func parseJWKSURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return nil, cfgErr("JWKSURL", "%v", err)
	case u.Scheme != "https":
		return nil, cfgErr("JWKSURL", "scheme must be https")
	case u.Host == "":
		return nil, cfgErr("JWKSURL", "host is missing")
	case u.User != nil:
		return nil, cfgErr("JWKSURL", "must not contain credentials")
	case u.Fragment != "":
		return nil, cfgErr("JWKSURL", "must not contain a fragment")
	}
	return u, nil
}

// Verify checks token's size, structure, algorithm, signature and claims at
// time now (taken as a parameter so that the caller's request time is used
// and tests need no clock). On success it returns the claims; otherwise the
// error is always a *Error and the claims are nil.
//
// In JWKS mode a token whose "kid" is not cached may trigger one fetch of the
// key set (at most one such fetch per 30 s across all callers); Verify
// otherwise does no I/O.
func (v *Verifier) Verify(token string, now time.Time) (Claims, error) {
	if len(token) > MaxTokenBytes {
		return nil, verr(ReasonMalformed, fmt.Sprintf("token is %d bytes, the limit is %d", len(token), MaxTokenBytes))
	}
	mc := jwt.MapClaims{}
	parsed, err := v.parser.ParseWithClaims(token, mc, v.keyfunc)
	if err != nil {
		return nil, classify(parsed, err)
	}
	c := Claims(mc)
	if e := v.checkClaims(c, now); e != nil {
		return nil, e
	}
	return c, nil
}

// Close stops the background JWKS refresh and cancels a fetch in flight.
// Cached keys stay usable; Close is idempotent.
func (v *Verifier) Close() {
	if v.cancel != nil {
		v.cancel()
	}
}

// Health reports whether the most recent JWKS fetch failed, so that the
// gateway can surface an unreachable or misbehaving issuer in its readiness
// and metrics. It returns nil in HMAC mode and after a successful fetch.
// Keys from the last successful fetch remain in use while fetches fail.
func (v *Verifier) Health() error {
	if v.jwks == nil {
		return nil
	}
	return v.jwks.health()
}

// keyFor is the jwt.Keyfunc. The parser calls it after decoding the header
// and before checking the signature, which makes it the one place where the
// algorithm is pinned: the token's "alg" is attacker-chosen, so it must be
// in the configured list and, in JWKS mode, must fit the type of the key it
// selects. HMAC-with-a-public-key and "none" both fail here.
func (v *Verifier) keyFor(t *jwt.Token) (any, error) {
	alg, _ := t.Header["alg"].(string) // the parser refuses tokens without a string alg
	if !slices.Contains(v.algs, alg) {
		return nil, verr(ReasonAlgorithmNotAllowed, fmt.Sprintf("alg %.32q is not allowed", alg))
	}
	// [RFC 7515 §4.1.11] Recipients MUST reject tokens whose "crit" lists
	// extensions they do not understand; this verifier understands none.
	if _, ok := t.Header["crit"]; ok {
		return nil, verr(ReasonMalformed, `unsupported "crit" header`)
	}
	if v.hmacKey != nil {
		return v.hmacKey, nil
	}
	return v.jwks.key(t, alg)
}

// classify maps a jwt parse error to a *Error. Errors raised by keyFor are
// already *Error and pass through unchanged.
func classify(t *jwt.Token, err error) *Error {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, jwt.ErrTokenMalformed):
		return verr(ReasonMalformed, "")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return verr(ReasonBadSignature, "")
	}
	// ErrTokenUnverifiable from the parser itself: "alg" is missing, not a
	// string, or names an algorithm the jwt library does not implement.
	if t != nil {
		if alg, ok := t.Header["alg"].(string); ok && jwt.GetSigningMethod(alg) == nil {
			return verr(ReasonAlgorithmNotAllowed, fmt.Sprintf("alg %.32q is not supported", alg))
		}
	}
	return verr(ReasonMalformed, `missing or invalid "alg"`)
}

// checkClaims enforces the registered claims of RFC 7519 §4.1 once the
// signature is known to be good. Mistyped registered claims are malformed
// rather than ignored, so that e.g. "exp":"never" cannot pass for "no exp".
func (v *Verifier) checkClaims(c Claims, now time.Time) *Error {
	iss, ok := c["iss"].(string)
	if !ok || iss != v.issuer {
		return verr(ReasonWrongIssuer, "")
	}
	if len(v.audiences) > 0 {
		aud, e := audience(c["aud"])
		if e != nil {
			return e
		}
		if !slices.ContainsFunc(aud, func(a string) bool { return slices.Contains(v.audiences, a) }) {
			return verr(ReasonWrongAudience, "")
		}
	}
	exp, hasExp, e := numericDate(c, "exp")
	if e != nil {
		return e
	}
	switch {
	case !hasExp && !v.allowNoExp:
		return verr(ReasonMissingExp, "")
	// [RFC 7519 §4.1.4] The current time MUST be before "exp".
	case hasExp && !now.Before(exp.Add(v.skew)):
		return verr(ReasonExpired, "")
	}
	nbf, hasNbf, e := numericDate(c, "nbf")
	if e != nil {
		return e
	}
	// [RFC 7519 §4.1.5] The current time MUST be on or after "nbf".
	if hasNbf && now.Add(v.skew).Before(nbf) {
		return verr(ReasonNotYetValid, "")
	}
	return nil
}

// audience reads "aud", which RFC 7519 §4.1.3 allows as a string or an array
// of strings.
func audience(raw any) ([]string, *Error) {
	switch a := raw.(type) {
	case nil:
		return nil, nil
	case string:
		return []string{a}, nil
	case []any:
		out := make([]string, 0, len(a))
		for _, x := range a {
			s, ok := x.(string)
			if !ok {
				return nil, verr(ReasonMalformed, `"aud" contains a non-string`)
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, verr(ReasonMalformed, `"aud" is neither a string nor an array`)
}

// numericDate reads a NumericDate claim (RFC 7519 §2: seconds since the
// epoch, possibly fractional). It does not reuse jwt.MapClaims, which treats
// 0 as absent: with AllowNoExp, "exp":0 must mean 1970, not "never".
func numericDate(c Claims, name string) (t time.Time, present bool, e *Error) {
	raw, ok := c[name]
	if !ok {
		return time.Time{}, false, nil
	}
	f, ok := raw.(float64)
	if !ok {
		return time.Time{}, false, verr(ReasonMalformed, fmt.Sprintf("%q is not a number", name))
	}
	// Clamp to ±10^12 s (about ±31,000 years) so the int64 conversion below
	// cannot overflow; encoding/json never yields NaN or Inf.
	f = math.Max(-1e12, math.Min(1e12, f))
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, nil
}

// algFamily tells whether alg is implemented here and whether it is HMAC.
func algFamily(alg string) (isHMAC, known bool) {
	switch alg {
	case "HS256", "HS384", "HS512":
		return true, true
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA":
		return false, true
	}
	return false, false
}

// keyFits tells whether a key published in the JWKS may verify alg. The jwt
// library checks the Go type of the key, but not the curve or the RSA size,
// and an "oct" JWK decodes to []byte, which HMAC methods would accept. This
// ties each asymmetric algorithm to exactly one kind of public key.
func keyFits(alg string, key any) bool {
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		k, ok := key.(*rsa.PublicKey)
		return ok && k.N.BitLen() >= minRSABits
	case "ES256":
		k, ok := key.(*ecdsa.PublicKey)
		return ok && k.Curve == elliptic.P256()
	case "ES384":
		k, ok := key.(*ecdsa.PublicKey)
		return ok && k.Curve == elliptic.P384()
	case "ES512":
		k, ok := key.(*ecdsa.PublicKey)
		return ok && k.Curve == elliptic.P521()
	case "EdDSA":
		k, ok := key.(ed25519.PublicKey)
		return ok && len(k) == ed25519.PublicKeySize
	}
	return false
}
