package usage

import "time"

// Pending is the part of one use entry not yet persisted: Count is the
// delta since the last MarkFlushed. It is handed back to MarkFlushed once
// the delta is durable.
type Pending struct {
	UseEntry
	c     *counter
	total int64 // count when the delta was taken
}

// PendingUse lists up to max use entries with calls not yet persisted (max
// <= 0: all). Taking the list changes nothing: a flush that fails leaves the
// deltas pending for the next one.
func (r *Recorder) PendingUse(max int) []Pending {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []Pending
	for k, c := range r.use {
		if max > 0 && len(out) >= max {
			break
		}
		total := c.count.Load()
		d := total - c.flushed.Load()
		if d <= 0 {
			continue
		}
		out = append(out, Pending{c: c, total: total, UseEntry: UseEntry{Tenant: k.tenant, VersionID: k.version, Consumer: k.consumer,
			Model: k.model, Firmware: k.firmware, Count: d, LastSeen: time.Unix(0, c.lastSeen.Load()).UTC()}})
	}
	return out
}

// PendingFor is PendingUse restricted to one tenant and, unless versionID
// is "", one version: the calls a reader of the store must add to see
// everything (the retirement check, the inventory).
func (r *Recorder) PendingFor(tenant, versionID string) []UseEntry {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []UseEntry
	for k, c := range r.use {
		if k.tenant != tenant || (versionID != "" && k.version != versionID) {
			continue
		}
		if d := c.count.Load() - c.flushed.Load(); d > 0 {
			out = append(out, UseEntry{Tenant: k.tenant, VersionID: k.version, Consumer: k.consumer, Model: k.model, Firmware: k.firmware,
				Count: d, LastSeen: time.Unix(0, c.lastSeen.Load()).UTC()})
		}
	}
	return out
}

// MarkFlushed records that the deltas of ps are persisted. Calls counted
// after PendingUse stay pending. Marks only move forward, so a stale list
// handed in late cannot make calls count twice.
func (r *Recorder) MarkFlushed(ps []Pending) {
	for _, p := range ps {
		for {
			cur := p.c.flushed.Load()
			if p.total <= cur || p.c.flushed.CompareAndSwap(cur, p.total) {
				break
			}
		}
	}
}
