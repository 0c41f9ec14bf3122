// Package usagestore persists what usage.Recorder counts in memory: a
// Flusher writes the per-version deltas to the store in bounded batches,
// and Read merges the store with the deltas not yet flushed, so that
// usage-aware retirement and the inventory see every call and survive a
// restart (losing at most the calls of the last flush interval on a crash).
package usagestore

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/store"
	"github.com/fleetgate/fleetgate/internal/usage"
)

// Defaults of a Flusher.
const (
	DefaultBatch = 500
	DefaultMax   = 100_000
)

// Flusher writes a Recorder's pending usage to a Store.
type Flusher struct {
	Recorder *usage.Recorder
	Store    store.Store
	// Batch is the number of rows per transaction (default 500): a flush
	// never holds the store's write lock for long.
	Batch int
	// Max bounds the rows written by one Flush (default 100,000); the
	// rest waits for the next call.
	Max int

	mu sync.Mutex // one flush at a time, so deltas are never taken twice
}

// Flush writes pending usage in batches and returns the rows written. It
// is called by the app on a ticker and once at shutdown. On an error the
// batches already committed stay committed and the rest stays pending.
func (f *Flusher) Flush(ctx context.Context) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	batch, max := f.Batch, f.Max
	if batch <= 0 {
		batch = DefaultBatch
	}
	if max <= 0 {
		max = DefaultMax
	}
	ps := f.Recorder.PendingUse(max)
	written := 0
	for len(ps) > 0 {
		n := min(batch, len(ps))
		chunk := ps[:n]
		rows := make([]model.VersionUsage, n)
		for i, p := range chunk {
			rows[i] = toModel(p.UseEntry)
		}
		if err := f.Store.Update(ctx, func(tx store.Tx) error { return tx.AddVersionUsage(rows) }); err != nil {
			return written, err
		}
		f.Recorder.MarkFlushed(chunk)
		written += n
		ps = ps[n:]
	}
	return written, nil
}

func toModel(u usage.UseEntry) model.VersionUsage {
	return model.VersionUsage{TenantID: u.Tenant, VersionID: u.VersionID, Consumer: u.Consumer, Model: u.Model, Firmware: u.Firmware,
		Count: u.Count, LastSeen: u.LastSeen}
}

// Read returns the usage of a tenant's version ("" versionID: of every
// version) last seen at or after since: what the store holds plus what rec
// (nil: nothing) has not flushed yet, merged per consumer, model and
// firmware, most calls first.
func Read(tx store.Tx, rec *usage.Recorder, tenant, versionID string, since time.Time) ([]usage.UseEntry, error) {
	rows, err := tx.ListVersionUsage(tenant, store.UsageFilter{VersionID: versionID, Limit: -1})
	if err != nil {
		return nil, err
	}
	type key struct{ version, consumer, model, firmware string }
	at := map[key]int{}
	var out []usage.UseEntry
	add := func(u usage.UseEntry) {
		k := key{u.VersionID, u.Consumer, u.Model, u.Firmware}
		if i, ok := at[k]; ok {
			out[i].Count += u.Count
			if u.LastSeen.After(out[i].LastSeen) {
				out[i].LastSeen = u.LastSeen
			}
			return
		}
		at[k] = len(out)
		out = append(out, u)
	}
	for _, r := range rows {
		add(usage.UseEntry{Tenant: r.TenantID, VersionID: r.VersionID, Consumer: r.Consumer, Model: r.Model, Firmware: r.Firmware,
			Count: r.Count, LastSeen: r.LastSeen})
	}
	if rec != nil {
		for _, u := range rec.PendingFor(tenant, versionID) {
			add(u)
		}
	}
	kept := out[:0]
	for _, u := range out {
		if !u.LastSeen.Before(since) {
			kept = append(kept, u)
		}
	}
	sortEntries(kept)
	return kept, nil
}

// sortEntries orders by calls, then by identity, so answers are stable.
func sortEntries(es []usage.UseEntry) {
	sort.Slice(es, func(i, j int) bool {
		a, b := es[i], es[j]
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		if a.VersionID != b.VersionID {
			return a.VersionID < b.VersionID
		}
		if a.Consumer != b.Consumer {
			return a.Consumer < b.Consumer
		}
		if a.Model != b.Model {
			return a.Model < b.Model
		}
		return a.Firmware < b.Firmware
	})
}

// Loop flushes every interval until ctx ends; the caller flushes once more
// after the data plane stopped (Flush), so nothing counted is lost on a
// clean shutdown. onErr (may be nil) hears about failed flushes, which the
// next tick retries.
func (f *Flusher) Loop(ctx context.Context, every time.Duration, onErr func(error)) {
	if every <= 0 {
		every = 30 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := f.Flush(ctx); err != nil && onErr != nil && ctx.Err() == nil {
				onErr(err)
			}
		}
	}
}
