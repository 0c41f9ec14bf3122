// Package store defines the control plane's storage seam: one small
// transactional interface that the embedded SQLite backend and the
// PostgreSQL backend both implement, and that the conformance suite in
// storetest exercises against each.
//
// Every admin mutation runs inside Update together with its audit record, so
// that a change and its audit entry are committed or lost together.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/fleetgate/fleetgate/internal/model"
)

// Sentinel errors. Backends wrap driver errors into these so callers can use
// errors.Is without knowing the backend.
var (
	// ErrNotFound: the object does not exist in the caller's tenant. It is
	// also the answer for objects of another tenant, so that existence is
	// never revealed across tenants.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a unique constraint (name, label, token hash) would be
	// violated.
	ErrConflict = errors.New("already exists")
)

// Store is a transactional control-plane store.
type Store interface {
	// View runs fn in a read-only transaction.
	View(ctx context.Context, fn func(Tx) error) error
	// Update runs fn in a read-write transaction. The transaction commits
	// only when fn returns nil and is rolled back otherwise; an error from
	// commit is returned. A nil return means the change is durable.
	Update(ctx context.Context, fn func(Tx) error) error
	// Ping checks the store is reachable (for /readyz).
	Ping(ctx context.Context) error
	// Close releases the store. In-flight transactions must have ended.
	Close() error
	// Backend names the implementation ("sqlite", "postgres").
	Backend() string
}

// Page bounds a list. Limit 0 means the backend default (100); After is the
// exclusive lower bound of the sort key (name or id) for keyset pagination.
type Page struct {
	Limit int
	After string
}

// AuditFilter selects audit records of one tenant.
type AuditFilter struct {
	Actor      string
	Action     string
	ObjectType string
	ObjectID   string
	Since      int64 // unix microseconds, inclusive; 0 = unbounded
	Until      int64 // unix microseconds, exclusive; 0 = unbounded
	AfterSeq   int64 // exclusive
	Limit      int
}

// OwnershipFilter selects ownership relations; After is the exclusive
// cursor "subject|object_type|object_id".
type OwnershipFilter struct {
	Subject, ObjectType, ObjectID string
	After                         string
	Limit                         int
}

// UsageFilter selects persisted version usage of one tenant.
type UsageFilter struct {
	VersionID string    // "" = every version
	Since     time.Time // last seen at or after; zero = unbounded
	Limit     int       // 0 = 1000; negative = no limit
}

// Tx is a transaction. Every method is tenant-scoped: an object of another
// tenant is reported as ErrNotFound. A Tx must not be used after the
// function given to View or Update returns.
type Tx interface {
	CreateTenant(t *model.Tenant) error
	GetTenant(id string) (*model.Tenant, error)
	ListTenants(p Page) ([]model.Tenant, error)
	UpdateTenant(t *model.Tenant) error
	// DeleteTenant removes a tenant and every object in it except its
	// audit log, which is kept for accountability.
	DeleteTenant(id string) error

	CreateOperator(o *model.Operator) error
	GetOperator(tenant, id string) (*model.Operator, error)
	GetOperatorByName(tenant, name string) (*model.Operator, error)
	ListOperators(tenant string, p Page) ([]model.Operator, error)
	UpdateOperator(o *model.Operator) error
	DeleteOperator(tenant, id string) error

	CreateToken(t *model.Token) error
	GetToken(tenant, id string) (*model.Token, error)
	// GetTokenByHash looks a token up across tenants by the SHA-256 of its
	// secret: authentication happens before the tenant is known.
	GetTokenByHash(hash []byte) (*model.Token, error)
	ListTokens(tenant, operatorID string, p Page) ([]model.Token, error)
	UpdateToken(t *model.Token) error
	DeleteToken(tenant, id string) error

	CreateAPI(a *model.API) error
	GetAPI(tenant, name string) (*model.API, error)
	ListAPIs(tenant string, p Page) ([]model.API, error)
	UpdateAPI(a *model.API) error
	DeleteAPI(tenant, id string) error

	CreateVersion(v *model.Version) error
	GetVersion(tenant, apiID, label string) (*model.Version, error)
	ListVersions(tenant, apiID string, p Page) ([]model.Version, error)
	// ListVersionsByState lists a tenant's versions in any of the states,
	// across APIs ("" tenant: all tenants). The data plane builds its
	// snapshot from the published and deprecated ones.
	ListVersionsByState(tenant string, states ...model.State) ([]model.Version, error)
	UpdateVersion(v *model.Version) error
	DeleteVersion(tenant, id string) error

	// Applications, API keys and ownership. A "" tenant in the list
	// methods means every tenant, and a negative Limit means no limit:
	// the snapshot builder reads everything at once.
	CreateApp(a *model.Application) error
	GetApp(tenant, name string) (*model.Application, error)
	ListApps(tenant string, p Page) ([]model.Application, error)
	UpdateApp(a *model.Application) error
	DeleteApp(tenant, id string) error

	CreateAPIKey(k *model.APIKey) error
	GetAPIKey(tenant, id string) (*model.APIKey, error)
	ListAPIKeys(tenant, appID string, p Page) ([]model.APIKey, error)
	UpdateAPIKey(k *model.APIKey) error
	DeleteAPIKey(tenant, id string) error

	AddOwnership(o *model.Ownership) error
	RemoveOwnership(o *model.Ownership) error
	ListOwnerships(tenant string, f OwnershipFilter) ([]model.Ownership, error)

	// Devices, their credentials, the tenant CA and enrollment tokens.
	// As for applications, a "" tenant in the list methods means every
	// tenant and a negative Limit means no limit (the snapshot builder).
	CreateDevice(d *model.Device) error
	GetDevice(tenant, id string) (*model.Device, error)
	ListDevices(tenant string, p Page) ([]model.Device, error)
	UpdateDevice(d *model.Device) error
	// DeleteDevice removes a device and its enrollment tokens. Its
	// credentials are kept: revoked certificates stay on the CRL.
	DeleteDevice(tenant, id string) error

	CreateDeviceCredential(c *model.DeviceCredential) error
	GetDeviceCredential(tenant, id string) (*model.DeviceCredential, error)
	// ListDeviceCredentials lists credentials of one device ("" deviceID:
	// of every device), ordered by id.
	ListDeviceCredentials(tenant, deviceID string, p Page) ([]model.DeviceCredential, error)
	// UpdateDeviceCredential writes the revocation fields (RevokedAt,
	// RevokeReason); the identifying fields never change.
	UpdateDeviceCredential(c *model.DeviceCredential) error

	// CreateTenantCA stores a tenant's CA; a second one is ErrConflict
	// (a CA is replaced by rotation, not by overwriting).
	CreateTenantCA(ca *model.TenantCA) error
	GetTenantCA(tenant string) (*model.TenantCA, error)

	CreateEnrollmentToken(e *model.EnrollmentToken) error
	// GetEnrollmentTokenByHash looks a token up across tenants by the
	// SHA-256 of its secret: the enrolling device names no tenant.
	GetEnrollmentTokenByHash(hash []byte) (*model.EnrollmentToken, error)
	// UseEnrollmentToken marks a token used at at, atomically: it is
	// ErrNotFound when the token does not exist or was already used, so
	// two concurrent enrollments with one token cannot both succeed.
	UseEnrollmentToken(tenant, id string, at time.Time) error

	// Governance (issue 5): per-tenant governance settings and the
	// persisted per-version usage the retirement check reads.
	//
	// GetGovernanceSettings is ErrNotFound when the tenant never saved any
	// (callers then use the defaults).
	GetGovernanceSettings(tenant string) (*model.GovernanceSettings, error)
	// PutGovernanceSettings creates or replaces a tenant's settings.
	PutGovernanceSettings(s *model.GovernanceSettings) error
	// AddVersionUsage adds each row's Count to the stored count of its key
	// (tenant, version, consumer, model, firmware), creating it when new,
	// and keeps the later LastSeen: rows are deltas, so several nodes
	// sharing a store add up. Rows with the same key are merged first.
	AddVersionUsage(rows []model.VersionUsage) error
	// ListVersionUsage lists a tenant's usage, most calls first.
	ListVersionUsage(tenant string, f UsageFilter) ([]model.VersionUsage, error)
	// Device secrets (devcreds: DTLS pre-shared keys and device-token
	// signing keys). Key material is sealed by the caller with the device
	// KEK; the store never sees it in clear. A "" tenant in the list
	// methods means every tenant (the snapshot builder).
	//
	// CreateDevicePSK stores a PSK whose DeviceCredential (kind psk, same
	// ID) the caller creates in the same transaction; an identity already
	// in use is ErrConflict.
	CreateDevicePSK(p *model.DevicePSK) error
	GetDevicePSK(tenant, id string) (*model.DevicePSK, error)
	// ListDevicePSKs lists the PSKs of one device ("" deviceID: of every
	// device), ordered by id; a negative Limit means no limit.
	ListDevicePSKs(tenant, deviceID string, p Page) ([]model.DevicePSK, error)
	// CreateDeviceTokenKey stores a signing key; a second key of a tenant
	// is allowed (the newest signs, all verify).
	CreateDeviceTokenKey(k *model.DeviceTokenKey) error
	// ListDeviceTokenKeys lists signing keys, newest first.
	ListDeviceTokenKeys(tenant string) ([]model.DeviceTokenKey, error)
	// Claims (fleet provisioning) and external CAs. A "" tenant in the
	// list methods means every tenant and a negative Limit means no limit.
	CreateClaim(c *model.Claim) error
	GetClaim(tenant, name string) (*model.Claim, error)
	ListClaims(tenant string, p Page) ([]model.Claim, error)
	// GetClaimByHash and GetClaimByFingerprint look a claim up across
	// tenants by the SHA-256 of its token secret or of its certificate
	// DER: the enrolling device names no tenant.
	GetClaimByHash(hash []byte) (*model.Claim, error)
	GetClaimByFingerprint(fingerprint string) (*model.Claim, error)
	// LockClaim re-reads a claim and holds it until the transaction ends
	// (FOR UPDATE on PostgreSQL; SQLite serializes writers), so that the
	// use count checked by one enrollment cannot change under it.
	LockClaim(tenant, id string) (*model.Claim, error)
	// UseClaim increments the use count, atomically and only while the
	// claim is unrevoked, unexpired at at, and under its maximum: it is
	// ErrNotFound otherwise.
	UseClaim(tenant, id string, at time.Time) error
	// UpdateClaim writes the revocation fields and UpdatedAt.
	UpdateClaim(c *model.Claim) error
	// CreateDeviceIfAbsent registers d unless its id is taken in its
	// tenant, reporting false then. Unlike CreateDevice it leaves the
	// transaction usable on a taken id (PostgreSQL aborts a transaction
	// on a unique violation), so the refusal can still be audited in it.
	CreateDeviceIfAbsent(d *model.Device) (bool, error)
	CreateExternalCA(ca *model.ExternalCA) error
	GetExternalCA(tenant, name string) (*model.ExternalCA, error)
	ListExternalCAs(tenant string, p Page) ([]model.ExternalCA, error)
	DeleteExternalCA(tenant, name string) error
	// Device last-seen and firmware reporting (devobs): the data plane's
	// sightings, written in batches by the flusher.
	//
	// MarkDeviceSeen sets the device's first_seen once, advances last_seen
	// to at (never backwards) and, when firmware is not "" and differs
	// from the recorded one, replaces it. It returns the firmware recorded
	// before and whether it changed, or ErrNotFound when the device does
	// not exist. The device row is locked while read, so a concurrent
	// registry edit is neither lost nor overwritten.
	MarkDeviceSeen(tenant, id string, at time.Time, firmware string) (previous string, changed bool, err error)

	AddTransition(t *model.Transition) error
	ListTransitions(tenant, versionID string) ([]model.Transition, error)

	// Review workflow (governance): co-authors of versions, the tenant's
	// review settings, review events (comments, approvals, change
	// requests) numbered by review round, and scheduled publications.
	//
	// AddCoAuthor records a co-author of a version; the same actor twice
	// is ErrConflict. Co-authors are never removed: a co-author who could
	// be removed could then approve their own work.
	AddCoAuthor(c *model.CoAuthor) error
	// ListCoAuthors lists a version's co-authors, oldest first.
	ListCoAuthors(tenant, versionID string) ([]model.CoAuthor, error)
	// GetReviewSettings is ErrNotFound when the tenant never set any
	// (callers then apply model.DefaultReviewSettings).
	GetReviewSettings(tenant string) (*model.ReviewSettings, error)
	// PutReviewSettings creates or replaces the tenant's settings.
	PutReviewSettings(s *model.ReviewSettings) error
	// LockVersion holds the version's row lock until the transaction
	// ends, so that concurrent approvals of one version are counted one
	// after the other (PostgreSQL; SQLite writers are serialized anyway).
	LockVersion(tenant, versionID string) error
	// AddReviewEvent appends an event; a second approval by the same
	// actor in the same round is ErrConflict.
	AddReviewEvent(e *model.ReviewEvent) error
	// ListReviewEvents lists a version's events in the order they
	// happened.
	ListReviewEvents(tenant, versionID string) ([]model.ReviewEvent, error)
	// PutReviewSchedule creates or replaces the version's schedule.
	PutReviewSchedule(s *model.ReviewSchedule) error
	GetReviewSchedule(tenant, versionID string) (*model.ReviewSchedule, error)
	// DeleteReviewSchedule removes the version's schedule; none is
	// ErrNotFound.
	DeleteReviewSchedule(tenant, versionID string) error
	// ListDueReviewSchedules lists the schedules due at or before t in
	// every tenant, earliest first, at most limit (1..1000).
	ListDueReviewSchedules(t time.Time, limit int) ([]model.ReviewSchedule, error)

	// AppendAudit appends rec to its tenant's hash chain: it assigns Seq,
	// PrevHash and Hash under a lock on the chain head, so concurrent
	// writers never fork the chain.
	AppendAudit(rec *model.AuditRecord) error
	ListAudit(tenant string, f AuditFilter) ([]model.AuditRecord, error)
	// AuditHead returns the last sequence number and hash of a tenant's
	// chain as recorded in the head row (0, "" when empty).
	AuditHead(tenant string) (int64, string, error)
	// AuditTenants lists the tenants that have an audit chain.
	AuditTenants() ([]string, error)
}
