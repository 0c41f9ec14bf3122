package usagestore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/store"
	"github.com/fleetgate/fleetgate/internal/store/sqlite"
	"github.com/fleetgate/fleetgate/internal/usage"
	"github.com/fleetgate/fleetgate/internal/usage/usagestore"
)

var ctx = context.Background()

func open(t *testing.T, dir string) store.Store {
	t.Helper()
	s, err := sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func read(t *testing.T, s store.Store, rec *usage.Recorder, version string, since time.Time) []usage.UseEntry {
	t.Helper()
	var out []usage.UseEntry
	if err := s.View(ctx, func(tx store.Tx) (err error) {
		out, err = usagestore.Read(tx, rec, "acme", version, since)
		return
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func render(es []usage.UseEntry) string {
	out := ""
	for _, e := range es {
		out += fmt.Sprintf("%s %s %s/%s %d|", e.VersionID, e.Consumer, e.Model, e.Firmware, e.Count)
	}
	return out
}

// TestSurvivesReopen: usage flushed to the SQLite file is there after the
// store is closed and opened again, with a fresh (empty) recorder.
func TestSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	if err := s.Update(ctx, func(tx store.Tx) error {
		return tx.CreateTenant(&model.Tenant{ID: "acme", CreatedAt: time.Now(), UpdatedAt: time.Now()})
	}); err != nil {
		t.Fatal(err)
	}
	rec := usage.New()
	now := time.Now().UTC().Truncate(time.Microsecond)
	for i := 0; i < 5; i++ {
		rec.Use("acme", "v1", "app:billing", "", "", now)
	}
	rec.Use("acme", "v1", "device:m-1", "em-300", "1.2.0", now)
	rec.Use("globex", "v1", "app:other", "", "", now) // another tenant
	f := &usagestore.Flusher{Recorder: rec, Store: s}
	if n, err := f.Flush(ctx); err != nil || n != 3 {
		t.Fatalf("flush: %d rows, %v", n, err)
	}
	if n, err := f.Flush(ctx); err != nil || n != 0 {
		t.Fatalf("second flush with nothing new: %d rows, %v", n, err)
	}
	// Calls after the flush are pending: Read adds them to the store's.
	rec.Use("acme", "v1", "app:billing", "", "", now.Add(time.Second))
	if got, want := render(read(t, s, rec, "v1", time.Time{})), "v1 app:billing / 6|v1 device:m-1 em-300/1.2.0 1|"; got != want {
		t.Fatalf("store + pending:\n got %s\nwant %s", got, want)
	}
	if got, want := render(read(t, s, nil, "v1", time.Time{})), "v1 app:billing / 5|v1 device:m-1 em-300/1.2.0 1|"; got != want {
		t.Fatalf("store only:\n got %s\nwant %s", got, want)
	}
	if _, err := f.Flush(ctx); err != nil { // the shutdown flush
		t.Fatal(err)
	}
	s.Close()

	s = open(t, dir)
	defer s.Close()
	got := read(t, s, usage.New(), "", time.Time{})
	if want := "v1 app:billing / 6|v1 device:m-1 em-300/1.2.0 1|"; render(got) != want {
		t.Fatalf("after reopen:\n got %s\nwant %s", render(got), want)
	}
	if !got[0].LastSeen.Equal(now.Add(time.Second)) {
		t.Fatalf("last seen after reopen: %v, want %v", got[0].LastSeen, now.Add(time.Second))
	}
	if got := read(t, s, nil, "v1", now.Add(time.Millisecond)); render(got) != "v1 app:billing / 6|" {
		t.Fatalf("since filter: %s", render(got))
	}
}

func TestBoundedBatches(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	rec := usage.New()
	now := time.Now()
	for i := 0; i < 12; i++ {
		rec.Use("acme", "v1", fmt.Sprintf("app:%02d", i), "", "", now)
	}
	f := &usagestore.Flusher{Recorder: rec, Store: s, Batch: 5, Max: 7}
	for i, want := range []int{7, 5, 0} {
		if n, err := f.Flush(ctx); err != nil || n != want {
			t.Fatalf("flush %d: %d rows, %v; want %d", i, n, err, want)
		}
	}
	if got := read(t, s, nil, "v1", time.Time{}); len(got) != 12 {
		t.Fatalf("rows: %d", len(got))
	}
}

// TestFailedFlushKeepsPending: a flush the store refuses loses nothing.
func TestFailedFlushKeepsPending(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	rec := usage.New()
	rec.Use("acme", "v1", "app:a", "", "", time.Now())
	s.Close()
	f := &usagestore.Flusher{Recorder: rec, Store: s}
	if _, err := f.Flush(ctx); err == nil {
		t.Fatal("flush to a closed store succeeded")
	}
	if p := rec.PendingUse(0); len(p) != 1 || p[0].Count != 1 {
		t.Fatalf("pending after a failed flush: %+v", p)
	}
	s = open(t, dir)
	defer s.Close()
	f.Store = s
	if n, err := f.Flush(ctx); err != nil || n != 1 {
		t.Fatalf("retry: %d, %v", n, err)
	}
}

// TestConcurrentRecordAndFlush: every call recorded while flushes run is
// persisted exactly once (run with -race).
func TestConcurrentRecordAndFlush(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	rec := usage.New()
	f := &usagestore.Flusher{Recorder: rec, Store: s, Batch: 3}
	const workers, calls = 4, 500
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < calls; i++ {
				rec.Use("acme", "v1", fmt.Sprintf("app:%d", i%7), "", "", time.Now())
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	deadline := time.After(60 * time.Second) // hang guard
	for flushing := true; flushing; {
		select {
		case <-done:
			flushing = false
		case <-deadline:
			t.Fatal("workers did not finish")
		default:
			if _, err := f.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := f.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, u := range read(t, s, nil, "v1", time.Time{}) {
		total += u.Count
	}
	if total != workers*calls {
		t.Fatalf("persisted %d calls, recorded %d", total, workers*calls)
	}
}

// BenchmarkFlush measures flushing 10,000 pending entries to SQLite by
// batch size: compare the ratio between sizes within one run.
func BenchmarkFlush(b *testing.B) {
	for _, batch := range []int{50, 500} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			s, err := sqlite.Open(ctx, b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			rec := usage.New()
			f := &usagestore.Flusher{Recorder: rec, Store: s, Batch: batch}
			now := time.Now()
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				for j := 0; j < 10000; j++ {
					rec.Use("acme", "v1", fmt.Sprintf("app:%05d", j), "", "", now)
				}
				if n, err := f.Flush(ctx); err != nil || n != 10000 {
					b.Fatalf("flush: %d, %v", n, err)
				}
			}
		})
	}
}
