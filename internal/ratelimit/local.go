package ratelimit

import (
	"context"
	"hash/maphash"
	"math/bits"
	"strings"
	"sync"
	"time"
)

// Defaults for LocalOptions.
const (
	DefaultShards        = 64
	DefaultMaxBuckets    = 1_000_000
	DefaultSweepInterval = 10 * time.Second
)

const (
	// sweepPerInsert is how many buckets an insert inspects for idleness,
	// so that a stream of new keys reclaims idle ones as it goes.
	sweepPerInsert = 2
	// evictSample is how many buckets are compared when a full shard must
	// evict one.
	evictSample = 8
	// sweepChunk bounds how many buckets the background sweeper inspects
	// per lock hold, so a sweep never stalls takers on a shard for long.
	sweepChunk = 256
)

// LocalOptions configures NewLocal. Zero (or negative) fields take the
// defaults.
type LocalOptions struct {
	// Shards is the number of independently locked partitions, rounded up
	// to a power of two. More shards mean less lock contention.
	Shards int
	// MaxBuckets is a hard cap on the buckets held, so a flood of distinct
	// keys cannot grow memory without bound. It is split evenly across
	// shards (each holds at most MaxBuckets/Shards).
	MaxBuckets int
	// SweepInterval is how often the background sweeper drops idle
	// buckets. Negative disables the sweeper; inserts still sweep a few.
	SweepInterval time.Duration
}

// LocalStats are counters for metrics.
type LocalStats struct {
	Buckets int    // buckets currently held
	Expired uint64 // idle (full) buckets dropped; harmless
	Evicted uint64 // non-full buckets dropped because of MaxBuckets
}

// Local is a Counter kept in this process's memory. Buckets are spread over
// shards, each a mutex, a map from key to slot and a slice of slots; the
// slice lets sweeps and evictions walk buckets with a cursor without map
// iteration, and lets a bucket be removed in O(1) by moving the last slot
// into its place.
//
// Idle buckets: a bucket that is full answers every later Take exactly as an
// absent one would, so it can be dropped. Time comes from callers, so each
// shard tracks the latest now it has seen and a bucket is idle once it was
// full at that time. Inserts check a few buckets at a cursor, and a
// background sweeper (stopped by Close) walks every shard in bounded chunks.
//
// Cap: when a shard holds MaxBuckets/Shards buckets and a new key arrives,
// it first drops idle buckets at the cursor and, failing that, evicts the
// one among the next few (8) that will be full soonest: the bucket whose
// loss grants the fewest extra tokens. The evicted key starts again with a
// full bucket if it returns. This keeps a flood of new keys from denying
// service to new legitimate keys; it is never a silent allow of untracked
// keys, and every eviction is counted in LocalStats.Evicted so it can be
// alerted on. Size MaxBuckets above the expected number of active keys.
//
// Callers should pass the wall clock as now: a now far in the future moves
// a shard's clock forward and makes its buckets look idle to the sweeper.
type Local struct {
	seed   maphash.Seed
	mask   uint64
	shards []shard

	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

var _ Counter = (*Local)(nil)

type slot struct {
	key string
	b   bucket
}

type shard struct {
	mu sync.Mutex
	// Fields below are guarded by mu.
	index   map[string]int32 // key -> position in slots
	slots   []slot
	max     int    // bucket cap of this shard
	hand    int    // cursor for sweeps and evictions
	now     int64  // latest now seen by a Take on this shard (Unix ns)
	expired uint64 // idle buckets dropped
	evicted uint64 // buckets dropped for the cap
	_       [64]byte
}

// NewLocal returns an in-memory Counter. Call Close to stop its sweeper.
func NewLocal(opts LocalOptions) *Local {
	n := opts.Shards
	if n <= 0 {
		n = DefaultShards
	}
	maxb := opts.MaxBuckets
	if maxb <= 0 {
		maxb = DefaultMaxBuckets
	}
	n = 1 << bits.Len(uint(n-1)) // round up to a power of two
	for n > 1 && maxb/n < 1 {
		n /= 2 // so every shard can hold at least one bucket
	}
	l := &Local{
		seed:   maphash.MakeSeed(),
		mask:   uint64(n - 1),
		shards: make([]shard, n),
		done:   make(chan struct{}),
	}
	for i := range l.shards {
		l.shards[i].index = make(map[string]int32)
		l.shards[i].max = maxb / n
	}
	interval := opts.SweepInterval
	if interval == 0 {
		interval = DefaultSweepInterval
	}
	if interval > 0 {
		l.wg.Add(1)
		go l.sweepLoop(interval)
	}
	return l
}

// Take implements Counter. It does not block on anything but its shard's
// mutex, and does not allocate for an existing key. ctx is not consulted.
func (l *Local) Take(_ context.Context, key string, lim Limit, n int, now time.Time) (Result, error) {
	if err := check(lim, n); err != nil {
		return Result{}, err
	}
	if lim.Rate == 0 {
		return denyAll(lim), nil
	}
	t := now.UnixNano()
	s := &l.shards[maphash.String(l.seed, key)&l.mask]
	s.mu.Lock()
	if t > s.now {
		s.now = t
	}
	if i, ok := s.index[key]; ok {
		res := s.slots[i].b.take(lim, n, t)
		s.mu.Unlock()
		return res, nil
	}
	b := newBucket(lim, t)
	res := b.take(lim, n, t)
	// Store only buckets that are no longer full: a peek or a request that
	// can never pass must not cost memory.
	if res.Allowed && n > 0 {
		s.insert(key, b)
	}
	s.mu.Unlock()
	return res, nil
}

// Close stops the background sweeper and waits for it. Take keeps working
// after Close (without background sweeping). Close is idempotent.
func (l *Local) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	l.wg.Wait()
	return nil
}

// Stats returns the current counters, locking each shard in turn.
func (l *Local) Stats() LocalStats {
	var st LocalStats
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		st.Buckets += len(s.slots)
		st.Expired += s.expired
		st.Evicted += s.evicted
		s.mu.Unlock()
	}
	return st
}

func (l *Local) sweepLoop(interval time.Duration) {
	defer l.wg.Done()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-l.done:
			return
		case <-tick.C:
			for i := range l.shards {
				select {
				case <-l.done:
					return
				default:
				}
				l.shards[i].sweepAll()
			}
		}
	}
}

// insert stores a new bucket for key. mu must be held and key absent.
func (s *shard) insert(key string, b bucket) {
	s.sweep(sweepPerInsert)
	if len(s.slots) >= s.max {
		s.evict()
	}
	// Clone so a key sliced from a large request buffer does not pin it.
	k := strings.Clone(key)
	s.index[k] = int32(len(s.slots))
	s.slots = append(s.slots, slot{key: k, b: b})
}

// sweep inspects up to n buckets from the cursor and drops the idle ones.
// mu must be held.
func (s *shard) sweep(n int) {
	for ; n > 0 && len(s.slots) > 0; n-- {
		if s.hand >= len(s.slots) {
			s.hand = 0
		}
		if s.slots[s.hand].b.fullAt <= s.now {
			s.remove(s.hand) // the last slot moved here; inspect it next
			s.expired++
		} else {
			s.hand++
		}
	}
}

// evict drops one bucket to make room: the one that will be full soonest
// among evictSample buckets from the cursor. mu must be held and the shard
// non-empty.
func (s *shard) evict() {
	if len(s.slots) == 0 {
		return
	}
	victim := -1
	for j := 0; j < evictSample && j < len(s.slots); j++ {
		if s.hand >= len(s.slots) {
			s.hand = 0
		}
		if victim < 0 || s.slots[s.hand].b.fullAt < s.slots[victim].b.fullAt {
			victim = s.hand
		}
		s.hand++
	}
	if s.slots[victim].b.fullAt <= s.now {
		s.expired++
	} else {
		s.evicted++
	}
	s.remove(victim)
}

// remove deletes the bucket at position i by moving the last slot into
// its place. mu must be held.
func (s *shard) remove(i int) {
	last := len(s.slots) - 1
	delete(s.index, s.slots[i].key)
	if i != last {
		s.slots[i] = s.slots[last]
		s.index[s.slots[i].key] = int32(i)
	}
	s.slots[last] = slot{} // release the key string
	s.slots = s.slots[:last]
}

// sweepAll drops every idle bucket of the shard, taking the lock for at
// most sweepChunk buckets at a time. Takers may move slots between chunks;
// a bucket missed this time is caught by the next sweep. When the shard has
// shrunk to a quarter of its allocation, it is rebuilt so memory taken by a
// past flood of keys is given back (Go maps never shrink).
func (s *shard) sweepAll() {
	for i := 0; ; {
		s.mu.Lock()
		if i >= len(s.slots) {
			s.compact()
			s.mu.Unlock()
			return
		}
		for end := i + sweepChunk; i < end && i < len(s.slots); {
			if s.slots[i].b.fullAt <= s.now {
				s.remove(i)
				s.expired++
			} else {
				i++
			}
		}
		s.mu.Unlock()
	}
}

// compact reallocates the shard's map and slice when they are mostly empty.
// mu must be held.
func (s *shard) compact() {
	const minCompact = 1024
	if cap(s.slots) < minCompact || len(s.slots)*4 > cap(s.slots) {
		return
	}
	slots := make([]slot, len(s.slots), 2*len(s.slots))
	copy(slots, s.slots)
	index := make(map[string]int32, len(slots))
	for i := range slots {
		index[slots[i].key] = int32(i)
	}
	s.slots, s.index = slots, index
	if s.hand >= len(s.slots) {
		s.hand = 0
	}
}
