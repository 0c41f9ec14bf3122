package usage

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestShadowBoundedAndCounted(t *testing.T) {
	r := New()
	now := time.Now()
	for i := 0; i < maxShadow+500; i++ {
		r.Shadow("http", "GET", fmt.Sprintf("/probe/%d", i), "anonymous", now)
	}
	r.Shadow("http", "GET", "/probe/1", "anonymous", now)
	es := r.ShadowEntries()
	if len(es) != maxShadow+1 {
		t.Fatalf("entries: %d, want %d (cap + overflow)", len(es), maxShadow+1)
	}
	if es[0].Path != "(overflow)" || es[0].Count != 500 {
		t.Fatalf("overflow entry: %+v", es[0])
	}
	for _, e := range es {
		if e.Path == "/probe/1" && e.Count != 2 {
			t.Fatalf("repeat count: %+v", e)
		}
	}
}

func TestUseConcurrent(t *testing.T) {
	r := New()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				r.Use("acme", "v1", "app:a", "", "", time.Now())
			}
		}()
	}
	wg.Wait()
	es := r.UseEntries()
	if len(es) != 1 || es[0].Count != 8000 {
		t.Fatalf("use: %+v", es)
	}
}
