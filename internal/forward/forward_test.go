package forward

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestBatchingRetriesAndDrops(t *testing.T) {
	var mu sync.Mutex
	var got []Message
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable) // first delivery fails: retried
			return
		}
		var b struct{ Messages []Message }
		_ = json.NewDecoder(r.Body).Decode(&b)
		mu.Lock()
		got = append(got, b.Messages...)
		mu.Unlock()
	}))
	defer srv.Close()
	refuse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadRequest) }))
	defer refuse.Close()
	f := New(Options{QueueSize: 8, BatchSize: 3, FlushEvery: 20 * time.Millisecond, Backoff: 5 * time.Millisecond})
	now := time.Now()
	for i := 0; i < 5; i++ {
		if !f.Enqueue([]string{srv.URL}, "fleet/d1/telemetry", "app:d1", []byte(`{"temp":21}`), now) {
			t.Fatalf("message %d dropped below the queue size", i)
		}
	}
	f.Enqueue([]string{srv.URL}, "fleet/d1/raw", "app:d1", []byte{0xff, 0x00}, now)
	f.Enqueue([]string{refuse.URL}, "fleet/d1/telemetry", "app:d1", []byte(`{}`), now)
	// The queue holds 8: a burst beyond it is dropped, not blocking.
	dropped := 0
	for i := 0; i < 50; i++ {
		if !f.Enqueue([]string{srv.URL}, "fleet/d1/telemetry", "app:d1", []byte(`{}`), now) {
			dropped++
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.Start(ctx)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		st := f.Stats()
		if st.Delivered+st.Failed+st.Dropped >= uint64(7+50) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	f.Wait()
	st := f.Stats()
	if dropped == 0 || st.Dropped != uint64(dropped) {
		t.Fatalf("drops: enqueue said %d, stats %d", dropped, st.Dropped)
	}
	if st.Failed != 1 || st.Retries == 0 {
		t.Fatalf("the 400 target must fail once without retries and the 503 be retried: %+v", st)
	}
	mu.Lock()
	defer mu.Unlock()
	if uint64(len(got)) != st.Delivered || st.Delivered < 6 {
		t.Fatalf("delivered %d, received %d", st.Delivered, len(got))
	}
	raw := 0
	for _, m := range got {
		if m.Raw != nil {
			raw++
		}
	}
	if raw != 1 {
		t.Fatalf("non-JSON payloads travel as base64: %d", raw)
	}
}
