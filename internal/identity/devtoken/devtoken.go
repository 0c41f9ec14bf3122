// Package devtoken mints and verifies device tokens: short-lived JWTs
// (RFC 7519) that the control plane signs with a per-tenant Ed25519 key
// (RFC 8037 "EdDSA"), for devices that cannot do TLS client
// authentication.
//
// It is deliberately narrower than identity/credential, which verifies
// third-party JWTs: Fleetgate is both issuer and verifier here, so one
// algorithm, one header shape and integer NumericDates are all that is
// accepted, and anything else is malformed. The package is pure logic: no
// storage, no clock (now is a parameter), no I/O.
package devtoken

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

const (
	// Issuer is the "iss" of every device token.
	Issuer = "fleetgate"
	// Alg is the only signature algorithm (RFC 8037 §3.1).
	Alg = "EdDSA"
	// DefaultTTL and MaxTTL bound a token's lifetime: short enough that a
	// leaked token is worth little, long enough for a device that cannot
	// refresh every few minutes. Revocation ends a token earlier.
	DefaultTTL = time.Hour
	MaxTTL     = 24 * time.Hour
	// ClockSkew is the leeway on "exp" and "nbf": devices without an RTC
	// often run a little off (RFC 7519 §4.1.4 "some small leeway").
	ClockSkew = 30 * time.Second
	// MaxTokenBytes bounds what Parse looks at; real tokens are ~350 bytes.
	MaxTokenBytes = 2048
)

// Stable reasons of *Error, for logs and metrics. Never renamed.
const (
	ReasonMalformed    = "malformed"
	ReasonUnknownKey   = "unknown_key"
	ReasonBadSignature = "bad_signature"
	ReasonExpired      = "expired"
	ReasonNotYetValid  = "not_yet_valid"
	ReasonWrongIssuer  = "wrong_issuer"
)

// Error is the error type of Parse and Verify.
type Error struct{ Reason, Detail string }

func (e *Error) Error() string {
	if e.Detail == "" {
		return "devtoken: " + e.Reason
	}
	return "devtoken: " + e.Reason + ": " + e.Detail
}

func fail(reason, detail string) *Error { return &Error{Reason: reason, Detail: detail} }

// Claims of a device token. Times are NumericDates in whole seconds.
type Claims struct {
	Issuer    string `json:"iss"`
	Subject   string `json:"sub"` // device id
	Tenant    string `json:"tenant"`
	ID        string `json:"jti"` // the DeviceCredential id (kind token)
	IssuedAt  int64  `json:"iat"`
	NotBefore int64  `json:"nbf"`
	Expiry    int64  `json:"exp"`
}

type header struct {
	Alg  string          `json:"alg"`
	Typ  string          `json:"typ,omitempty"`
	Kid  string          `json:"kid"`
	Crit json.RawMessage `json:"crit,omitempty"`
}

var enc = base64.RawURLEncoding.Strict()

// Sign returns the compact serialization of c signed with key under kid.
func Sign(key ed25519.PrivateKey, kid string, c *Claims) (string, error) {
	if len(key) != ed25519.PrivateKeySize || kid == "" {
		return "", errors.New("devtoken: an Ed25519 private key and a kid are required")
	}
	h, err := json.Marshal(header{Alg: Alg, Typ: "JWT", Kid: kid})
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	input := enc.EncodeToString(h) + "." + enc.EncodeToString(b)
	return input + "." + enc.EncodeToString(ed25519.Sign(key, []byte(input))), nil
}

// Parsed is a structurally valid token whose signature is not checked yet.
type Parsed struct {
	KID    string
	Claims Claims
	input  string // header.payload, what the signature covers
	sig    []byte
}

// Parse decodes token without trusting it: the header must name EdDSA and
// a kid and carry no "crit" [RFC 7515 §4.1.11], base64url must be
// unpadded and canonical (one token, one encoding), and the claims must
// decode into Claims with integer dates. It does no cryptography, so the
// caller can find the key by KID first.
func Parse(token string) (*Parsed, error) {
	if len(token) > MaxTokenBytes {
		return nil, fail(ReasonMalformed, fmt.Sprintf("token is %d bytes, the limit is %d", len(token), MaxTokenBytes))
	}
	h64, rest, ok := strings.Cut(token, ".")
	if !ok {
		return nil, fail(ReasonMalformed, "not a compact JWS")
	}
	p64, s64, ok := strings.Cut(rest, ".")
	if !ok || strings.IndexByte(s64, '.') >= 0 {
		return nil, fail(ReasonMalformed, "not a compact JWS")
	}
	var h header
	if err := decodePart(h64, &h); err != nil {
		return nil, fail(ReasonMalformed, "header: "+err.Error())
	}
	if h.Alg != Alg {
		return nil, fail(ReasonMalformed, fmt.Sprintf("alg %.32q, want EdDSA", h.Alg))
	}
	if h.Kid == "" || len(h.Kid) > 64 {
		return nil, fail(ReasonMalformed, "kid missing or too long")
	}
	if h.Crit != nil {
		return nil, fail(ReasonMalformed, `unsupported "crit" header`)
	}
	p := &Parsed{KID: h.Kid, input: token[:len(h64)+1+len(p64)]}
	if err := decodePart(p64, &p.Claims); err != nil {
		return nil, fail(ReasonMalformed, "claims: "+err.Error())
	}
	sig, err := enc.DecodeString(s64)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, fail(ReasonMalformed, "signature encoding")
	}
	p.sig = sig
	return p, nil
}

func decodePart(s string, v any) error {
	raw, err := enc.DecodeString(s)
	if err != nil {
		return errors.New("base64url")
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return errors.New("JSON")
	}
	return nil
}

// Verify checks the signature with pub and then the claims at now: issuer,
// a present "exp" in the future and a "nbf" in the past, each with
// ClockSkew. What the claims name (tenant, device, jti) is for the caller
// to check against its own records.
func (p *Parsed) Verify(pub ed25519.PublicKey, now time.Time) error {
	if len(pub) != ed25519.PublicKeySize || !ed25519.Verify(pub, []byte(p.input), p.sig) {
		return fail(ReasonBadSignature, "")
	}
	c := &p.Claims
	if c.Issuer != Issuer {
		return fail(ReasonWrongIssuer, "")
	}
	if c.Subject == "" || c.Tenant == "" || c.ID == "" {
		return fail(ReasonMalformed, "sub, tenant and jti are required")
	}
	// [RFC 7519 §4.1.4] now must be before exp; [§4.1.5] not before nbf.
	if c.Expiry == 0 || !now.Before(time.Unix(c.Expiry, 0).Add(ClockSkew)) {
		return fail(ReasonExpired, "")
	}
	if now.Add(ClockSkew).Before(time.Unix(c.NotBefore, 0)) {
		return fail(ReasonNotYetValid, "")
	}
	return nil
}

// LooksLikeToken is a cheap pre-check for adapters that receive several
// kinds of secret in one field (an MQTT password): three base64url parts.
func LooksLikeToken(s string) bool {
	return len(s) > 16 && len(s) <= MaxTokenBytes && strings.Count(s, ".") == 2 && strings.HasPrefix(s, "eyJ")
}

// JWK is one public key of a JWKS (RFC 8037 §2: kty OKP, crv Ed25519).
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// PublicJWK returns the JWK of an Ed25519 public key.
func PublicJWK(kid string, pub ed25519.PublicKey) JWK {
	return JWK{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(pub), Kid: kid, Alg: Alg, Use: "sig"}
}
