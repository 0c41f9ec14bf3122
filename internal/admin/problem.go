package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/fleetgate/fleetgate/internal/lifecycle"
	"github.com/fleetgate/fleetgate/internal/store"
)

// ProblemBase prefixes every problem type URI, so clients can switch on a
// stable identifier rather than on prose.
const ProblemBase = "https://fleetgate.dev/problems/"

// FieldError locates one problem in a request body.
type FieldError struct {
	Pointer string `json:"pointer"`
	Detail  string `json:"detail"`
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
}

// Problem is an RFC 9457 problem detail. Handlers return it as an error; the
// one renderer in handle writes it.
type Problem struct {
	Type      string         `json:"type"`
	Title     string         `json:"title"`
	Status    int            `json:"status"`
	Detail    string         `json:"detail,omitempty"`
	Instance  string         `json:"instance,omitempty"`
	RequestID string         `json:"request_id,omitempty"`
	Errors    []FieldError   `json:"errors,omitempty"`
	Extra     map[string]any `json:"-"`
}

func (p *Problem) Error() string { return fmt.Sprintf("%d %s: %s", p.Status, p.Title, p.Detail) }

// MarshalJSON flattens Extra members into the object, as RFC 9457 allows.
func (p *Problem) MarshalJSON() ([]byte, error) {
	type plain Problem
	b, err := json.Marshal((*plain)(p))
	if err != nil || len(p.Extra) == 0 {
		return b, err
	}
	m := map[string]any{}
	_ = json.Unmarshal(b, &m)
	for k, v := range p.Extra {
		if _, taken := m[k]; !taken {
			m[k] = v
		}
	}
	return json.Marshal(m)
}

func problem(status int, kind, title, detail string, errs ...FieldError) *Problem {
	return &Problem{Type: ProblemBase + kind, Title: title, Status: status, Detail: detail, Errors: errs}
}

func badRequest(detail string, errs ...FieldError) *Problem {
	return problem(http.StatusBadRequest, "bad-request", "Bad request", detail, errs...)
}

func invalid(detail string, errs ...FieldError) *Problem {
	return problem(http.StatusUnprocessableEntity, "validation", "Validation failed", detail, errs...)
}

func notFound(what string) *Problem {
	return problem(http.StatusNotFound, "not-found", "Not found", what+" not found")
}

func conflict(detail string, errs ...FieldError) *Problem {
	return problem(http.StatusConflict, "conflict", "Conflict", detail, errs...)
}

func forbidden(detail string) *Problem {
	return problem(http.StatusForbidden, "forbidden", "Forbidden", detail)
}

var errUnauthenticated = problem(http.StatusUnauthorized, "unauthenticated", "Unauthenticated", "a valid bearer token is required")

// toProblem maps any handler error to a problem. Unknown errors become a
// 500 whose detail reveals nothing; the error itself is logged.
func toProblem(err error, log *slog.Logger, reqID string) *Problem {
	var p *Problem
	var ill *lifecycle.IllegalError
	var chk *lifecycle.CheckError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &p):
		c := *p
		return &c
	case errors.As(err, &ill):
		allowed := make([]string, len(ill.Allowed))
		for i, s := range ill.Allowed {
			allowed[i] = string(s)
		}
		q := problem(http.StatusConflict, "illegal-transition", "Illegal lifecycle transition", ill.Error())
		q.Extra = map[string]any{"from": ill.From, "to": ill.To, "allowed": allowed}
		return q
	case errors.As(err, &chk):
		q := problem(http.StatusConflict, "check-failed/"+chk.Check, "Transition refused", chk.Detail)
		if chk.Data != nil {
			q.Extra = map[string]any{"data": chk.Data}
		}
		if chk.Field != "" {
			q.Status = http.StatusUnprocessableEntity
			q.Errors = []FieldError{{Pointer: chk.Field, Detail: chk.Detail}}
		}
		return q
	case errors.Is(err, lifecycle.ErrForbidden):
		return forbidden(err.Error())
	case errors.As(err, &mbe):
		return problem(http.StatusRequestEntityTooLarge, "too-large", "Request body too large",
			fmt.Sprintf("the body exceeds %d bytes", mbe.Limit))
	case errors.Is(err, store.ErrNotFound):
		return notFound("object")
	case errors.Is(err, store.ErrConflict):
		return conflict("an object with this name already exists")
	}
	log.Error("admin request failed", "err", err, "request_id", reqID)
	return problem(http.StatusInternalServerError, "internal", "Internal error", "the request failed; see the server log for request "+reqID)
}

func writeProblem(w http.ResponseWriter, p *Problem) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}
