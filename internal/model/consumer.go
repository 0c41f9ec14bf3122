package model

import "time"

// Application is a consumer of APIs: a backend service, a mobile app, a
// partner integration. It authenticates with API keys, pinned client
// certificates or JWTs whose subject or client id names it.
type Application struct {
	ID          string            `json:"id"`
	TenantID    string            `json:"tenant"`
	Name        string            `json:"name"`
	Description string            `json:"description,omitempty"`
	Attributes  map[string]string `json:"attributes,omitempty"`
	// CertFingerprints pins client certificates (SHA-256 of the DER, hex)
	// to this application, for mTLS before device identity exists.
	CertFingerprints []string  `json:"cert_fingerprints,omitempty"`
	CreatedAt        time.Time `json:"created_at"`
	UpdatedAt        time.Time `json:"updated_at"`
}

// APIKey is an application credential. Only the SHA-256 of the key is
// stored; the key is shown once, at creation.
type APIKey struct {
	ID        string     `json:"id"`
	TenantID  string     `json:"tenant"`
	AppID     string     `json:"app_id"`
	AppName   string     `json:"application"`
	Name      string     `json:"name"`
	Prefix    string     `json:"prefix"`
	Hash      []byte     `json:"-"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
}

// Ownership says that a subject owns (or may manage) an object: user
// "alice" owns vehicle "WVW123"; application "fleet-ops" manages devices of
// model "meter-x". Identity bindings consult it, so access follows the
// relation instead of trusting a guessable identifier.
type Ownership struct {
	TenantID   string    `json:"tenant"`
	Subject    string    `json:"subject"`     // "user:alice", "app:fleet-ops", "device:d-17"
	ObjectType string    `json:"object_type"` // "vehicle", "device", "device-model"
	ObjectID   string    `json:"object_id"`
	CreatedAt  time.Time `json:"created_at"`
}

// Policy is the data-plane policy of a version: how callers authenticate,
// which identity bindings and rules each operation enforces, its rate
// limits and validation. Authentication methods default to the spec's
// security requirements.
type Policy struct {
	// Auth applies to every operation unless the operation overrides it.
	Auth *AuthPolicy `json:"auth,omitempty"`
	// Rules are CEL expressions that must all be true, for every operation.
	Rules []string `json:"rules,omitempty"`
	// RateLimit applies per consumer to every operation without its own.
	RateLimit *RateLimitPolicy `json:"rate_limit,omitempty"`
	// Operations override by operation id (HTTP operationId, or the
	// topic/resource for MQTT and CoAP).
	Operations map[string]OperationPolicy `json:"operations,omitempty"`
	// ValidateResponses: "off" (default) or "log".
	ValidateResponses string `json:"validate_responses,omitempty"`
	// LintWaivers accept a lint finding for one operation, with a reason
	// that reviewers read (e.g. an anonymous health check).
	LintWaivers []LintWaiver `json:"lint_waivers,omitempty"`
}

// LintWaiver waives one lint rule for one operation ("" = the whole
// document). The reason is required and audited with the version.
type LintWaiver struct {
	Rule      string `json:"rule"`
	Operation string `json:"operation,omitempty"`
	Reason    string `json:"reason"`
}

// AuthPolicy lists accepted credentials: any one of Methods suffices.
type AuthPolicy struct {
	// Methods among "api_key", "jwt", "mtls", "anonymous", "device_token".
	Methods      []string   `json:"methods,omitempty"`
	APIKeyHeader string     `json:"api_key_header,omitempty"` // default X-API-Key
	JWT          *JWTPolicy `json:"jwt,omitempty"`
}

// JWTPolicy configures JWT verification.
type JWTPolicy struct {
	Issuer    string   `json:"issuer"`
	Audiences []string `json:"audiences,omitempty"`
	JWKSURL   string   `json:"jwks_url"`
	// SubjectClaim names the claim that identifies the user (default "sub").
	SubjectClaim string `json:"subject_claim,omitempty"`
	ClockSkew    string `json:"clock_skew,omitempty"` // Go duration, default 30s
}

// OperationPolicy refines the version policy for one operation.
type OperationPolicy struct {
	Auth      *AuthPolicy       `json:"auth,omitempty"`
	Bindings  []IdentityBinding `json:"bindings,omitempty"`
	Rules     []string          `json:"rules,omitempty"`
	RateLimit *RateLimitPolicy  `json:"rate_limit,omitempty"`
}

// IdentityBinding ties a request parameter to the caller: the value must
// equal an attribute of the principal (Equals), or name an object of type
// Owned that the principal owns. This is the anti-BOLA rule.
type IdentityBinding struct {
	Param  string `json:"param"`            // "vin"
	In     string `json:"in,omitempty"`     // "path" (default), "query", "header" or "body"
	Equals string `json:"equals,omitempty"` // "principal.id", "principal.subject", "principal.device", "principal.attributes.region", "claims.vin"
	Owned  string `json:"owned,omitempty"`  // object type, e.g. "vehicle"
}

// RateLimitPolicy is a token bucket: Rate requests per Period, Burst.
type RateLimitPolicy struct {
	Rate   int    `json:"rate"`
	Period string `json:"period"` // Go duration, e.g. "1m"
	Burst  int    `json:"burst,omitempty"`
}
