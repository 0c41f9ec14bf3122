// Package admin serves the control plane's REST API under /admin/v1:
// tenants, operators and their tokens, APIs, versions and their lifecycle,
// the audit log and declarative apply. Every mutation is written in one
// store transaction together with its audit record.
package admin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/fleetgate/fleetgate/internal/audit"
	"github.com/fleetgate/fleetgate/internal/devobs"
	"github.com/fleetgate/fleetgate/internal/lifecycle"
	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/store"
	"github.com/fleetgate/fleetgate/internal/telemetry"
	"github.com/fleetgate/fleetgate/internal/usage"
)

// Prefix is the base path of the admin API.
const Prefix = "/admin/v1"

// TenantHeader lets a system operator choose the tenant a request acts on.
const TenantHeader = "Fleetgate-Tenant"

//go:embed openapi.json
var openapiDoc []byte

// Options configure a Server.
type Options struct {
	Store     store.Store
	Lifecycle *lifecycle.Machine
	Logger    *slog.Logger
	Metrics   *telemetry.Metrics
	// OnChange is called after every committed mutation (the data plane
	// rebuilds its snapshot from it). It must not block.
	OnChange func()
	// Usage is the data plane's traffic record, for the inventory.
	Usage *usage.Recorder
	// Governance gives the node's governance defaults (what a tenant's
	// settings fall back to); zero: the built-in defaults.
	Governance lifecycle.Governance
	// Devices is the data plane's device record (refused attempts), for
	// the security findings.
	Devices *devobs.Recorder
}

// Server is the admin API. Construct with New.
type Server struct {
	st       store.Store
	lc       *lifecycle.Machine
	log      *slog.Logger
	metrics  *telemetry.Metrics
	onChange func()
	usage    *usage.Recorder
	gov      lifecycle.Governance
	devobs   *devobs.Recorder
	dev      deviceState
	routes   []route
	mux      *http.ServeMux
}

// principal is the authenticated caller of a request.
type principal struct {
	op     *model.Operator
	tok    *model.Token
	tenant string // the tenant the request acts on
	actor  string // "tenant/name", as written in the audit log
	reqID  string
}

func (p *principal) has(r model.Role) bool { return p.op.HasRole(r) }

// require answers 403 unless the caller holds one of roles.
func (p *principal) require(roles ...model.Role) error {
	for _, r := range roles {
		if p.has(r) {
			return nil
		}
	}
	names := make([]string, len(roles))
	for i, r := range roles {
		names[i] = string(r)
	}
	return forbidden("this action needs the role " + strings.Join(names, " or "))
}

func (p *principal) requireSystem() error {
	if !p.op.System || !p.has(model.RoleAdmin) {
		return forbidden("this action needs a system administrator")
	}
	return nil
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, p *principal) error

type route struct {
	method, path string // path relative to Prefix, in ServeMux pattern syntax
	h            handlerFunc
}

// New builds the server and its routes.
func New(o Options) *Server {
	s := &Server{st: o.Store, lc: o.Lifecycle, log: o.Logger, metrics: o.Metrics, onChange: o.OnChange, usage: o.Usage, gov: o.Governance, devobs: o.Devices}
	if s.lc == nil {
		s.lc = lifecycle.New()
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.onChange == nil {
		s.onChange = func() {}
	}
	s.routes = []route{
		{"GET", "/whoami", s.whoami},
		{"GET", "/tenants", s.listTenants},
		{"POST", "/tenants", s.createTenant},
		{"GET", "/tenants/{tenant}", s.getTenant},
		{"PATCH", "/tenants/{tenant}", s.updateTenant},
		{"DELETE", "/tenants/{tenant}", s.deleteTenant},
		{"GET", "/operators", s.listOperators},
		{"POST", "/operators", s.createOperator},
		{"GET", "/operators/{operator}", s.getOperator},
		{"PATCH", "/operators/{operator}", s.updateOperator},
		{"DELETE", "/operators/{operator}", s.deleteOperator},
		{"GET", "/tokens", s.listTokens},
		{"POST", "/tokens", s.createToken},
		{"GET", "/tokens/{token}", s.getToken},
		{"DELETE", "/tokens/{token}", s.deleteToken},
		{"POST", "/tokens/{token}/revoke", s.revokeToken},
		{"GET", "/apis", s.listAPIs},
		{"POST", "/apis", s.createAPI},
		{"GET", "/apis/{api}", s.getAPI},
		{"PATCH", "/apis/{api}", s.updateAPI},
		{"DELETE", "/apis/{api}", s.deleteAPI},
		{"GET", "/apis/{api}/versions", s.listVersions},
		{"POST", "/apis/{api}/versions", s.createVersion},
		{"GET", "/apis/{api}/versions/{version}", s.getVersion},
		{"PATCH", "/apis/{api}/versions/{version}", s.updateVersion},
		{"DELETE", "/apis/{api}/versions/{version}", s.deleteVersion},
		{"GET", "/apis/{api}/versions/{version}/transitions", s.listTransitions},
		{"POST", "/apis/{api}/versions/{version}/transitions", s.transition},
		{"GET", "/apps", s.listApps},
		{"POST", "/apps", s.createApp},
		{"GET", "/apps/{app}", s.getApp},
		{"PATCH", "/apps/{app}", s.updateApp},
		{"DELETE", "/apps/{app}", s.deleteApp},
		{"GET", "/apps/{app}/keys", s.listAPIKeys},
		{"POST", "/apps/{app}/keys", s.createAPIKey},
		{"DELETE", "/apps/{app}/keys/{key}", s.deleteAPIKey},
		{"POST", "/apps/{app}/keys/{key}/revoke", s.revokeAPIKey},
		{"GET", "/ownerships", s.listOwnerships},
		{"POST", "/ownerships", s.createOwnerships},
		{"DELETE", "/ownerships", s.deleteOwnership},
		{"GET", "/audit", s.listAudit},
		{"GET", "/audit/verify", s.verifyAudit},
		{"POST", "/apply", s.apply},
		{"GET", "/inventory", s.inventory},
		{"GET", "/security/findings", s.securityFindings},
	}
	s.routes = append(s.routes, s.deviceRoutes()...)
	s.routes = append(s.routes, s.governanceRoutes()...)
	s.routes = append(s.routes, s.devCredRoutes()...)
	s.routes = append(s.routes, s.claimRoutes()...)
	s.routes = append(s.routes, s.reviewRoutes()...)
	mux := http.NewServeMux()
	for _, rt := range s.routes {
		mux.Handle(rt.method+" "+Prefix+rt.path, s.handle(rt.h))
	}
	mux.HandleFunc("GET "+Prefix+"/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openapiDoc)
	})
	mux.Handle(Prefix+"/", s.handle(func(w http.ResponseWriter, r *http.Request, p *principal) error {
		return problem(http.StatusNotFound, "no-route", "Not found", "no admin route "+r.Method+" "+r.URL.Path)
	}))
	s.mux = mux
	return s
}

// Routes lists "METHOD /admin/v1/path" for every authenticated route, so the
// OpenAPI document can be checked against what is served.
func (s *Server) Routes() []string {
	out := make([]string, 0, len(s.routes)+1)
	for _, rt := range s.routes {
		out = append(out, rt.method+" "+Prefix+rt.path)
	}
	return append(out, "GET "+Prefix+"/openapi.json")
}

// OpenAPI returns the admin API's OpenAPI 3.1 document.
func OpenAPI() []byte { return openapiDoc }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

var reqIDRe = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// handle authenticates, runs h and renders its error. It is the one place
// where errors become HTTP answers.
func (s *Server) handle(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		reqID := r.Header.Get("X-Request-Id")
		if !reqIDRe.MatchString(reqID) {
			reqID = uuid.NewString()
		}
		w.Header().Set("X-Request-Id", reqID)
		sw := &statusWriter{ResponseWriter: w}
		p, err := s.authenticate(r)
		if err == nil {
			p.reqID = reqID
			err = h(sw, r, p)
		}
		if err != nil {
			pr := toProblem(err, s.log, reqID)
			pr.RequestID, pr.Instance = reqID, r.URL.Path
			writeProblem(sw, pr)
		}
		actor := ""
		if p != nil {
			actor = p.actor
		}
		if s.metrics != nil {
			s.metrics.AdminRequest(r.Method, r.Pattern, sw.status, time.Since(start))
		}
		s.log.Info("admin request", "method", r.Method, "path", r.URL.Path, "status", sw.status,
			"actor", actor, "request_id", reqID, "duration_ms", time.Since(start).Milliseconds())
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// HashToken is how token secrets are stored: SHA-256. Secrets are 256-bit
// random values, so a slow password hash would add latency and no strength.
func HashToken(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

// NewSecret returns a new token secret, "fgt_" and 43 base64url characters.
func NewSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return "fgt_" + base64.RawURLEncoding.EncodeToString(b)
}

func (s *Server) authenticate(r *http.Request) (*principal, error) {
	h := r.Header.Get("Authorization")
	scheme, secret, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || secret == "" || len(secret) > 256 {
		return nil, errUnauthenticated
	}
	var p principal
	err := s.st.View(r.Context(), func(tx store.Tx) error {
		tok, err := tx.GetTokenByHash(HashToken(secret))
		if err != nil {
			return err
		}
		if !tok.Active(time.Now()) {
			return store.ErrNotFound
		}
		op, err := tx.GetOperator(tok.TenantID, tok.OperatorID)
		if err != nil {
			return err
		}
		p = principal{op: op, tok: tok, tenant: op.TenantID, actor: op.TenantID + "/" + op.Name}
		if want := r.Header.Get(TenantHeader); want != "" && want != op.TenantID {
			if !op.System {
				return forbidden("only system operators may act on another tenant")
			}
			if _, err := tx.GetTenant(want); err != nil {
				return problem(http.StatusNotFound, "not-found", "Not found", "tenant "+strconv.Quote(want)+" not found")
			}
			p.tenant = want
		}
		return nil
	})
	if err != nil {
		if _, isProblem := err.(*Problem); isProblem {
			return nil, err
		}
		if err == store.ErrNotFound {
			return nil, errUnauthenticated
		}
		return nil, err
	}
	return &p, nil
}

// mutate runs fn in a write transaction and appends the audit record fn
// describes in the same transaction: the change and its record commit or
// roll back together.
func (s *Server) mutate(ctx context.Context, p *principal, fn func(tx store.Tx, rec *model.AuditRecord) error) error {
	err := s.st.Update(ctx, func(tx store.Tx) error {
		rec := &model.AuditRecord{TenantID: p.tenant, Actor: p.actor, RequestID: p.reqID}
		if err := fn(tx, rec); err != nil {
			return err
		}
		return tx.AppendAudit(rec)
	})
	if err == nil {
		s.onChange()
	}
	return err
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

// list is the envelope of every list answer; Next is the cursor for the
// following page ("" on the last one).
type list[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next"`
}

func page(r *http.Request) (store.Page, error) {
	p := store.Page{Limit: 100, After: r.URL.Query().Get("after")}
	if l := r.URL.Query().Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			return p, badRequest("limit must be an integer from 1 to 1000", FieldError{Pointer: "/query/limit", Detail: "out of range"})
		}
		p.Limit = n
	}
	return p, nil
}

func writeList[T any](w http.ResponseWriter, items []T, p store.Page, key func(T) string) error {
	out := list[T]{Items: items}
	if len(items) == p.Limit && len(items) > 0 {
		out.Next = key(items[len(items)-1])
	}
	return writeJSON(w, http.StatusOK, out)
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

func now() time.Time { return audit.Now() }

func (s *Server) whoami(w http.ResponseWriter, r *http.Request, p *principal) error {
	return writeJSON(w, http.StatusOK, map[string]any{"operator": p.op, "tenant": p.tenant, "system": p.op.System})
}
