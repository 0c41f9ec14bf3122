package devobs

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fleetgate/fleetgate/internal/policy"
)

// DefaultMaxAttempts bounds the refused credentials remembered.
const DefaultMaxAttempts = 10_000

// Attempt is what is known about one refused credential on one protocol:
// how often it tried, when, and from where (the last remote address).
type Attempt struct {
	Kind       string    `json:"kind"` // policy.Refused*
	Tenant     string    `json:"tenant"`
	Subject    string    `json:"subject"`
	Credential string    `json:"credential"`
	Status     string    `json:"status,omitempty"`
	Protocol   string    `json:"protocol"` // listener: "https", "mqtts" (certificates at the handshake), "http", "mqtt" (API keys)
	Count      int64     `json:"count"`
	First      time.Time `json:"first"`
	Last       time.Time `json:"last"`
	Remote     string    `json:"remote"`
}

type attemptKey struct{ tenant, kind, subject, credential, protocol string }

// attempts is bounded by the number of credentials the control plane
// issued (only known credentials are refusals), and capped besides: a
// tenant revoking a million keys cannot grow it past max.
type attempts struct {
	mu    sync.Mutex
	m     map[attemptKey]*Attempt
	max   int
	total atomic.Int64
}

func (a *attempts) init(max int) { a.m, a.max = map[attemptKey]*Attempt{}, max }

// Refused records an attempt with credentials c that snapshot s refused,
// when c is a credential the control plane knows (see
// policy.Snapshot.Refusal); unknown credentials are not recorded. It is
// called on the refusal path only.
func (r *Recorder) Refused(s *policy.Snapshot, c policy.Credentials, protocol, remote string, now time.Time) {
	if r == nil || s == nil {
		return
	}
	if ref, ok := s.Refusal(c, now); ok {
		r.RecordRefusal(ref, protocol, remote, now)
	}
}

// RecordRefusal records one refused attempt.
func (r *Recorder) RecordRefusal(ref policy.Refusal, protocol, remote string, now time.Time) {
	a := &r.attempts
	a.total.Add(1)
	k := attemptKey{ref.Tenant, ref.Kind, ref.Subject, ref.Credential, protocol}
	a.mu.Lock()
	defer a.mu.Unlock()
	e := a.m[k]
	if e == nil {
		if len(a.m) >= a.max {
			return // counted in total only
		}
		e = &Attempt{Kind: ref.Kind, Tenant: ref.Tenant, Subject: ref.Subject, Credential: ref.Credential, Status: ref.Status,
			Protocol: protocol, First: now.UTC()}
		a.m[k] = e
	}
	e.Count++
	e.Last, e.Remote = now.UTC(), remote
	if ref.Status != "" {
		e.Status = ref.Status
	}
}

// Attempts lists the refused attempts of tenant ("" for every tenant),
// most recent first.
func (r *Recorder) Attempts(tenant string) []Attempt {
	a := &r.attempts
	a.mu.Lock()
	out := make([]Attempt, 0, len(a.m))
	for k, e := range a.m {
		if tenant == "" || k.tenant == tenant {
			out = append(out, *e)
		}
	}
	a.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Last.Equal(out[j].Last) {
			return out[i].Last.After(out[j].Last)
		}
		return out[i].Subject < out[j].Subject
	})
	return out
}
