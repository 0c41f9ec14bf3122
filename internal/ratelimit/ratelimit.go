// Package ratelimit implements token-bucket rate limits and quotas for the
// data plane: one bucket per key (a consumer, an operation, or both), taken
// from on every request after the policy engine has chosen the limit.
//
// The Counter interface is the seam between the limiter and where its
// counters live: Local keeps them in this process (one node), Redis keeps
// them in a Redis server or cluster so every gateway node shares them. Both
// implement the same arithmetic and both pass the conformance suite in
// Exercise.
//
// # Arithmetic
//
// A bucket is kept as a token debt: how far it is from full. Debt is an
// integer counted in 1/Period-ths of a token, so that a token costs Period
// units and every nanosecond of elapsed time refills Rate units. All of it is
// exact integer arithmetic (128-bit where a product can exceed 64 bits), so
// there is no float drift however long a bucket lives, and limits such as
// 1,000,000 per 30 days or 1 per 100 years cannot overflow. An absent bucket
// and a full bucket are the same thing, which is what makes idle buckets free
// to drop.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"time"
)

// Never is the duration reported when a state will not be reached within any
// representable time: RetryAfter when the request can never be granted (n
// larger than the burst, or a rate of zero), and Reset when a bucket will not
// be full again within about 292 years.
const Never = time.Duration(math.MaxInt64)

var (
	// ErrInvalidLimit is returned (wrapped, with the offending field) for a
	// Limit that Validate rejects or that a Counter cannot represent.
	ErrInvalidLimit = errors.New("ratelimit: invalid limit")
	// ErrInvalidCount is returned when the number of tokens to take is
	// negative.
	ErrInvalidCount = errors.New("ratelimit: invalid token count")
)

// Limit is a token bucket: Rate tokens are added every Period, up to Burst.
// A quota is the same thing with a long period and a burst equal to the
// rate, e.g. {Rate: 10000, Period: 24 * time.Hour, Burst: 10000}; unlike a
// fixed calendar window it refills continuously, so it never allows
// 2×quota across a window boundary.
type Limit struct {
	// Rate is the number of tokens added per Period. Zero denies every
	// request (a kill switch that needs no special case in policy).
	Rate int
	// Period is the refill window; it must be positive.
	Period time.Duration
	// Burst is the bucket size, the most tokens one can hold and so the
	// most requests that can pass at once; it must be at least 1.
	Burst int
}

// Validate reports whether l can be used with a Counter. Config loaders
// should call it when a policy is loaded, so that a bad limit is reported
// with its location instead of on the first request.
func (l Limit) Validate() error {
	switch {
	case l.Rate < 0:
		return fmt.Errorf("%w: rate %d is negative", ErrInvalidLimit, l.Rate)
	case l.Period <= 0:
		return fmt.Errorf("%w: period %v is not positive", ErrInvalidLimit, l.Period)
	case l.Burst < 1:
		return fmt.Errorf("%w: burst %d is less than 1", ErrInvalidLimit, l.Burst)
	}
	return nil
}

// Result is the outcome of one Take.
type Result struct {
	// Allowed reports whether the tokens were taken.
	Allowed bool
	// Limit is the bucket size (Burst), for the RateLimit-Policy header.
	Limit int
	// Remaining is the number of whole tokens left after this request
	// (rounded down); never negative.
	Remaining int
	// Reset is the time until the bucket is full again (0 when full, Never
	// when that is beyond representable time).
	Reset time.Duration
	// RetryAfter is, when !Allowed, the time until n tokens are available,
	// or Never when they never will be (n > Burst, or Rate 0). It is 0 when
	// Allowed.
	RetryAfter time.Duration
}

// Counter stores token buckets. Implementations must be safe for concurrent
// use, must apply each Take atomically (concurrent takers on one key never
// get more than the bucket holds), and must pass Exercise.
type Counter interface {
	// Take tries to take n tokens from the bucket named key under limit l
	// at time now, and reports the bucket's state after the attempt.
	//
	// The bucket is created full on first use. n == 0 takes nothing and is
	// allowed (a peek, e.g. to fill headers), except under Rate 0, which
	// denies everything. n > l.Burst is never allowed and takes nothing;
	// its RetryAfter is Never. A denied Take takes nothing.
	//
	// now comes from the caller, not from the counter, so that tests are
	// deterministic and cluster nodes agree on one clock. A now earlier than
	// one already seen for the key adds no tokens (no negative refill) and
	// the returned durations include the gap.
	//
	// A key names one bucket under one Limit: callers should put the
	// policy name in the key. If the limit for a key changes, the bucket
	// keeps its debt in whole tokens, rounded up.
	//
	// Errors are ErrInvalidLimit, ErrInvalidCount or a storage error; on
	// error the caller decides whether to fail open or closed.
	Take(ctx context.Context, key string, l Limit, n int, now time.Time) (Result, error)
}

// check validates the arguments of Take. It is on the hot path, so the
// common case is three comparisons and no allocation.
func check(l Limit, n int) error {
	if l.Rate < 0 || l.Period <= 0 || l.Burst < 1 {
		return l.Validate()
	}
	if n < 0 {
		return fmt.Errorf("%w: %d", ErrInvalidCount, n)
	}
	return nil
}

// denyAll is the answer under Rate 0: no bucket is touched or created.
func denyAll(l Limit) Result {
	return Result{Limit: l.Burst, Reset: Never, RetryAfter: Never}
}

// u128 is an unsigned 128-bit integer; debts and capacities need it because
// Burst × Period exceeds 64 bits for long quotas (10^6 per 30 days is
// 2.6×10^21 units).
type u128 struct{ hi, lo uint64 }

func mul64(a, b uint64) u128 {
	hi, lo := bits.Mul64(a, b)
	return u128{hi, lo}
}

func (x u128) add(y u128) u128 {
	lo, c := bits.Add64(x.lo, y.lo, 0)
	hi, _ := bits.Add64(x.hi, y.hi, c)
	return u128{hi, lo}
}

// sub returns x-y; the caller guarantees y <= x.
func (x u128) sub(y u128) u128 {
	lo, b := bits.Sub64(x.lo, y.lo, 0)
	hi, _ := bits.Sub64(x.hi, y.hi, b)
	return u128{hi, lo}
}

func (x u128) less(y u128) bool {
	return x.hi < y.hi || (x.hi == y.hi && x.lo < y.lo)
}

// divFloor returns floor(x/d); the caller guarantees the quotient fits in 64
// bits (x.hi < d).
func (x u128) divFloor(d uint64) uint64 {
	q, _ := bits.Div64(x.hi, x.lo, d)
	return q
}

// divCeil returns ceil(x/d) as nanoseconds, saturated at math.MaxInt64
// (Never) instead of overflowing.
func (x u128) divCeil(d uint64) int64 {
	if x.hi >= d {
		return math.MaxInt64
	}
	q, r := bits.Div64(x.hi, x.lo, d)
	if q >= math.MaxInt64 {
		return math.MaxInt64
	}
	if r != 0 {
		q++
	}
	return int64(q)
}

// addSat returns a+b for b >= 0, saturated at math.MaxInt64.
func addSat(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// bucket is the state of one token bucket. The zero value is not valid; use
// newBucket.
type bucket struct {
	debt   u128  // tokens missing from full, in units of 1/period of a token
	last   int64 // latest time seen (Unix ns); time never runs backwards past it
	period int64 // the Period that debt is counted in
	fullAt int64 // when debt reaches zero (Unix ns, saturating); for sweeping
}

// newBucket returns a full bucket as of time t.
func newBucket(l Limit, t int64) bucket {
	return bucket{last: t, period: int64(l.Period), fullAt: t}
}

// take applies one Take at time t (Unix ns) to b. l must be valid with
// Rate > 0 and n >= 0. It never allocates.
func (b *bucket) take(l Limit, n int, t int64) Result {
	p, r, burst := uint64(l.Period), uint64(l.Rate), uint64(l.Burst)
	if b.period != int64(p) {
		b.rebase(p, burst)
	}
	// Refill only forwards. An earlier t (clock stepped back, or a caller
	// that read the clock before another one did) is treated as b.last, and
	// lag is added to the durations we report so they stay relative to t.
	var lag int64
	if t > b.last {
		refill := mul64(uint64(t-b.last), r)
		if b.debt.less(refill) {
			b.debt = u128{}
		} else {
			b.debt = b.debt.sub(refill)
		}
		b.last = t
	} else {
		lag = b.last - t
	}
	capacity := mul64(burst, p)
	if capacity.less(b.debt) { // the burst shrank since the last take
		b.debt = capacity
	}
	avail := capacity.sub(b.debt)

	res := Result{Limit: l.Burst}
	if need := uint64(n); need > burst {
		res.RetryAfter = Never
	} else if cost := mul64(need, p); !avail.less(cost) {
		res.Allowed = true
		b.debt = b.debt.add(cost)
		avail = avail.sub(cost)
	} else {
		res.RetryAfter = time.Duration(addSat(lag, cost.sub(avail).divCeil(r)))
	}
	res.Remaining = int(avail.divFloor(p)) // <= burst, so it fits
	reset := b.debt.divCeil(r)
	b.fullAt = addSat(b.last, reset)
	res.Reset = time.Duration(addSat(lag, reset))
	return res
}

// rebase converts b's debt to a new period, keeping the debt in whole tokens
// rounded up so that a limit change never grants extra tokens.
func (b *bucket) rebase(p, burst uint64) {
	old := uint64(b.period)
	tokens := burst
	if b.debt.hi < old {
		q, rem := bits.Div64(b.debt.hi, b.debt.lo, old)
		if rem != 0 {
			q++
		}
		tokens = min(q, burst)
	}
	b.debt = mul64(tokens, p)
	b.period = int64(p)
}
