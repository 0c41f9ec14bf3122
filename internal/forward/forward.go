// Package forward delivers telemetry accepted on one protocol to HTTP
// upstreams (webhooks): MQTT messages published on a channel whose version
// names http(s) upstream targets are batched per target and POSTed as JSON,
// retried with backoff, through a bounded queue. When the queue is full the
// message is dropped and counted, never blocking the broker.
package forward

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Forwarder.
type Options struct {
	QueueSize  int           // messages waiting across targets (default 10,000)
	BatchSize  int           // messages per POST (default 100)
	FlushEvery time.Duration // longest wait before a partial batch is sent (default 200 ms)
	Attempts   int           // deliveries tried per batch (default 5)
	Backoff    time.Duration // first retry delay, doubled each time (default 100 ms)
	Client     *http.Client
	Logger     *slog.Logger
}

// Message is one forwarded publish.
type Message struct {
	Topic   string          `json:"topic"`
	Sender  string          `json:"sender"`
	At      time.Time       `json:"at"`
	Payload json.RawMessage `json:"payload,omitempty"`     // when the payload is JSON
	Raw     []byte          `json:"payload_b64,omitempty"` // otherwise, base64
}

type item struct {
	target string
	msg    Message
}

// Stats are the forwarder's counters (exported as metrics by the caller).
type Stats struct {
	Delivered, Dropped, Failed, Retries uint64
}

// Forwarder batches and delivers messages. Start it once; Close drains
// what is queued (bounded by the attempts) and stops.
type Forwarder struct {
	o     Options
	queue chan item
	stats struct{ delivered, dropped, failed, retries atomic.Uint64 }
	done  chan struct{}
	once  sync.Once
}

// New returns a forwarder; call Start.
func New(o Options) *Forwarder {
	if o.QueueSize <= 0 {
		o.QueueSize = 10000
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 100
	}
	if o.FlushEvery <= 0 {
		o.FlushEvery = 200 * time.Millisecond
	}
	if o.Attempts <= 0 {
		o.Attempts = 5
	}
	if o.Backoff <= 0 {
		o.Backoff = 100 * time.Millisecond
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Forwarder{o: o, queue: make(chan item, o.QueueSize), done: make(chan struct{})}
}

// Enqueue queues one message for each target without blocking; it copies
// payload (the broker reuses its buffers). It reports false when the queue
// was full and the message dropped.
func (f *Forwarder) Enqueue(targets []string, topic, sender string, payload []byte, at time.Time) bool {
	m := Message{Topic: topic, Sender: sender, At: at.UTC()}
	if json.Valid(payload) {
		m.Payload = append(json.RawMessage(nil), payload...)
	} else {
		m.Raw = append([]byte(nil), payload...)
	}
	ok := true
	for _, t := range targets {
		select {
		case f.queue <- item{target: t, msg: m}:
		default:
			f.stats.dropped.Add(1)
			ok = false
		}
	}
	return ok
}

// Stats returns the counters.
func (f *Forwarder) Stats() Stats {
	return Stats{Delivered: f.stats.delivered.Load(), Dropped: f.stats.dropped.Load(), Failed: f.stats.failed.Load(), Retries: f.stats.retries.Load()}
}

// Start runs the batching loop until ctx ends.
func (f *Forwarder) Start(ctx context.Context) {
	go func() {
		defer close(f.done)
		batches := map[string][]Message{}
		tick := time.NewTicker(f.o.FlushEvery)
		defer tick.Stop()
		flush := func(target string) {
			if b := batches[target]; len(b) > 0 {
				f.deliver(ctx, target, b)
				delete(batches, target)
			}
		}
		for {
			select {
			case <-ctx.Done():
				for t := range batches {
					flush(t)
				}
				return
			case it := <-f.queue:
				batches[it.target] = append(batches[it.target], it.msg)
				if len(batches[it.target]) >= f.o.BatchSize {
					flush(it.target)
				}
			case <-tick.C:
				for t := range batches {
					flush(t)
				}
			}
		}
	}()
}

// Wait blocks until the loop started by Start has ended.
func (f *Forwarder) Wait() { <-f.done }

// deliver POSTs one batch, retrying with exponential backoff; a 4xx other
// than 408/429 is final (the target refuses this content).
func (f *Forwarder) deliver(ctx context.Context, target string, batch []Message) {
	body, err := json.Marshal(map[string]any{"messages": batch})
	if err != nil {
		f.stats.failed.Add(uint64(len(batch)))
		return
	}
	delay := f.o.Backoff
	for attempt := 1; attempt <= f.o.Attempts; attempt++ {
		err = f.post(ctx, target, body)
		if err == nil {
			f.stats.delivered.Add(uint64(len(batch)))
			return
		}
		if _, final := err.(finalError); final || attempt == f.o.Attempts {
			break
		}
		f.stats.retries.Add(1)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			attempt = f.o.Attempts
		}
		delay *= 2
	}
	f.stats.failed.Add(uint64(len(batch)))
	f.o.Logger.Warn("webhook delivery failed", "target", target, "messages", len(batch), "err", err)
}

type finalError struct{ status int }

func (e finalError) Error() string { return fmt.Sprintf("webhook refused the batch: %d", e.status) }

func (f *Forwarder) post(ctx context.Context, target string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return finalError{0}
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := f.o.Client.Do(req)
	if err != nil {
		return err
	}
	res.Body.Close()
	switch {
	case res.StatusCode < 300:
		return nil
	case res.StatusCode >= 400 && res.StatusCode < 500 && res.StatusCode != 408 && res.StatusCode != 429:
		return finalError{res.StatusCode}
	}
	return fmt.Errorf("webhook answered %d", res.StatusCode)
}
