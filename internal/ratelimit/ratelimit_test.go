package ratelimit

import (
	"errors"
	"math"
	"testing"
	"time"
)

func TestLimitValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		limit   Limit
		wantErr string // "" when valid
	}{
		{name: "ok", limit: Limit{Rate: 10, Period: time.Second, Burst: 10}},
		{name: "rate zero is valid", limit: Limit{Period: time.Second, Burst: 1}},
		{name: "negative rate", limit: Limit{Rate: -1, Period: time.Second, Burst: 1}, wantErr: "ratelimit: invalid limit: rate -1 is negative"},
		{name: "zero period", limit: Limit{Rate: 1, Burst: 1}, wantErr: "ratelimit: invalid limit: period 0s is not positive"},
		{name: "zero burst", limit: Limit{Rate: 1, Period: time.Second}, wantErr: "ratelimit: invalid limit: burst 0 is less than 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.limit.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || err.Error() != tc.wantErr || !errors.Is(err, ErrInvalidLimit) {
				t.Fatalf("Validate() = %v, want %q wrapping ErrInvalidLimit", err, tc.wantErr)
			}
		})
	}
}

// TestBucketExtremes drives the integer arithmetic at its edges, in
// nanoseconds, where the conformance suite (whole milliseconds) cannot go.
func TestBucketExtremes(t *testing.T) {
	const t0 = int64(1_900_000_000_000_000_000) // 2030, Unix ns
	type step struct {
		dt   int64 // ns after t0
		n    int
		want Result
	}
	for _, tc := range []struct {
		name  string
		limit Limit
		steps []step
	}{
		{
			name:  "max period and burst do not overflow",
			limit: Limit{Rate: 1, Period: math.MaxInt64, Burst: math.MaxInt64},
			steps: []step{
				{n: math.MaxInt64, want: Result{Allowed: true, Limit: math.MaxInt64, Remaining: 0, Reset: Never}},
				{dt: math.MaxInt64 - t0, n: 1, want: Result{Limit: math.MaxInt64, Reset: Never, RetryAfter: time.Duration(t0)}},
			},
		},
		{
			name:  "max rate refills in a nanosecond",
			limit: Limit{Rate: math.MaxInt64, Period: time.Nanosecond, Burst: 3},
			steps: []step{
				{n: 3, want: Result{Allowed: true, Limit: 3, Reset: 1}},
				{n: 1, want: Result{Limit: 3, Reset: 1, RetryAfter: 1}},
				{dt: 1, n: 3, want: Result{Allowed: true, Limit: 3, Reset: 1}},
			},
		},
		{
			name:  "one token per period sub-nanosecond remainders accumulate exactly",
			limit: Limit{Rate: 7, Period: 100, Burst: 7},
			steps: []step{
				{n: 7, want: Result{Allowed: true, Limit: 7, Reset: 100}},
				// 7 tokens per 100ns: 1 token every 14.2857ns.
				{dt: 14, n: 1, want: Result{Limit: 7, Reset: 86, RetryAfter: 1}},
				{dt: 15, n: 1, want: Result{Allowed: true, Limit: 7, Reset: 100}},
				{dt: 100, n: 0, want: Result{Allowed: true, Limit: 7, Remaining: 6, Reset: 15}},
				{dt: 115, n: 0, want: Result{Allowed: true, Limit: 7, Remaining: 7}},
			},
		},
		{
			name:  "long idle after drain is exactly full",
			limit: Limit{Rate: 1_000_000, Period: 30 * 24 * time.Hour, Burst: 1_000_000},
			steps: []step{
				{n: 1_000_000, want: Result{Allowed: true, Limit: 1_000_000, Reset: 30 * 24 * time.Hour}},
				{dt: int64(200 * 365 * 24 * time.Hour), n: 1, want: Result{Allowed: true, Limit: 1_000_000, Remaining: 999_999, Reset: 2_592_000_000}},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBucket(tc.limit, t0)
			for i, st := range tc.steps {
				if got := b.take(tc.limit, st.n, t0+st.dt); got != st.want {
					t.Fatalf("step %d: got %+v, want %+v", i, got, st.want)
				}
			}
		})
	}
}

func TestBucketRebase(t *testing.T) {
	for _, tc := range []struct {
		name       string
		first      Limit
		take       int
		advance    time.Duration // between the take and the limit change
		second     Limit
		wantRemain int
	}{
		{name: "longer period", first: Limit{Rate: 10, Period: time.Second, Burst: 10}, take: 6,
			second: Limit{Rate: 10, Period: time.Minute, Burst: 10}, wantRemain: 4},
		{name: "partial token debt rounds up", first: Limit{Rate: 3, Period: time.Second, Burst: 3}, take: 3,
			advance: 500 * time.Millisecond,
			// 0.5s later 1.5 tokens are back; 1.5 owed rounds up to 2.
			second: Limit{Rate: 3, Period: 2 * time.Second, Burst: 3}, wantRemain: 1},
		{name: "smaller burst caps the debt", first: Limit{Rate: 10, Period: time.Second, Burst: 10}, take: 10,
			second: Limit{Rate: 1, Period: time.Hour, Burst: 2}, wantRemain: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const t0 = int64(1_900_000_000_000_000_000)
			b := newBucket(tc.first, t0)
			if r := b.take(tc.first, tc.take, t0); !r.Allowed {
				t.Fatalf("first take denied: %+v", r)
			}
			at := t0 + int64(tc.advance)
			b.take(tc.first, 0, at)
			r := b.take(tc.second, 0, at)
			if r.Remaining != tc.wantRemain {
				t.Fatalf("remaining after limit change = %d, want %d (%+v)", r.Remaining, tc.wantRemain, r)
			}
			if r.Remaining > tc.second.Burst {
				t.Fatalf("remaining %d above burst %d", r.Remaining, tc.second.Burst)
			}
		})
	}
}

func TestU128DivCeil(t *testing.T) {
	for _, tc := range []struct {
		name string
		x    u128
		d    uint64
		want int64
	}{
		{name: "exact", x: u128{lo: 100}, d: 10, want: 10},
		{name: "round up", x: u128{lo: 101}, d: 10, want: 11},
		{name: "zero", x: u128{}, d: 7, want: 0},
		{name: "high word saturates", x: u128{hi: 1}, d: 1, want: math.MaxInt64},
		{name: "quotient above int64 saturates", x: u128{lo: math.MaxUint64}, d: 1, want: math.MaxInt64},
		{name: "max uint64 quotient with remainder saturates", x: u128{hi: 1, lo: 0}, d: 2, want: math.MaxInt64},
		{name: "just fits", x: u128{lo: math.MaxInt64 - 1}, d: 1, want: math.MaxInt64 - 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.x.divCeil(tc.d); got != tc.want {
				t.Fatalf("divCeil = %d, want %d", got, tc.want)
			}
		})
	}
}
