package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// mqtt-pubsub: P publishers and S subscribers through one broker. Each
// publisher publishes on its own topic; subscriber i subscribes to the
// topics of publishers j with j mod S = i, so every message is delivered
// exactly once and "delivered messages" is the unit of work on every
// broker. Flow is closed-loop: a publisher has at most -window messages
// published and not yet delivered, so no broker is pushed into dropping or
// disconnecting a subscriber that cannot keep up, and the rate is what the
// broker (and the generator, on a shared machine) sustains. With -rate the
// publishers are paced to a fixed total rate instead, for latency.
//
// Every payload carries its publisher's index and its send time, so the
// subscriber measures publish-to-receive latency (median and p99).

// pubsubConfig is the parsed command line.
type pubsubConfig struct {
	dial      dialOptions
	qos       byte
	pubs      int
	subs      int
	size      int
	window    int
	rate      float64
	warmup    time.Duration
	duration  time.Duration
	topic     string
	pid       string
	label     string
	pubCreds  []credential
	subCred   credential
	maxSample int
}

// credential is one line of the -creds file: "pub|sub NAME PASSWORD".
// NAME is the user name and the client id (subscribers add "-<i>").
type credential struct{ name, password string }

// parseCreds reads the -creds file.
func parseCreds(text string) (pubs []credential, sub credential, err error) {
	for i, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if len(f) != 3 || (f[0] != "pub" && f[0] != "sub") {
			return nil, sub, fmt.Errorf("creds line %d: want \"pub|sub NAME PASSWORD\"", i+1)
		}
		c := credential{f[1], f[2]}
		if f[0] == "pub" {
			pubs = append(pubs, c)
		} else {
			sub = c
		}
	}
	if len(pubs) == 0 || sub.name == "" {
		return nil, sub, errors.New("creds: need at least one pub line and one sub line")
	}
	return pubs, sub, nil
}

func mqttPubsub(args []string) error {
	fs := flag.NewFlagSet("mqtt-pubsub", flag.ContinueOnError)
	c := pubsubConfig{dial: dialOptions{keepAlive: 60, timeout: 10 * time.Second}}
	fs.StringVar(&c.dial.addr, "addr", "127.0.0.1:1883", "broker address")
	version := fs.Int("v", 4, "MQTT version: 4 (3.1.1) or 5")
	qos := fs.Int("qos", 0, "QoS of publications and subscriptions: 0 or 1")
	fs.IntVar(&c.pubs, "pubs", 50, "publishers")
	fs.IntVar(&c.subs, "subs", 5, "subscribers")
	fs.IntVar(&c.size, "size", 64, "payload bytes (at least 45)")
	fs.IntVar(&c.window, "window", 8, "messages each publisher may have published and not yet delivered")
	fs.Float64Var(&c.rate, "rate", 0, "total messages/s, paced (0: as fast as the window allows)")
	fs.DurationVar(&c.warmup, "warmup", 2*time.Second, "load before measuring")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "measured time")
	fs.StringVar(&c.topic, "topic", "fleet/%s/telemetry", "topic of a publisher (%s: its name)")
	fs.StringVar(&c.pid, "pid", "", "broker process whose CPU time is reported per delivered message")
	fs.StringVar(&c.label, "label", "", "name printed with the result")
	creds := fs.String("creds", "", `file of "pub NAME PASSWORD" and "sub NAME PASSWORD" lines`)
	if err := fs.Parse(args); err != nil {
		return err
	}
	c.dial.version, c.qos = byte(*version), byte(*qos)
	switch {
	case c.dial.version != 4 && c.dial.version != 5:
		return fmt.Errorf("-v %d: want 4 or 5", *version)
	case c.qos > 1:
		return fmt.Errorf("-qos %d: want 0 or 1", *qos)
	case c.pubs < 1 || c.subs < 1 || c.subs > c.pubs:
		return errors.New("want 1 <= -subs <= -pubs")
	case c.size < payloadMin || c.size > 60000:
		return fmt.Errorf("-size %d: want %d to 60000", c.size, payloadMin)
	case c.window < 1 || c.window > 64:
		return errors.New("-window: want 1 to 64 (MQTT 5 brokers may grant a Receive Maximum of 64)")
	case c.pubs > 999:
		return errors.New("-pubs: at most 999")
	}
	b, err := os.ReadFile(*creds)
	if err != nil {
		return err
	}
	if c.pubCreds, c.subCred, err = parseCreds(string(b)); err != nil {
		return err
	}
	if len(c.pubCreds) < c.pubs {
		return fmt.Errorf("creds: %d publishers for -pubs %d", len(c.pubCreds), c.pubs)
	}
	c.maxSample = 1 << 20
	// A hang guard: connects, subscriptions and the run are each bounded,
	// but a broker that accepts and then says nothing must not stall a
	// benchmark script for good.
	guard := time.AfterFunc(c.warmup+c.duration+2*time.Minute, func() {
		fmt.Fprintln(os.Stderr, "fgbench: mqtt-pubsub did not finish in time")
		os.Exit(1)
	})
	defer guard.Stop()
	res, err := runPubsub(c)
	if err != nil {
		return err
	}
	fmt.Println(res)
	return nil
}

// Payload layout: fixed offsets, valid JSON, so a broker validating a
// schema could accept it:
//
//	{"p":"007","t":"0000000001234567890","x":"xxxx..."}
const (
	payloadMin  = 45
	offPub      = 6  // 3 digits: publisher index
	offTime     = 16 // 19 digits: nanoseconds since the generator started
	payloadHead = `{"p":"000","t":"0000000000000000000","x":"`
)

func newPayload(size, pub int) []byte {
	p := make([]byte, 0, size)
	p = append(p, payloadHead...)
	for len(p) < size-2 {
		p = append(p, 'x')
	}
	p = append(p, `"}`...)
	putDigits(p[offPub:offPub+3], uint64(pub))
	return p
}

func putDigits(b []byte, v uint64) {
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
}

func getDigits(b []byte) (uint64, bool) {
	var v uint64
	for _, d := range b {
		if d < '0' || d > '9' {
			return 0, false
		}
		v = v*10 + uint64(d-'0')
	}
	return v, true
}

// result is one run's figures.
type result struct {
	label     string
	qos       byte
	delivered int64
	secs      float64
	brokerCPU int64 // µs, -1 when no -pid
	genCPU    int64 // µs
	p50, p99  time.Duration
	samples   int
	nacks     int64
}

func (r result) String() string {
	cpu := "-"
	if r.brokerCPU >= 0 && r.delivered > 0 {
		cpu = fmt.Sprintf("%.1f", float64(r.brokerCPU)/float64(r.delivered))
	}
	return fmt.Sprintf("RESULT label=%s qos=%d delivered=%d secs=%.2f msgs_per_s=%.0f broker_cpu_us_per_msg=%s gen_cpu_us_per_msg=%.1f p50_us=%d p99_us=%d samples=%d nacks=%d",
		r.label, r.qos, r.delivered, r.secs, float64(r.delivered)/r.secs, cpu,
		float64(r.genCPU)/float64(max(r.delivered, 1)), r.p50.Microseconds(), r.p99.Microseconds(), r.samples, r.nacks)
}

// run is the state shared by one run's goroutines.
type run struct {
	c         pubsubConfig
	base      time.Time
	stop      atomic.Bool
	done      chan struct{} // closed when the run stops
	measuring atomic.Bool
	delivered atomic.Int64
	nacks     atomic.Int64
	windows   []chan struct{}
	errs      chan error
	// per publisher: messages sent, and deliveries seen with the time of
	// the last (ns since base), for the report of a stalled publisher
	sent, got, lastGot []atomic.Int64

	mu      sync.Mutex
	samples []time.Duration
}

func (r *run) fail(err error) {
	select {
	case r.errs <- err:
	default:
	}
}

func runPubsub(c pubsubConfig) (result, error) {
	r := &run{c: c, base: time.Now(), done: make(chan struct{}), errs: make(chan error, 1), windows: make([]chan struct{}, c.pubs)}
	r.sent, r.got, r.lastGot = make([]atomic.Int64, c.pubs), make([]atomic.Int64, c.pubs), make([]atomic.Int64, c.pubs)
	for i := range r.windows {
		r.windows[i] = make(chan struct{}, c.window)
	}
	var conns []*client
	var wg sync.WaitGroup
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		r.stop.Store(true)
		close(r.done)
		for _, cl := range conns {
			_ = cl.c.Close()
		}
		wg.Wait() // every goroutine returns once its connection is closed
	}
	defer stop()
	for i := range c.subs {
		o := c.dial
		o.clientID, o.user, o.password = fmt.Sprintf("%s-%d", c.subCred.name, i), c.subCred.name, c.subCred.password
		cl, err := dial(o)
		if err != nil {
			return result{}, fmt.Errorf("subscriber %d: %w", i, err)
		}
		conns = append(conns, cl)
		var filters []string
		for j := i; j < c.pubs; j += c.subs {
			filters = append(filters, fmt.Sprintf(c.topic, c.pubCreds[j].name))
		}
		if err := cl.subscribe(c.qos, filters, 10*time.Second); err != nil {
			return result{}, fmt.Errorf("subscriber %d: %w", i, err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); r.subscriber(cl) }()
	}
	pubs := make([]*client, c.pubs)
	for j := range c.pubs {
		o := c.dial
		o.clientID, o.user, o.password = c.pubCreds[j].name, c.pubCreds[j].name, c.pubCreds[j].password
		cl, err := dial(o)
		if err != nil {
			return result{}, fmt.Errorf("publisher %s: %w", o.clientID, err)
		}
		conns = append(conns, cl)
		pubs[j] = cl
	}
	for j, cl := range pubs {
		wg.Add(1)
		go func() { defer wg.Done(); r.publisher(j, cl) }()
		if c.qos > 0 {
			wg.Add(1)
			go func() { defer wg.Done(); r.acks(cl) }()
		}
	}
	select {
	case err := <-r.errs:
		return result{}, err
	case <-time.After(c.warmup):
	}
	d0, b0, g0, t0 := r.delivered.Load(), cpuOf(c.pid), cpuOf("self"), time.Now()
	r.measuring.Store(true)
	select {
	case err := <-r.errs:
		return result{}, err
	case <-time.After(c.duration):
	}
	r.measuring.Store(false)
	d1, b1, g1, t1 := r.delivered.Load(), cpuOf(c.pid), cpuOf("self"), time.Now()
	res := result{label: c.label, qos: c.qos, delivered: d1 - d0, secs: t1.Sub(t0).Seconds(), brokerCPU: b1 - b0,
		genCPU: g1 - g0, nacks: r.nacks.Load()}
	if c.pid == "" {
		res.brokerCPU = -1
	}
	stop() // subscribers hand in their samples as they return
	s := r.samples
	slices.Sort(s)
	if len(s) > 0 {
		res.p50, res.p99, res.samples = s[len(s)/2], s[len(s)*99/100], len(s)
	}
	return res, nil
}

// cpuOf is cpuMicros, or 0 without a process.
func cpuOf(pid string) int64 {
	if pid == "" {
		return 0
	}
	us, _ := cpuMicros(pid)
	return us
}

// publisher publishes until the run stops. Waiting on a full window is
// bounded: a message lost by the broker fails the run instead of hanging.
func (r *run) publisher(j int, cl *client) {
	c := &r.c
	topic := fmt.Sprintf(c.topic, c.pubCreds[j].name)
	payload := newPayload(c.size, j)
	var buf []byte
	var id uint16
	var interval time.Duration
	next := time.Now()
	if c.rate > 0 {
		interval = time.Duration(float64(c.pubs) / c.rate * float64(time.Second))
		next = next.Add(interval * time.Duration(j) / time.Duration(c.pubs)) // spread the publishers
	}
	win := r.windows[j]
	for !r.stop.Load() {
		if interval > 0 {
			if d := time.Until(next); d > 0 {
				select {
				case <-time.After(d):
				case <-r.done:
					return
				}
			}
			next = next.Add(interval)
		}
		select {
		case win <- struct{}{}:
		default:
			select {
			case win <- struct{}{}:
			case <-r.done:
				return
			case <-time.After(10 * time.Second):
				r.fail(fmt.Errorf("publisher %d: no delivery for 10 s: messages lost (%s)", j, r.stalled(j)))
				return
			}
		}
		if id++; id == 0 {
			id = 1
		}
		putDigits(payload[offTime:offTime+19], uint64(time.Since(r.base)))
		buf = appendPublish(buf[:0], c.dial.version, topic, c.qos, id, payload)
		if _, err := cl.c.Write(buf); err != nil {
			if !r.stop.Load() {
				r.fail(fmt.Errorf("publisher %d: %w", j, err))
			}
			return
		}
		r.sent[j].Add(1)
	}
}

// stalled describes a stalled publisher j for the failure report: what it
// sent and what was delivered, and which publishers (and so which
// subscribers: publisher k goes to subscriber k mod S) have had no
// delivery for 5 s, to tell one lost message from a stalled subscriber.
func (r *run) stalled(j int) string {
	now := int64(time.Since(r.base))
	var quiet []string
	for k := range r.lastGot {
		if now-r.lastGot[k].Load() > int64(5*time.Second) {
			quiet = append(quiet, fmt.Sprintf("%d(sub %d)", k, k%r.c.subs))
		}
	}
	return fmt.Sprintf("sent %d, delivered %d; publishers with no delivery for 5 s: %v", r.sent[j].Load(), r.got[j].Load(), quiet)
}

// acks reads a QoS 1 publisher's PUBACKs and counts negative ones.
func (r *run) acks(cl *client) {
	for {
		h, body, err := cl.read()
		if err != nil {
			if !r.stop.Load() {
				r.fail(fmt.Errorf("publisher connection: %w", err))
			}
			return
		}
		if h>>4 == typPuback && len(body) > 2 && body[2] >= 0x80 {
			r.nacks.Add(1)
		}
		if h>>4 == typDisconn {
			r.fail(errors.New("broker sent DISCONNECT to a publisher"))
			return
		}
	}
}

// subscriber counts deliveries, frees their publisher's window, samples
// latency while measuring, and acknowledges QoS 1 messages in batches (one
// write per read buffer).
func (r *run) subscriber(cl *client) {
	var acks []byte
	var samples []time.Duration
	defer func() {
		r.mu.Lock()
		r.samples = append(r.samples, samples...)
		r.mu.Unlock()
	}()
	for {
		h, body, err := cl.read()
		if err != nil {
			if !r.stop.Load() {
				r.fail(fmt.Errorf("subscriber: %w", err))
			}
			return
		}
		switch h >> 4 {
		case typPublish:
		case typDisconn:
			r.fail(errors.New("broker sent DISCONNECT to a subscriber"))
			return
		default:
			continue
		}
		p, err := parsePublish(h, body, cl.version)
		if err != nil {
			r.fail(err)
			return
		}
		if p.qos == 1 {
			acks = appendPuback(acks, p.id)
		}
		if len(p.payload) >= payloadMin {
			j, ok1 := getDigits(p.payload[offPub : offPub+3])
			t, ok2 := getDigits(p.payload[offTime : offTime+19])
			if ok1 && ok2 && int(j) < len(r.windows) {
				select {
				case <-r.windows[j]:
				default:
				}
				r.got[j].Add(1)
				r.lastGot[j].Store(int64(time.Since(r.base)))
				if r.measuring.Load() && len(samples) < r.c.maxSample/r.c.subs {
					samples = append(samples, time.Since(r.base)-time.Duration(t))
				}
			}
		}
		r.delivered.Add(1)
		if len(acks) > 0 && cl.r.Buffered() == 0 {
			if _, err := cl.c.Write(acks); err != nil {
				if !r.stop.Load() {
					r.fail(err)
				}
				return
			}
			acks = acks[:0]
		}
	}
}
