// Package usage records what the data plane sees, for the inventory and for
// usage-aware retirement: which consumers call which versions, and shadow
// traffic (calls to routes or topics that no published version declares).
//
// It is in memory and bounded: a flood of distinct paths cannot grow it
// past its caps; what does not fit is counted in an overflow entry.
package usage

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Limits on what is kept.
const (
	maxShadow  = 10000
	maxUse     = 100000
	maxPathLen = 256
)

// ShadowEntry is one undeclared (protocol, action, path, caller).
type ShadowEntry struct {
	Protocol  string    `json:"protocol"`
	Action    string    `json:"action"`
	Path      string    `json:"path"`
	Caller    string    `json:"caller"`
	Count     int64     `json:"count"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
}

// UseEntry is the traffic of one consumer (and, for devices, one model and
// firmware) on one version: what retirement decisions need to know.
type UseEntry struct {
	Tenant    string    `json:"tenant"`
	VersionID string    `json:"version_id"`
	Consumer  string    `json:"consumer"`
	Model     string    `json:"model,omitempty"`
	Firmware  string    `json:"firmware,omitempty"`
	Count     int64     `json:"count"`
	LastSeen  time.Time `json:"last_seen"`
}

type shadowKey struct{ proto, action, path, caller string }
type useKey struct{ tenant, version, consumer, model, firmware string }

type counter struct {
	count    atomic.Int64
	first    time.Time
	lastSeen atomic.Int64 // unix nanoseconds
	// flushed is the part of count already persisted (see Pending).
	flushed atomic.Int64
}

// Recorder is safe for concurrent use. The hot path (an existing entry)
// takes a read lock and two atomic operations.
type Recorder struct {
	mu     sync.RWMutex
	shadow map[shadowKey]*counter
	use    map[useKey]*counter
}

// New returns an empty recorder.
func New() *Recorder {
	return &Recorder{shadow: map[shadowKey]*counter{}, use: map[useKey]*counter{}}
}

// Shadow records a call to an undeclared route or topic.
func (r *Recorder) Shadow(proto, action, path, caller string, now time.Time) {
	if len(path) > maxPathLen {
		path = path[:maxPathLen] + "…"
	}
	k := shadowKey{proto, action, path, caller}
	hit(&r.mu, r.shadow, k, shadowKey{proto, "*", "(overflow)", "*"}, maxShadow, now)
}

// Use records a call by consumer (with its device model and firmware, ""
// when not a device) on a version.
func (r *Recorder) Use(tenant, versionID, consumer, model, firmware string, now time.Time) {
	hit(&r.mu, r.use, useKey{tenant, versionID, consumer, model, firmware}, useKey{tenant, versionID, "(overflow)", "", ""}, maxUse, now)
}

func hit[K comparable](mu *sync.RWMutex, m map[K]*counter, k, overflow K, max int, now time.Time) {
	mu.RLock()
	c := m[k]
	mu.RUnlock()
	if c == nil {
		mu.Lock()
		if c = m[k]; c == nil {
			if len(m) >= max {
				k = overflow
			}
			if c = m[k]; c == nil {
				c = &counter{first: now}
				m[k] = c
			}
		}
		mu.Unlock()
	}
	c.count.Add(1)
	c.lastSeen.Store(now.UnixNano())
}

// ShadowEntries lists shadow traffic, most frequent first.
func (r *Recorder) ShadowEntries() []ShadowEntry {
	r.mu.RLock()
	out := make([]ShadowEntry, 0, len(r.shadow))
	for k, c := range r.shadow {
		out = append(out, ShadowEntry{Protocol: k.proto, Action: k.action, Path: k.path, Caller: k.caller,
			Count: c.count.Load(), FirstSeen: c.first, LastSeen: time.Unix(0, c.lastSeen.Load()).UTC()})
	}
	r.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Count > out[j].Count })
	return out
}

// UseEntries lists version usage.
func (r *Recorder) UseEntries() []UseEntry {
	r.mu.RLock()
	out := make([]UseEntry, 0, len(r.use))
	for k, c := range r.use {
		out = append(out, UseEntry{Tenant: k.tenant, VersionID: k.version, Consumer: k.consumer, Model: k.model, Firmware: k.firmware, Count: c.count.Load(),
			LastSeen: time.Unix(0, c.lastSeen.Load()).UTC()})
	}
	r.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Count > out[j].Count })
	return out
}
