package ratelimit

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// testRedis connects to the test Redis (FLEETGATE_TEST_REDIS, host:port or
// a redis:// URL; default 127.0.0.1:6379) and returns a client and a key
// prefix unique to the test, whose keys are deleted at cleanup. It fails
// rather than skips when Redis is down: CI starts Redis, and a skipped
// cluster test would hide a broken shared limiter.
func testRedis(tb testing.TB) (redis.UniversalClient, string) {
	tb.Helper()
	addr := os.Getenv("FLEETGATE_TEST_REDIS")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	opts := &redis.Options{Addr: addr}
	if strings.Contains(addr, "://") {
		var err error
		if opts, err = redis.ParseURL(addr); err != nil {
			tb.Fatalf("FLEETGATE_TEST_REDIS=%q: %v", addr, err)
		}
	}
	client := redis.NewClient(opts)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		_ = client.Close()
		tb.Fatalf("Redis is not reachable at %s (set FLEETGATE_TEST_REDIS or start redis-server): %v", addr, err)
	}
	prefix := "fleetgate-test:ratelimit:" + strconv.FormatUint(rand.Uint64(), 36) + ":"
	tb.Cleanup(func() {
		ctx := context.Background()
		var keys []string
		iter := client.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			tb.Errorf("scan test keys: %v", err)
		}
		for len(keys) > 0 {
			n := min(len(keys), 500)
			if err := client.Del(ctx, keys[:n]...).Err(); err != nil {
				tb.Errorf("delete test keys: %v", err)
			}
			keys = keys[n:]
		}
		_ = client.Close()
	})
	return client, prefix
}

func TestRedisConformance(t *testing.T) {
	client, prefix := testRedis(t)
	Exercise(t, NewRedis(client, prefix))
}

func TestRedisKeyLifetime(t *testing.T) {
	client, prefix := testRedis(t)
	c := NewRedis(client, prefix)
	ctx := context.Background()
	lim := Limit{Rate: 10, Period: time.Second, Burst: 10}
	for _, tc := range []struct {
		name    string
		n       int
		wantKey bool
		wantTTL time.Duration // upper bound; the lower bound allows 1s of test time
	}{
		{name: "peek stores nothing", n: 0},
		{name: "n above burst stores nothing", n: 11},
		{name: "take expires when full plus slack", n: 3, wantKey: true, wantTTL: 300*time.Millisecond + expirySlack},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := "life/" + tc.name
			if _, err := c.Take(ctx, key, lim, tc.n, time.Now()); err != nil {
				t.Fatal(err)
			}
			ttl, err := client.PTTL(ctx, prefix+key).Result()
			if err != nil {
				t.Fatal(err)
			}
			if !tc.wantKey {
				if ttl != -2*time.Nanosecond && ttl != -2*time.Millisecond { // go-redis: -2 means no key
					t.Fatalf("key exists with TTL %v, want none", ttl)
				}
				return
			}
			if ttl > tc.wantTTL || ttl < tc.wantTTL-time.Second {
				t.Fatalf("TTL %v, want about %v", ttl, tc.wantTTL)
			}
		})
	}
}

func TestRedisScriptReloadedAfterFlush(t *testing.T) {
	client, prefix := testRedis(t)
	c := NewRedis(client, prefix)
	ctx := context.Background()
	lim := Limit{Rate: 10, Period: time.Second, Burst: 10}
	if _, err := c.Take(ctx, "flush", lim, 1, t0); err != nil {
		t.Fatal(err)
	}
	// SCRIPT FLUSH makes EVALSHA fail with NOSCRIPT; Take must fall back.
	if err := client.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	r, err := c.Take(ctx, "flush", lim, 1, t0)
	if err != nil || !r.Allowed || r.Remaining != 8 {
		t.Fatalf("after SCRIPT FLUSH: %+v, %v; want allowed with 8 remaining", r, err)
	}
}

func TestRedisErrors(t *testing.T) {
	client, prefix := testRedis(t)
	ctx := context.Background()
	down := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: time.Second, MaxRetries: -1})
	t.Cleanup(func() { _ = down.Close() })
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	for _, tc := range []struct {
		name    string
		counter *Redis
		ctx     context.Context
		limit   Limit
		wantIs  error  // checked with errors.Is when set
		wantMsg string // substring of the error
	}{
		{name: "server down", counter: NewRedis(down, prefix), ctx: ctx,
			limit: Limit{Rate: 1, Period: time.Second, Burst: 1}, wantMsg: "ratelimit: redis take"},
		{name: "canceled context", counter: NewRedis(client, prefix), ctx: canceled,
			limit: Limit{Rate: 1, Period: time.Second, Burst: 1}, wantIs: context.Canceled},
		{name: "limit beyond exact arithmetic", counter: NewRedis(client, prefix), ctx: ctx,
			limit: Limit{Rate: 1, Period: math.MaxInt64, Burst: 1000}, wantIs: ErrInvalidLimit, wantMsg: "precision"},
		{name: "rate beyond exact arithmetic", counter: NewRedis(client, prefix), ctx: ctx,
			limit: Limit{Rate: math.MaxInt64, Period: time.Second, Burst: 1}, wantIs: ErrInvalidLimit, wantMsg: "too large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.counter.Take(tc.ctx, "err", tc.limit, 1, t0)
			if err == nil {
				t.Fatal("Take succeeded, want an error")
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Fatalf("err = %v, want errors.Is %v", err, tc.wantIs)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.wantMsg)
			}
		})
	}
}

func TestRedisUnits(t *testing.T) {
	for _, tc := range []struct {
		name            string
		limit           Limit
		wantPerMs, want uint64
	}{
		{name: "10 per second", limit: Limit{Rate: 10, Period: time.Second, Burst: 10}, wantPerMs: 1, want: 100},
		{name: "3 per second", limit: Limit{Rate: 3, Period: time.Second, Burst: 3}, wantPerMs: 3, want: 1000},
		{name: "million per 30 days", limit: Limit{Rate: 1_000_000, Period: 30 * 24 * time.Hour, Burst: 1_000_000}, wantPerMs: 1, want: 2592},
		{name: "sub-millisecond period", limit: Limit{Rate: 100, Period: 1500 * time.Microsecond, Burst: 1}, wantPerMs: 200, want: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			perMs, unit, err := redisUnits(tc.limit)
			if err != nil || perMs != tc.wantPerMs || unit != tc.want {
				t.Fatalf("redisUnits = %d, %d, %v; want %d, %d", perMs, unit, err, tc.wantPerMs, tc.want)
			}
		})
	}
}
