package devobs

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/internal/policy"
)

func device(tenant, id string) *policy.Principal {
	return &policy.Principal{Kind: "device", Tenant: tenant, ID: id, Subject: "device:" + id}
}

func TestSeenCollectCommit(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	type step struct {
		name     string
		seen     []func(r *Recorder)
		commit   bool
		want     map[string]string // device -> firmware change ("" none); nil: no update expected
		wantLast map[string]time.Time
	}
	steps := []step{
		{name: "first sightings", seen: []func(*Recorder){
			func(r *Recorder) { r.Seen(device("a", "d1"), "", t0) },
			func(r *Recorder) { r.Seen(device("a", "d2"), "1.0.0", t0) },
			func(r *Recorder) { r.Seen(device("b", "d1"), "not-a-version", t0) },
			func(r *Recorder) {
				r.Seen(&policy.Principal{Kind: "application", Tenant: "a", ID: "billing"}, "1.0.0", t0)
			},
			func(r *Recorder) { r.Seen(nil, "1.0.0", t0) },
		}, commit: false, want: map[string]string{"a/d1": "", "a/d2": "1.0.0", "b/d1": ""},
			wantLast: map[string]time.Time{"a/d1": t0, "a/d2": t0, "b/d1": t0}},
		{name: "uncommitted updates are collected again", commit: true, want: map[string]string{"a/d1": "", "a/d2": "1.0.0", "b/d1": ""}},
		{name: "nothing new after commit", commit: true, want: map[string]string{}},
		{name: "same firmware is no change, older time does not go back", seen: []func(*Recorder){
			func(r *Recorder) { r.Seen(device("a", "d2"), "1.0.0", t0.Add(time.Second)) },
			func(r *Recorder) { r.Seen(device("a", "d1"), "", t0.Add(-time.Hour)) },
		}, commit: true, want: map[string]string{"a/d2": ""}, wantLast: map[string]time.Time{"a/d2": t0.Add(time.Second)}},
		{name: "new firmware", seen: []func(*Recorder){
			func(r *Recorder) { r.Seen(device("a", "d2"), "1.1.0", t0.Add(2*time.Second)) },
		}, commit: true, want: map[string]string{"a/d2": "1.1.0"}},
	}
	r := New(0, 0)
	for _, st := range steps {
		for _, f := range st.seen {
			f(r)
		}
		us := r.Collect()
		got := map[string]string{}
		for _, u := range us {
			got[u.Tenant+"/"+u.Device] = u.Firmware
			if w, ok := st.wantLast[u.Tenant+"/"+u.Device]; ok && !u.LastSeen.Equal(w) {
				t.Errorf("%s: %s/%s last seen %v, want %v", st.name, u.Tenant, u.Device, u.LastSeen, w)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(st.want) {
			t.Errorf("%s: updates %v, want %v", st.name, got, st.want)
		}
		if st.commit {
			r.Commit(us)
		}
	}
	if s := r.Stats(); s.BadFirmware != 1 || s.Tracked != 3 {
		t.Errorf("stats %+v, want 1 malformed firmware and 3 devices", s)
	}
	// Evict forgets flushed, idle devices only.
	r.Seen(device("a", "d1"), "", t0.Add(time.Hour)) // pending: kept
	if n := r.Evict(time.Minute, t0.Add(time.Hour)); n != 2 {
		t.Errorf("evicted %d, want 2 (a/d2 and b/d1)", n)
	}
	if us := r.Collect(); len(us) != 1 || us[0].Device != "d1" || us[0].Tenant != "a" {
		t.Errorf("after evict: %+v", us)
	}
}

func TestSeenCap(t *testing.T) {
	r := New(2, 0)
	now := time.Now()
	for i := 0; i < 5; i++ {
		r.Seen(device("a", fmt.Sprint("d", i)), "", now)
	}
	if s := r.Stats(); s.Tracked != 2 || s.Dropped != 3 {
		t.Fatalf("stats %+v, want 2 tracked and 3 dropped", s)
	}
}

// TestSeenConcurrent runs sightings, flushes and evictions together (for
// -race) and checks that the last sighting of every device is collected.
func TestSeenConcurrent(t *testing.T) {
	r := New(0, 0)
	base := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				r.Seen(device("a", fmt.Sprint("d", i%50)), fmt.Sprintf("1.0.%d", i%3), base.Add(time.Duration(i)*time.Microsecond))
			}
		}()
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 10000; i++ {
			select {
			case <-stop:
				return
			default:
			}
			r.Commit(r.Collect())
			r.Evict(time.Hour, base)
		}
	}()
	wg.Wait()
	close(stop)
	<-done
	// Whatever was committed concurrently, a final sighting is collected.
	for i := 0; i < 50; i++ {
		r.Seen(device("a", fmt.Sprint("d", i)), "", base.Add(time.Hour))
	}
	if us := r.Collect(); len(us) != 50 {
		t.Fatalf("collected %d devices, want 50", len(us))
	}
}

func TestAttempts(t *testing.T) {
	r := New(0, 2)
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	rev := policy.Refusal{Kind: policy.RefusedRevokedCertificate, Tenant: "a", Subject: "device:d1", Credential: "certificate 0f"}
	r.RecordRefusal(rev, "tls", "10.0.0.1", t0)
	r.RecordRefusal(rev, "tls", "10.0.0.2", t0.Add(time.Second))
	r.RecordRefusal(policy.Refusal{Kind: policy.RefusedInactiveDevice, Tenant: "a", Subject: "device:d2", Credential: "certificate 10", Status: "suspended"}, "tls", "10.0.0.3", t0)
	r.RecordRefusal(policy.Refusal{Kind: policy.RefusedRevokedAPIKey, Tenant: "b", Subject: "app:x", Credential: "api_key:k"}, "http", "10.0.0.4", t0) // over the cap
	got := r.Attempts("a")
	if len(got) != 2 {
		t.Fatalf("attempts %+v, want 2", got)
	}
	if a := got[0]; a.Subject != "device:d1" || a.Count != 2 || !a.First.Equal(t0) || !a.Last.Equal(t0.Add(time.Second)) || a.Remote != "10.0.0.2" {
		t.Errorf("most recent first, counted: %+v", a)
	}
	if a := got[1]; a.Status != "suspended" || a.Kind != policy.RefusedInactiveDevice {
		t.Errorf("inactive device: %+v", a)
	}
	if len(r.Attempts("b")) != 0 || r.Stats().AttemptsTotal != 4 {
		t.Errorf("cap not applied: %+v %+v", r.Attempts("b"), r.Stats())
	}
}

// BenchmarkSeen is the hot path: an authenticated device request on a
// tracked device, with and without an unchanged firmware header. Target:
// no allocation.
func BenchmarkSeen(b *testing.B) {
	r := New(0, 0)
	ps := make([]*policy.Principal, 1000)
	for i := range ps {
		ps[i] = device("tenant", fmt.Sprint("meter-", i))
		r.Seen(ps[i], "1.4.2", time.Now())
	}
	for _, fw := range []string{"", "1.4.2"} {
		b.Run("firmware="+fw, func(b *testing.B) {
			now := time.Now()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					r.Seen(ps[i%len(ps)], fw, now)
					i++
				}
			})
		})
	}
}
