package ratelimit

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/redis/go-redis/v9"
)

// expirySlack is added to a Redis key's lifetime beyond the moment its
// bucket is full. Expiry runs on the Redis server's clock while fullness is
// judged on the callers' clocks; the slack keeps a server clock running
// ahead of the callers from dropping a bucket that is still refilling.
const expirySlack = time.Second

// maxExact is the largest integer a Lua number (a float64) holds exactly.
// Every debt the script stores is at most Burst × unit, which Take keeps
// below it, so the script's arithmetic is exact.
const maxExact = 1 << 53

// takeScript is the token bucket of bucket.take, in milliseconds, run
// atomically by Redis. The bucket is a hash {d: debt, t: last now (ms),
// u: units per token}; the refill per ms is R units and a token costs U
// units (Rate/Period reduced to lowest terms), so the debt is an exact
// integer. A denied request or a peek writes nothing: the next Take
// recomputes the same state. The key expires once the bucket is full, since
// an absent bucket is a full one.
//
// KEYS[1] bucket; ARGV: now ms, R, U, burst, n, slack ms.
// Returns {allowed, remaining, reset ms, retry ms (-1: never)}.
var takeScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local R = tonumber(ARGV[2])
local U = tonumber(ARGV[3])
local B = tonumber(ARGV[4])
local n = tonumber(ARGV[5])
local slack = tonumber(ARGV[6])
local cap = B * U
local d, last, lag = 0, now, 0
local st = redis.call('HMGET', KEYS[1], 'd', 't', 'u')
if st[1] then
  d = tonumber(st[1])
  last = tonumber(st[2])
  local old = tonumber(st[3])
  if old ~= U then
    d = math.min(math.ceil(d / old), B) * U
  end
  if now > last then
    local refill = (now - last) * R
    if refill >= d then d = 0 else d = d - refill end
    last = now
  else
    lag = last - now
  end
  if d > cap then d = cap end
end
local avail = cap - d
local allowed, retry = 0, 0
if n > B then
  retry = -1
elseif avail >= n * U then
  allowed = 1
  d = d + n * U
  avail = avail - n * U
else
  retry = lag + math.ceil((n * U - avail) / R)
end
local reset = math.ceil(d / R)
if allowed == 1 and n > 0 then
  redis.call('HSET', KEYS[1], 'd', string.format('%.0f', d),
    't', string.format('%.0f', last), 'u', string.format('%.0f', U))
  redis.call('PEXPIRE', KEYS[1], reset + slack)
end
return {allowed, math.floor(avail / U), lag + reset, retry}
`)

// Redis is a Counter kept in Redis, shared by every node using the same
// server (or cluster) and prefix. Each bucket is one hash key updated by a
// Lua script (EVALSHA, falling back to EVAL when the server has not cached
// it), so a Take is one round trip and atomic across nodes.
//
// Time is the caller's now, truncated to milliseconds and passed to the
// script, so nodes agree with the caller's clock rather than each reading
// Redis's; Reset and RetryAfter are rounded up to whole milliseconds.
//
// Storage errors are returned as they are: the caller decides whether a
// Redis outage fails open or closed.
type Redis struct {
	client redis.UniversalClient
	prefix string
}

var _ Counter = (*Redis)(nil)

// NewRedis returns a Counter storing buckets in client under keys
// prefix+key. The client is not owned: closing it is the caller's job.
func NewRedis(client redis.UniversalClient, prefix string) *Redis {
	return &Redis{client: client, prefix: prefix}
}

// Take implements Counter. Besides Validate, it rejects with
// ErrInvalidLimit a limit whose Burst × (token cost in lowest terms) is too
// large for the script's exact arithmetic (2^53 units); real limits are far
// below it, e.g. 10^6 per 30 days uses 2.6×10^9.
func (c *Redis) Take(ctx context.Context, key string, l Limit, n int, now time.Time) (Result, error) {
	if err := check(l, n); err != nil {
		return Result{}, err
	}
	if l.Rate == 0 {
		return denyAll(l), nil
	}
	perMs, unit, err := redisUnits(l)
	if err != nil {
		return Result{}, err
	}
	v, err := takeScript.Run(ctx, c.client, []string{c.prefix + key},
		now.UnixMilli(), perMs, unit, l.Burst, n, expirySlack.Milliseconds()).Int64Slice()
	if err != nil {
		return Result{}, fmt.Errorf("ratelimit: redis take %q: %w", key, err)
	}
	if len(v) != 4 {
		return Result{}, fmt.Errorf("ratelimit: redis take %q: script returned %d values, want 4", key, len(v))
	}
	res := Result{
		Allowed:   v[0] == 1,
		Limit:     l.Burst,
		Remaining: int(v[1]),
		Reset:     msDuration(v[2]),
	}
	if v[3] < 0 {
		res.RetryAfter = Never
	} else {
		res.RetryAfter = msDuration(v[3])
	}
	return res, nil
}

// redisUnits expresses l as an exact refill per millisecond: every ms adds
// perMs units and a token costs unit units, with perMs/unit equal to
// Rate per Period in ms, reduced to lowest terms so the numbers stay small.
func redisUnits(l Limit) (perMs, unit uint64, err error) {
	r := uint64(l.Rate)
	if r > math.MaxUint64/uint64(time.Millisecond) {
		return 0, 0, fmt.Errorf("%w: rate %d is too large for the Redis counter", ErrInvalidLimit, l.Rate)
	}
	perMs, unit = r*uint64(time.Millisecond), uint64(l.Period)
	g := gcd(perMs, unit)
	perMs, unit = perMs/g, unit/g
	if unit >= maxExact/uint64(l.Burst) {
		return 0, 0, fmt.Errorf("%w: burst %d per %v at rate %d needs more precision than the Redis counter has",
			ErrInvalidLimit, l.Burst, l.Period, l.Rate)
	}
	return perMs, unit, nil
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// msDuration converts milliseconds to a Duration, saturating at Never.
func msDuration(ms int64) time.Duration {
	if ms >= int64(Never/time.Millisecond) {
		return Never
	}
	return time.Duration(ms) * time.Millisecond
}
