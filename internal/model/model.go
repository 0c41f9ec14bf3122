// Package model holds Fleetgate's domain types and their validation. It does
// no I/O: the store persists these values, the admin API decodes and encodes
// them, and the lifecycle and policy packages reason about them.
package model

import (
	"encoding/json"
	"regexp"
	"time"
)

// Tenant is the unit of isolation: every other object belongs to exactly one
// tenant, and no query may cross tenants unless the caller is a system admin.
type Tenant struct {
	ID          string    `json:"id"`
	DisplayName string    `json:"display_name,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Role names an operator role. Roles are additive.
type Role string

const (
	RoleAdmin    Role = "admin"    // everything within the tenant, including operators and tokens
	RoleAuthor   Role = "author"   // designs APIs and versions, submits them for review
	RoleReviewer Role = "reviewer" // approves or rejects versions in review
	RoleOperator Role = "operator" // runs published versions: deprecate, block, retire
	RoleAuditor  Role = "auditor"  // reads everything, including the audit log; changes nothing
)

// AllRoles lists the valid roles in a stable order.
var AllRoles = []Role{RoleAdmin, RoleAuthor, RoleReviewer, RoleOperator, RoleAuditor}

// Valid reports whether r is a known role.
func (r Role) Valid() bool {
	for _, k := range AllRoles {
		if r == k {
			return true
		}
	}
	return false
}

// Operator is a person or automation that administers a tenant. A system
// operator (System=true) may act on every tenant.
type Operator struct {
	ID        string    `json:"id"`
	TenantID  string    `json:"tenant"`
	Name      string    `json:"name"`
	Email     string    `json:"email,omitempty"`
	Roles     []Role    `json:"roles"`
	System    bool      `json:"system,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// HasRole reports whether the operator holds role r (admin implies all).
func (o *Operator) HasRole(r Role) bool {
	for _, k := range o.Roles {
		if k == r || k == RoleAdmin {
			return true
		}
	}
	return false
}

// Token is an operator's bearer credential. Only the SHA-256 of the secret
// is stored; the secret itself is returned once, at creation.
type Token struct {
	ID         string     `json:"id"`
	TenantID   string     `json:"tenant"`
	OperatorID string     `json:"operator_id"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix"` // first characters of the secret, to recognise it
	Hash       []byte     `json:"-"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
}

// Active reports whether the token may authenticate at time now.
func (t *Token) Active(now time.Time) bool {
	if t.RevokedAt != nil {
		return false
	}
	return t.ExpiresAt == nil || now.Before(*t.ExpiresAt)
}

// API is a named product with versions. The name is unique within a tenant.
type API struct {
	ID          string    `json:"id"`
	TenantID    string    `json:"tenant"`
	Name        string    `json:"name"`
	DisplayName string    `json:"display_name,omitempty"`
	Description string    `json:"description,omitempty"`
	Owner       string    `json:"owner"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// State is a lifecycle state of an API version.
type State string

const (
	StateDraft      State = "draft"
	StateInReview   State = "in_review"
	StatePublished  State = "published"
	StateDeprecated State = "deprecated"
	StateRetired    State = "retired"
	StateBlocked    State = "blocked"
)

// Version is one version of an API: its bindings to protocols, its upstream
// and its spec document, and where it stands in the lifecycle.
type Version struct {
	ID        string     `json:"id"`
	TenantID  string     `json:"tenant"`
	APIID     string     `json:"api_id"`
	APIName   string     `json:"api"`
	Label     string     `json:"version"`
	State     State      `json:"state"`
	Bindings  Bindings   `json:"bindings"`
	Upstream  Upstream   `json:"upstream"`
	Spec      *Spec      `json:"spec,omitempty"`
	Policy    Policy     `json:"policy"`
	Author    string     `json:"author"`
	Sunset    *time.Time `json:"sunset,omitempty"`
	Successor string     `json:"successor,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
}

// Spec is an attached API description, stored verbatim.
type Spec struct {
	Format  string `json:"format"`  // "openapi" or "asyncapi", detected
	Version string `json:"version"` // e.g. "3.1.0", "2.6.0", detected
	Content string `json:"content"`
}

// Upstream is where the data plane forwards accepted traffic.
type Upstream struct {
	Targets []string `json:"targets,omitempty"`
}

// Bindings tie a version to protocol surfaces. They are given explicitly or
// extracted from the spec document.
type Bindings struct {
	HTTP *HTTPBinding `json:"http,omitempty"`
	MQTT *MQTTBinding `json:"mqtt,omitempty"`
	CoAP *CoAPBinding `json:"coap,omitempty"`
}

// HTTPBinding is a base path and the operations below it.
type HTTPBinding struct {
	BasePath   string          `json:"base_path"`
	Operations []HTTPOperation `json:"operations,omitempty"`
}

// HTTPOperation is one method on one path template, relative to BasePath.
type HTTPOperation struct {
	Method      string `json:"method"`
	Path        string `json:"path"`
	OperationID string `json:"operation_id,omitempty"`
}

// MQTTBinding lists the channels (topic templates) of a version.
type MQTTBinding struct {
	Channels []MQTTChannel `json:"channels,omitempty"`
}

// MQTTChannel is a topic template and what a device does on it: "publish"
// (device sends) or "subscribe" (device receives).
type MQTTChannel struct {
	Topic       string `json:"topic"`
	Action      string `json:"action"`
	OperationID string `json:"operation_id,omitempty"`
}

// CoAPBinding lists CoAP resources.
type CoAPBinding struct {
	Resources []CoAPResource `json:"resources,omitempty"`
}

// CoAPResource is a resource path and the methods allowed on it.
type CoAPResource struct {
	Path    string   `json:"path"`
	Methods []string `json:"methods,omitempty"`
}

// Transition records one lifecycle change of a version: who, when and why.
type Transition struct {
	ID        string    `json:"id"`
	TenantID  string    `json:"tenant"`
	VersionID string    `json:"version_id"`
	From      State     `json:"from"`
	To        State     `json:"to"`
	Actor     string    `json:"actor"`
	Reason    string    `json:"reason,omitempty"`
	At        time.Time `json:"at"`
}

// AuditRecord is one entry of a tenant's hash-chained audit log.
type AuditRecord struct {
	Seq          int64           `json:"seq"`
	TenantID     string          `json:"tenant"`
	Actor        string          `json:"actor"`
	Action       string          `json:"action"`
	ObjectType   string          `json:"object_type"`
	ObjectID     string          `json:"object_id"`
	BeforeDigest string          `json:"before_digest,omitempty"`
	AfterDigest  string          `json:"after_digest,omitempty"`
	RequestID    string          `json:"request_id,omitempty"`
	Detail       json.RawMessage `json:"detail,omitempty"`
	At           time.Time       `json:"at"`
	PrevHash     string          `json:"prev_hash"`
	Hash         string          `json:"hash"`
}

var (
	nameRe  = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	labelRe = regexp.MustCompile(`^v?[0-9]+(\.[0-9]+){0,2}(-[0-9A-Za-z.-]{1,32})?$`)
)

// ValidName reports whether s is a valid object name (tenant id, API name,
// operator name): lowercase DNS label, 1-63 characters.
func ValidName(s string) bool { return nameRe.MatchString(s) }

// ValidLabel reports whether s is a valid version label: "v1", "1.2",
// "v2.0.1", "1.0.0-beta.1".
func ValidLabel(s string) bool { return len(s) <= 64 && labelRe.MatchString(s) }
