// Package devobs observes devices on the data plane: when each device was
// last seen and which firmware it reports (flushed to the registry in
// batches by the composition root), and refused attempts by credentials
// the control plane revoked or devices it barred (read by the admin
// server's posture findings).
//
// Everything is in memory and bounded. The hot path — an authenticated
// device request — takes a read lock and one atomic store, and allocates
// nothing unless the device reports a new firmware version.
package devobs

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/fleetgate/fleetgate/internal/policy"
)

// DefaultMaxDevices bounds the devices tracked between two flushes.
const DefaultMaxDevices = 200_000

type deviceKey struct{ tenant, device string }

type seenEntry struct {
	last     atomic.Int64 // unix microseconds
	firmware atomic.Pointer[string]
	// Written by the flusher only (under Recorder.flushMu).
	flushedLast int64
	flushedFW   string
}

// Update is one device's change since the last committed flush.
type Update struct {
	Tenant, Device string
	LastSeen       time.Time
	// Firmware is the newly reported version, "" when unchanged.
	Firmware string
	e        *seenEntry
	last     int64
	fw       string
}

// Stats counts what the recorder refused to keep.
type Stats struct {
	Tracked       int   // devices currently tracked
	Dropped       int64 // sightings of untracked devices beyond the cap
	BadFirmware   int64 // malformed firmware reports, ignored
	AttemptsTotal int64 // refused attempts recorded
}

// Recorder is safe for concurrent use. Construct with New.
type Recorder struct {
	mu   sync.RWMutex
	seen map[deviceKey]*seenEntry
	max  int

	flushMu sync.Mutex // serialises Collect/Commit/Evict

	dropped     atomic.Int64
	badFirmware atomic.Int64

	attempts attempts
}

// New returns a recorder tracking at most maxDevices devices between
// flushes (DefaultMaxDevices when <= 0) and maxAttempts refused
// credentials (DefaultMaxAttempts when <= 0).
func New(maxDevices, maxAttempts int) *Recorder {
	if maxDevices <= 0 {
		maxDevices = DefaultMaxDevices
	}
	if maxAttempts <= 0 {
		maxAttempts = DefaultMaxAttempts
	}
	r := &Recorder{seen: map[deviceKey]*seenEntry{}, max: maxDevices}
	r.attempts.init(maxAttempts)
	return r
}

// Seen notes that device principal p was authenticated at now, reporting
// firmware ("" when it reported none). Other principals are ignored. A
// malformed firmware version is counted and ignored; the sighting counts.
func (r *Recorder) Seen(p *policy.Principal, firmware string, now time.Time) {
	if r == nil || p == nil || p.Kind != "device" {
		return
	}
	k := deviceKey{p.Tenant, p.ID}
	at := now.UnixMicro()
	// The stores happen under the read lock so that Evict, which holds
	// the write lock, never drops an entry a sighting is being written to.
	r.mu.RLock()
	if e := r.seen[k]; e != nil {
		if e.last.Load() < at {
			e.last.Store(at)
		}
		if firmware != "" {
			// Validated only when it differs from the known one: the
			// common case (unchanged) costs one string comparison.
			if cur := e.firmware.Load(); cur == nil || *cur != firmware {
				if ValidFirmware(firmware) {
					setFirmware(e, firmware)
				} else {
					r.badFirmware.Add(1)
				}
			}
		}
		r.mu.RUnlock()
		return
	}
	r.mu.RUnlock()
	if firmware != "" && !ValidFirmware(firmware) {
		r.badFirmware.Add(1)
		firmware = ""
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.seen[k]
	if e == nil {
		if len(r.seen) >= r.max {
			r.dropped.Add(1)
			return
		}
		e = &seenEntry{}
		r.seen[k] = e
	}
	if e.last.Load() < at {
		e.last.Store(at)
	}
	if firmware != "" {
		setFirmware(e, firmware)
	}
}

// setFirmware is out of line so that the caller's firmware argument does
// not escape (and allocate) on the common path where it is unchanged.
//
//go:noinline
func setFirmware(e *seenEntry, fw string) { e.firmware.Store(&fw) }

// Collect returns the devices seen, or reporting a new firmware, since the
// last Commit. Nothing is marked flushed until Commit, so a failed write is
// retried by the next Collect.
func (r *Recorder) Collect() []Update {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []Update
	for k, e := range r.seen {
		last := e.last.Load()
		fw := ""
		if p := e.firmware.Load(); p != nil {
			fw = *p
		}
		if last <= e.flushedLast && fw == e.flushedFW {
			continue
		}
		u := Update{Tenant: k.tenant, Device: k.device, LastSeen: time.UnixMicro(last).UTC(), e: e, last: last, fw: fw}
		if fw != e.flushedFW {
			u.Firmware = fw
		}
		out = append(out, u)
	}
	return out
}

// Commit marks updates (from Collect) as written to the store.
func (r *Recorder) Commit(us []Update) {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	for i := range us {
		u := &us[i]
		if u.e == nil {
			continue
		}
		if u.last > u.e.flushedLast {
			u.e.flushedLast = u.last
		}
		u.e.flushedFW = u.fw
	}
}

// Evict forgets devices whose last sighting, already flushed, is older
// than now-idle, so that memory follows the active fleet rather than every
// device ever seen. It returns how many were forgotten.
func (r *Recorder) Evict(idle time.Duration, now time.Time) int {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	cut := now.Add(-idle).UnixMicro()
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for k, e := range r.seen {
		last := e.last.Load()
		fw := ""
		if p := e.firmware.Load(); p != nil {
			fw = *p
		}
		if last <= e.flushedLast && fw == e.flushedFW && last < cut {
			delete(r.seen, k)
			n++
		}
	}
	return n
}

// Stats returns the recorder's counters.
func (r *Recorder) Stats() Stats {
	r.mu.RLock()
	n := len(r.seen)
	r.mu.RUnlock()
	return Stats{Tracked: n, Dropped: r.dropped.Load(), BadFirmware: r.badFirmware.Load(), AttemptsTotal: r.attempts.total.Load()}
}
