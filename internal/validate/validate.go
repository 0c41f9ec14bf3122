// Package validate checks HTTP requests (and, in log-only mode, responses)
// against an API version's OpenAPI 3.0/3.1 document, and message payloads
// against an AsyncAPI 2.x/3.0 document.
//
// The work is split by when it happens:
//
//   - CompileOpenAPI and CompileAsyncAPI run once, when the gateway builds a
//     configuration snapshot. They translate OpenAPI 3.0 schemas to JSON
//     Schema 2020-12, compile every schema with
//     github.com/santhosh-tekuri/jsonschema/v6 (the whole document is added
//     as one in-memory resource, so internal $refs resolve, cycles included,
//     and every other URL is refused: no fetching, no SSRF), and lower the
//     result into a compact form for the hot path. Parameter coercion (query
//     string "42" to integer 42) is decided here too.
//   - Operation.Validate and Message.ValidatePayload run per request. They
//     parse the body once into a pooled, zero-copy document tree and walk the
//     lowered schemas over it, stopping at the first error; the common path
//     allocates nothing.
//
// A *Set is immutable after compilation and safe for concurrent use.
package validate

import (
	"fmt"
	"strings"
	"sync"
	"unsafe"
)

// Error says which part of a request failed and why. It is returned as a
// value, never logged here, so the caller renders it (problem+json).
type Error struct {
	// Pointer is a JSON pointer rooted at the request part: "/path/vin",
	// "/query/limit", "/header/X-Trace-Id", "/cookie/session", "/body"
	// (malformed JSON, wrong content type, missing body) or a location
	// inside the body such as "/body/cells/0". Message payloads are rooted
	// at "/payload". A missing required property points at the property.
	Pointer string
	// Keyword is the JSON Schema keyword that failed ("type", "required",
	// "maximum"...), or one of: "json" (malformed body), "contentType",
	// "maxBodyBytes", "responses" (undeclared status), "complexity" (work
	// limit).
	Keyword string
	// Detail is a human-readable explanation. It never quotes the body.
	Detail string
}

func (e *Error) Error() string {
	return fmt.Sprintf("invalid %s (%s): %s", e.Pointer, e.Keyword, e.Detail)
}

// Set holds the compiled validators of one document.
type Set struct {
	ops      map[opKey]*Operation
	channels map[string]*Message
}

type opKey struct{ method, path string }

// Operation returns the validator of method + path template exactly as
// written in the document's paths key (e.g. "GET", "/vehicles/{vin}/battery"),
// or nil when the document has no such operation. The method is matched
// case-insensitively. It does not allocate, so it may be called per request.
func (s *Set) Operation(method, pathTemplate string) *Operation {
	if s == nil {
		return nil
	}
	if op := s.ops[opKey{method, pathTemplate}]; op != nil {
		return op
	}
	if up := strings.ToUpper(method); up != method {
		return s.ops[opKey{up, pathTemplate}]
	}
	return nil
}

// Channel returns the payload validator of an AsyncAPI channel, looked up by
// channel key or address (e.g. "fleet/{deviceId}/telemetry"), or nil when the
// channel is absent or declares no JSON payload schema. When a key of one
// channel equals the address of another, the key wins.
func (s *Set) Channel(channel string) *Message {
	if s == nil {
		return nil
	}
	return s.channels[channel]
}

// scratch is the per-call working memory: a document tree and an evaluator.
// It is pooled per Set because bodies are parsed on every request.
type scratch struct {
	d   doc
	ev  evaluator
	one [1]string // a single raw parameter value, without allocating
}

// maxPooledNodes keeps scratch from huge bodies out of the pool, so one
// large request does not pin memory for the life of the snapshot.
const maxPooledNodes = 1 << 14

type scratchPool struct{ p sync.Pool }

func newScratchPool() *scratchPool {
	sp := &scratchPool{}
	sp.p.New = func() any { return &scratch{} }
	return sp
}

func (sp *scratchPool) get() *scratch { return sp.p.Get().(*scratch) }

func (sp *scratchPool) put(s *scratch) {
	s.d.reset()
	s.one[0] = ""
	clear(s.ev.path[:cap(s.ev.path)]) // entries past len may alias the body
	s.ev.d = nil
	if cap(s.d.nodes) <= maxPooledNodes && cap(s.d.stack) <= maxPooledNodes {
		sp.p.Put(s)
	}
}

// validateJSON parses body and evaluates p over it, reporting under prefix.
func (s *scratch) validateJSON(p *prog, body []byte, prefix string) *Error {
	root, err := s.d.parse(body)
	if err != nil {
		return &Error{Pointer: prefix, Keyword: "json", Detail: "malformed JSON: " + err.Error()}
	}
	s.ev.reset(&s.d, prefix)
	return s.ev.eval(p, &root)
}

// bytesOf views a string as bytes for the read-only parser, without copying.
func bytesOf(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// Message validates the payloads of one channel.
type Message struct {
	channel  string
	payloads []*prog // a payload is valid when it matches any of them
	pool     *scratchPool
}

// ValidatePayload checks a JSON payload against the channel's message
// schemas: it must match at least one of the messages the channel declares
// (both directions of an AsyncAPI 2.x channel count). Locations are rooted
// at "/payload".
func (m *Message) ValidatePayload(payload []byte) *Error {
	s := m.pool.get()
	defer m.pool.put(s)
	root, err := s.d.parse(payload)
	if err != nil {
		return &Error{Pointer: "/payload", Keyword: "json", Detail: "malformed JSON: " + err.Error()}
	}
	s.ev.reset(&s.d, "/payload")
	if len(m.payloads) == 1 {
		return s.ev.eval(m.payloads[0], &root)
	}
	for _, p := range m.payloads {
		if s.ev.check(p, &root) {
			return nil
		}
	}
	return &Error{Pointer: "/payload", Keyword: "anyOf",
		Detail: fmt.Sprintf("payload matches none of the %d messages of channel %q", len(m.payloads), m.channel)}
}
