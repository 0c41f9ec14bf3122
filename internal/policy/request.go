// Package policy is Fleetgate's one policy engine. Protocol adapters (HTTP,
// MQTT, CoAP) translate their events into a protocol-neutral Request and
// enforce the Decision in their own terms; the engine alone decides.
//
// The engine reads an immutable Snapshot compiled from the control plane's
// state (routes, credentials, ownership, rules, limits, schemas) and swapped
// atomically on every change. It never reads the store.
package policy

import (
	"crypto/x509"
	"sync"

	"github.com/google/cel-go/common/types/ref"
	"net/http"
	"net/url"
	"time"

	"github.com/fleetgate/fleetgate/internal/ratelimit"
)

// Protocol of a request.
type Protocol uint8

const (
	HTTP Protocol = iota + 1
	MQTT
	CoAP
)

func (p Protocol) String() string {
	switch p {
	case HTTP:
		return "http"
	case MQTT:
		return "mqtt"
	case CoAP:
		return "coap"
	}
	return "unknown"
}

// Principal is an authenticated caller. Principals built from stored
// credentials (API keys, pinned certificates) are prebuilt in the snapshot
// and shared read-only by every request that presents them.
type Principal struct {
	Kind     string // "application", "device", "user", "anonymous"
	Tenant   string
	ID       string // application name, device id or user subject
	App      string // application name, when the caller is or acts through one
	Device   string
	Model    string
	Firmware string
	// Subject is the key of the principal in ownership relations:
	// "app:<name>", "device:<id>", "user:<sub>".
	Subject    string
	Attributes map[string]string
	Claims     map[string]any
	// Credential names what authenticated it, for logs: "api_key:<id>".
	Credential string

	view    *PrincipalView // CEL view, built once per principal
	celOnce sync.Once
	cel     ref.Val
	keys    sync.Map // *limitSpec -> rate-limit bucket key
	// shared principals live in the snapshot and serve many requests.
	shared bool
}

// Param is one path or topic parameter ({vin} -> "WVW...").
type Param struct{ Name, Value string }

// MaxParams bounds the parameters of a route template.
const MaxParams = 8

// Credentials are what the adapter found on the wire; the engine decides
// whether they authenticate anyone.
type Credentials struct {
	APIKey   string
	Bearer   string
	PeerCert *x509.Certificate
	// Username is the MQTT username; with a device token as the password
	// it must be the token's device id.
	Username string
}

// Request is one protocol event to decide.
type Request struct {
	Protocol Protocol
	// Action: the HTTP or CoAP method; "publish" or "subscribe" for MQTT.
	Action string
	// Path is the HTTP path, MQTT topic or CoAP resource path.
	Path string
	// Route and Params come from Snapshot.Match.
	Route  *Route
	Params []Param
	// Principal is set when the session already authenticated (MQTT after
	// CONNECT); otherwise the engine authenticates Credentials.
	Principal   *Principal
	Credentials Credentials
	// Query and Header are the HTTP (or CoAP option / MQTT v5 user
	// property) inputs that bindings and validation may read; nil if none.
	Query  url.Values
	Header http.Header
	// Body is the bounded payload (HTTP body, MQTT payload), nil if none.
	Body        []byte
	ContentType string
	ClientIP    string
	Now         time.Time
}

// Status classifies a decision. Adapters map it to their protocol.
type Status uint8

const (
	Allow           Status = iota // forward
	Unauthenticated               // HTTP 401, MQTT 0x86/0x87, CoAP 4.01
	Forbidden                     // HTTP 403, MQTT 0x87, CoAP 4.03
	NotFound                      // HTTP 404, MQTT 0x87 (undeclared topic), CoAP 4.04
	Gone                          // retired version: HTTP 410, CoAP 4.04
	Blocked                       // blocked version: HTTP 403 (emergency stop)
	RateLimited                   // HTTP 429, MQTT 0x97, CoAP 4.29
	Invalid                       // HTTP 400, MQTT 0x99, CoAP 4.00
	TooLarge                      // HTTP 413, MQTT 0x95, CoAP 4.13
)

// Reasons: stable identifiers, used in problem types and metrics labels.
const (
	ReasonNoRoute        = "no-route"
	ReasonRetired        = "version-retired"
	ReasonBlocked        = "version-blocked"
	ReasonNoCredentials  = "credentials-missing"
	ReasonBadCredentials = "credentials-invalid"
	ReasonMethod         = "auth-method-not-allowed"
	ReasonBinding        = "identity-binding"
	ReasonRule           = "rule"
	ReasonRuleError      = "rule-error"
	ReasonRateLimited    = "rate-limited"
	ReasonInvalid        = "validation"
	ReasonTenant         = "wrong-tenant"
)

// Decision is the engine's answer.
type Decision struct {
	Status Status
	Reason string
	Detail string
	// Pointer locates a validation failure ("/body/temperature").
	Pointer   string
	Principal *Principal
	Route     *Route
	// RateLimit is valid when HasRateLimit: a limit was evaluated. A value,
	// not a pointer, to keep decisions allocation-free.
	RateLimit    RateLimitVerdict
	HasRateLimit bool
	// WWWAuthenticate is the challenge for Unauthenticated HTTP answers.
	WWWAuthenticate string
}

// Allowed reports whether the request may proceed.
func (d *Decision) Allowed() bool { return d.Status == Allow }

// RateLimitVerdict carries what the adapter needs for headers (HTTP
// RateLimit/RateLimit-Policy/Retry-After) or properties.
type RateLimitVerdict struct {
	Policy string
	Limit  ratelimit.Limit
	Result ratelimit.Result
}
