package ratelimit

import (
	"testing"
	"time"
)

func TestHeaders(t *testing.T) {
	l10 := Limit{Rate: 10, Period: time.Second, Burst: 10}
	for _, tc := range []struct {
		name                                 string
		policy                               string
		limit                                Limit
		result                               Result
		wantPolicy, wantRateLimit, wantRetry string
	}{
		{
			name: "allowed", policy: "default", limit: l10,
			result:     Result{Allowed: true, Limit: 10, Remaining: 7, Reset: 300 * time.Millisecond},
			wantPolicy: `"default";q=10;w=1`, wantRateLimit: `"default";r=7;t=1`,
		},
		{
			name: "full bucket resets now", policy: "default", limit: l10,
			result:     Result{Allowed: true, Limit: 10, Remaining: 10},
			wantPolicy: `"default";q=10;w=1`, wantRateLimit: `"default";r=10;t=0`,
		},
		{
			name: "denied rounds retry up", policy: "per-consumer", limit: Limit{Rate: 100, Period: time.Minute, Burst: 20},
			result:     Result{Limit: 20, Reset: 12 * time.Second, RetryAfter: 600 * time.Millisecond},
			wantPolicy: `"per-consumer";q=20;w=60`, wantRateLimit: `"per-consumer";r=0;t=12`, wantRetry: "1",
		},
		{
			name: "retry after exact seconds", policy: "p", limit: l10,
			result:     Result{Limit: 10, Reset: 2 * time.Second, RetryAfter: 2 * time.Second},
			wantPolicy: `"p";q=10;w=1`, wantRateLimit: `"p";r=0;t=2`, wantRetry: "2",
		},
		{
			name: "tiny retry is at least one second", policy: "p", limit: l10,
			result:     Result{Limit: 10, Reset: time.Nanosecond, RetryAfter: time.Nanosecond},
			wantPolicy: `"p";q=10;w=1`, wantRateLimit: `"p";r=0;t=1`, wantRetry: "1",
		},
		{
			name: "daily quota", policy: "daily", limit: Limit{Rate: 10000, Period: 24 * time.Hour, Burst: 10000},
			result:     Result{Allowed: true, Limit: 10000, Remaining: 9999, Reset: 8640 * time.Millisecond},
			wantPolicy: `"daily";q=10000;w=86400`, wantRateLimit: `"daily";r=9999;t=9`,
		},
		{
			name: "sub-second window is one second", policy: "p", limit: Limit{Rate: 1, Period: time.Millisecond, Burst: 1},
			result:     Result{Allowed: true, Limit: 1, Reset: time.Millisecond},
			wantPolicy: `"p";q=1;w=1`, wantRateLimit: `"p";r=0;t=1`,
		},
		{
			name: "never has no retry-after", policy: "p", limit: Limit{Period: time.Second, Burst: 5},
			result:     Result{Limit: 5, Reset: Never, RetryAfter: Never},
			wantPolicy: `"p";q=5;w=1`, wantRateLimit: `"p";r=0;t=9223372037`,
		},
		{
			name: "name is escaped", policy: "a\"b\\c\nd\u00e9", limit: l10,
			result:     Result{Allowed: true, Limit: 10, Remaining: 1, Reset: time.Second},
			wantPolicy: `"a\"b\\c?d??";q=10;w=1`, wantRateLimit: `"a\"b\\c?d??";r=1;t=1`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, rl, ra := Headers(tc.policy, tc.limit, tc.result)
			if p != tc.wantPolicy || rl != tc.wantRateLimit || ra != tc.wantRetry {
				t.Fatalf("Headers =\n  %s\n  %s\n  %q\nwant\n  %s\n  %s\n  %q", p, rl, ra, tc.wantPolicy, tc.wantRateLimit, tc.wantRetry)
			}
		})
	}
}
