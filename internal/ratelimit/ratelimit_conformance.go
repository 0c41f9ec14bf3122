package ratelimit

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Exercise is the conformance suite every Counter must pass. It uses keys
// under "exercise/<random>/", so a shared store only needs a prefix that no
// other test uses; the caller removes the keys afterwards if the store
// persists them.
//
// Durations are compared allowing a counter to round up to its clock
// resolution, at most one millisecond (Redis keeps time in ms): a reported
// wait may be later than exact, never earlier. All times are whole ms.
func Exercise(t *testing.T, c Counter) {
	t.Helper()
	ns := "exercise/" + strconv.FormatUint(rand.Uint64(), 36) + "/"
	base := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	ctx := context.Background()

	perSecond := Limit{Rate: 10, Period: time.Second, Burst: 10}
	for _, tc := range exerciseCases(perSecond) {
		t.Run(tc.name, func(t *testing.T) {
			key := ns + tc.name
			for i, st := range tc.steps {
				got, err := c.Take(ctx, key, tc.limit, st.n, base.Add(st.at))
				if err != nil {
					t.Fatalf("step %d (at %v, n=%d): %v", i, st.at, st.n, err)
				}
				if !resultMatches(got, st.want) {
					t.Fatalf("step %d (at %v, n=%d):\n got %+v\nwant %+v", i, st.at, st.n, got, st.want)
				}
			}
		})
	}

	t.Run("keys are independent", func(t *testing.T) {
		a, b := ns+"indep/a", ns+"indep/b"
		if r, err := c.Take(ctx, a, perSecond, 10, base); err != nil || !r.Allowed {
			t.Fatalf("drain a: %+v, %v", r, err)
		}
		r, err := c.Take(ctx, b, perSecond, 1, base)
		if err != nil || !r.Allowed || r.Remaining != 9 {
			t.Fatalf("b after draining a: %+v, %v; want allowed with 9 remaining", r, err)
		}
	})

	t.Run("limit change keeps debt in tokens", func(t *testing.T) {
		key := ns + "change"
		if r, err := c.Take(ctx, key, perSecond, 6, base); err != nil || r.Remaining != 4 {
			t.Fatalf("take 6: %+v, %v", r, err)
		}
		slower := Limit{Rate: 10, Period: 2 * time.Second, Burst: 10}
		r, err := c.Take(ctx, key, slower, 0, base)
		want := Result{Allowed: true, Limit: 10, Remaining: 4, Reset: 1200 * time.Millisecond}
		if err != nil || !resultMatches(r, want) {
			t.Fatalf("peek under new limit: %+v, %v; want %+v", r, err, want)
		}
	})

	t.Run("concurrent takers never over-grant", func(t *testing.T) {
		const workers, takes = 8, 40
		l := Limit{Rate: 1, Period: time.Hour, Burst: 100}
		key := ns + "concurrent"
		var granted atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range takes {
					r, err := c.Take(ctx, key, l, 1, base)
					if err != nil {
						errs <- err
						return
					}
					if r.Allowed {
						granted.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if g := granted.Load(); g != int64(l.Burst) {
			t.Fatalf("granted %d of %d takes on a frozen clock, want exactly the burst %d", g, workers*takes, l.Burst)
		}
	})

	t.Run("invalid arguments", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			limit Limit
			n     int
			want  error
		}{
			{name: "negative rate", limit: Limit{Rate: -1, Period: time.Second, Burst: 1}, n: 1, want: ErrInvalidLimit},
			{name: "zero period", limit: Limit{Rate: 1, Burst: 1}, n: 1, want: ErrInvalidLimit},
			{name: "negative period", limit: Limit{Rate: 1, Period: -time.Second, Burst: 1}, n: 1, want: ErrInvalidLimit},
			{name: "zero burst", limit: Limit{Rate: 1, Period: time.Second}, n: 1, want: ErrInvalidLimit},
			{name: "negative n", limit: perSecond, n: -1, want: ErrInvalidCount},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := c.Take(ctx, ns+"invalid", tc.limit, tc.n, base)
				if !errors.Is(err, tc.want) {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
			})
		}
	})
}

type exerciseStep struct {
	at   time.Duration // offset from the suite's base time
	n    int
	want Result
}

type exerciseCase struct {
	name  string
	limit Limit
	steps []exerciseStep
}

// exerciseCases are the single-key scenarios of Exercise; l10 is 10 per
// second with a burst of 10 (one token per 100ms).
func exerciseCases(l10 Limit) []exerciseCase {
	ms := time.Millisecond
	allow := func(burst, remaining int, reset time.Duration) Result {
		return Result{Allowed: true, Limit: burst, Remaining: remaining, Reset: reset}
	}
	deny := func(burst, remaining int, reset, retry time.Duration) Result {
		return Result{Limit: burst, Remaining: remaining, Reset: reset, RetryAfter: retry}
	}
	var burst []exerciseStep
	for i := range 10 {
		burst = append(burst, exerciseStep{n: 1, want: allow(10, 9-i, time.Duration(i+1)*100*ms)})
	}
	burst = append(burst, exerciseStep{n: 1, want: deny(10, 0, time.Second, 100*ms)})

	const year = 365 * 24 * time.Hour
	return []exerciseCase{
		{name: "burst then deny", limit: l10, steps: burst},
		{name: "peek on a new key", limit: l10, steps: []exerciseStep{
			{n: 0, want: allow(10, 10, 0)},
			{n: 0, want: allow(10, 10, 0)},
		}},
		{name: "refill", limit: l10, steps: []exerciseStep{
			{n: 10, want: allow(10, 0, time.Second)},
			{at: 99 * ms, n: 1, want: deny(10, 0, 901*ms, 1*ms)},
			{at: 100 * ms, n: 1, want: allow(10, 0, time.Second)},
			{at: 350 * ms, n: 0, want: allow(10, 2, 750*ms)},
			{at: 5 * time.Second, n: 0, want: allow(10, 10, 0)},
			{at: 5 * time.Second, n: 10, want: allow(10, 0, time.Second)},
		}},
		{name: "several tokens at once", limit: l10, steps: []exerciseStep{
			{n: 4, want: allow(10, 6, 400*ms)},
			{n: 4, want: allow(10, 2, 800*ms)},
			{n: 4, want: deny(10, 2, 800*ms, 200*ms)},
			{at: 200 * ms, n: 4, want: allow(10, 0, time.Second)},
		}},
		{name: "n above burst never passes and takes nothing", limit: l10, steps: []exerciseStep{
			{n: 11, want: deny(10, 10, 0, Never)},
			{n: 1, want: allow(10, 9, 100*ms)},
			{n: 11, want: deny(10, 9, 100*ms, Never)},
		}},
		{name: "rate zero denies all", limit: Limit{Rate: 0, Period: time.Second, Burst: 5}, steps: []exerciseStep{
			{n: 1, want: deny(5, 0, Never, Never)},
			{n: 0, want: deny(5, 0, Never, Never)},
		}},
		{name: "clock going backwards adds nothing", limit: l10, steps: []exerciseStep{
			{at: time.Second, n: 10, want: allow(10, 0, time.Second)},
			{at: 500 * ms, n: 1, want: deny(10, 0, 1500*ms, 600*ms)},
			{at: 0, n: 0, want: allow(10, 0, 2*time.Second)},
			{at: 1100 * ms, n: 1, want: allow(10, 0, time.Second)},
			{at: 1100 * ms, n: 1, want: deny(10, 0, time.Second, 100*ms)},
		}},
		{name: "fractional refill interval", limit: Limit{Rate: 3, Period: time.Second, Burst: 3}, steps: []exerciseStep{
			{n: 3, want: allow(3, 0, time.Second)},
			{n: 1, want: deny(3, 0, time.Second, 333333334)},
			{at: 333 * ms, n: 1, want: deny(3, 0, 667*ms, 333334)},
			{at: 334 * ms, n: 1, want: allow(3, 0, 999333334)},
			{at: 1334 * ms, n: 0, want: allow(3, 3, 0)},
			{at: 1334 * ms, n: 1, want: allow(3, 2, 333333334)},
		}},
		{name: "burst above rate", limit: Limit{Rate: 1, Period: time.Second, Burst: 5}, steps: []exerciseStep{
			{n: 5, want: allow(5, 0, 5*time.Second)},
			{at: 2 * time.Second, n: 0, want: allow(5, 2, 3*time.Second)},
		}},
		{name: "daily quota", limit: Limit{Rate: 5, Period: 24 * time.Hour, Burst: 5}, steps: []exerciseStep{
			{n: 5, want: allow(5, 0, 24*time.Hour)},
			{at: time.Hour, n: 1, want: deny(5, 0, 23*time.Hour, 228*time.Minute)},
			{at: 288 * time.Minute, n: 1, want: allow(5, 0, 24*time.Hour)},
		}},
		{name: "huge period saturates", limit: Limit{Rate: 1, Period: 100 * year, Burst: 10}, steps: []exerciseStep{
			{n: 10, want: allow(10, 0, Never)},
			{at: 50 * year, n: 1, want: deny(10, 0, Never, 50*year)},
		}},
	}
}

// resultMatches compares a Result with an expected one, allowing durations
// to be rounded up by less than a millisecond; Never and zero are exact.
func resultMatches(got, want Result) bool {
	return got.Allowed == want.Allowed && got.Limit == want.Limit && got.Remaining == want.Remaining &&
		durationMatches(got.Reset, want.Reset) && durationMatches(got.RetryAfter, want.RetryAfter)
}

func durationMatches(got, want time.Duration) bool {
	if want == 0 || want == Never {
		return got == want
	}
	return got >= want && got-want < time.Millisecond
}
