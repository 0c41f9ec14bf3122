package ratelimit

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// benchLimit never runs dry in a benchmark, so every Take does the full
// allowed path (refill, take, remaining, reset).
var benchLimit = Limit{Rate: 1_000_000_000, Period: time.Second, Burst: 1_000_000_000}

// BenchmarkLocalTake is one goroutine taking from one existing key.
func BenchmarkLocalTake(b *testing.B) {
	l := NewLocal(LocalOptions{})
	defer l.Close()
	ctx := context.Background()
	_, _ = l.Take(ctx, "consumer:42/op:getTemperature", benchLimit, 1, t0)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if _, err := l.Take(ctx, "consumer:42/op:getTemperature", benchLimit, 1, t0.Add(time.Duration(i))); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLocalTakeParallel is the data plane: every goroutine takes from
// its own existing key, so shards are shared but buckets are not.
func BenchmarkLocalTakeParallel(b *testing.B) {
	l := NewLocal(LocalOptions{})
	defer l.Close()
	ctx := context.Background()
	var next atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		key := "consumer:" + strconv.FormatInt(next.Add(1), 10) + "/op:getTemperature"
		i := 0
		for pb.Next() {
			i++
			if _, err := l.Take(ctx, key, benchLimit, 1, t0.Add(time.Duration(i))); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkLocalTakeParallelSameKey is the worst case: one hot key, every
// goroutine contending for the same shard lock.
func BenchmarkLocalTakeParallelSameKey(b *testing.B) {
	l := NewLocal(LocalOptions{})
	defer l.Close()
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			if _, err := l.Take(ctx, "hot", benchLimit, 1, t0.Add(time.Duration(i))); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkLocalTake1MKeys takes from 1,000,000 existing keys in turn, so
// nearly every Take misses the CPU caches. The cap is raised so all keys
// stay resident and the benchmark measures lookups, not eviction churn.
func BenchmarkLocalTake1MKeys(b *testing.B) {
	const n = 1_000_000
	l := NewLocal(LocalOptions{MaxBuckets: 2 * n})
	defer l.Close()
	ctx := context.Background()
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "consumer:" + strconv.Itoa(i) + "/op:getTemperature"
		_, _ = l.Take(ctx, keys[i], benchLimit, 1, t0)
	}
	if st := l.Stats(); st.Buckets != n {
		b.Fatalf("prefill kept %d buckets, want %d", st.Buckets, n)
	}
	var seed atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		// Each goroutine strides through the keys from its own offset.
		i := int(seed.Add(1) * 7919)
		for pb.Next() {
			i += 104729 // prime stride: consecutive takes hit unrelated keys
			if _, err := l.Take(ctx, keys[i%n], benchLimit, 1, t0.Add(time.Duration(i))); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkLocalTakeNewKeysAtCap is a flood of never-seen keys against a
// full Local: every Take inserts and evicts. It allocates (the key copy and
// map growth), unlike the existing-key path.
func BenchmarkLocalTakeNewKeysAtCap(b *testing.B) {
	l := NewLocal(LocalOptions{MaxBuckets: 10_000, SweepInterval: -1})
	defer l.Close()
	ctx := context.Background()
	keys := make([]string, 1<<20)
	for i := range keys {
		keys[i] = "flood:" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		_, _ = l.Take(ctx, keys[i&(len(keys)-1)], benchLimit, 1, t0)
	}
}

func BenchmarkRedisTake(b *testing.B) {
	client, prefix := testRedis(b)
	c := NewRedis(client, prefix)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if _, err := c.Take(ctx, "bench", benchLimit, 1, t0.Add(time.Duration(i)*time.Millisecond)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHeaders(b *testing.B) {
	r := Result{Allowed: false, Limit: 100, Remaining: 0, Reset: 1500 * time.Millisecond, RetryAfter: 15 * time.Millisecond}
	l := Limit{Rate: 100, Period: time.Minute, Burst: 100}
	b.ReportAllocs()
	for b.Loop() {
		_, _, _ = Headers("per-consumer", l, r)
	}
}
