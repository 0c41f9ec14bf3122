package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// RequestTimeout bounds every admin API request, so a wedged server or a
// black-holed network makes the CLI fail instead of hanging a script.
const RequestTimeout = 30 * time.Second

// adminPrefix is where the admin API lives below the server URL.
const adminPrefix = "/admin/v1"

// tenantHeader lets a system admin act on another tenant.
const tenantHeader = "Fleetgate-Tenant"

// maxResponseBytes caps what the CLI reads from one answer: a misbehaving
// server or proxy must not make the client allocate without bound.
const maxResponseBytes = 64 << 20

// Client talks to the admin REST API of a fleetgate server. It is
// deliberately small — JSON in, JSON out, problem+json turned into
// *ProblemError — so that every command shares one path for authentication,
// timeouts and error reporting.
type Client struct {
	// Server is the server's base URL, e.g. http://127.0.0.1:9400; the admin
	// API is below <Server>/admin/v1. A path prefix (reverse proxy) is kept.
	Server string
	// Token is the operator's bearer secret. It only ever goes into the
	// Authorization header, and errors are scrubbed of it.
	Token string
	// Tenant, when not empty, is sent as the Fleetgate-Tenant header.
	Tenant string
	// HTTP is the transport. Nil means a client that refuses redirects (see
	// noRedirects) with RequestTimeout.
	HTTP *http.Client
	// UserAgent is sent as User-Agent when not empty.
	UserAgent string
}

// ProblemError is an RFC 9457 problem answer of the admin API.
type ProblemError struct {
	Type      string         `json:"type,omitempty"`
	Title     string         `json:"title"`
	Status    int            `json:"status"`
	Detail    string         `json:"detail,omitempty"`
	RequestID string         `json:"request_id,omitempty"`
	Errors    []ProblemField `json:"errors,omitempty"`
}

// ProblemField locates one problem in the request, by JSON pointer and, for
// documents the server parsed (specs), by line.
type ProblemField struct {
	Pointer string `json:"pointer"`
	Detail  string `json:"detail"`
	Line    int    `json:"line,omitempty"`
	// At is where the CLI found the pointer in a file it sent the content
	// of ("policy.yaml:12:9"); set locally, never by the server.
	At string `json:"-"`
}

// Error renders the problem the way the CLI prints it: a headline, then one
// indented line per field error. Server text is sanitized because it may echo
// user input, and a terminal must not interpret it.
func (e *ProblemError) Error() string {
	var b strings.Builder
	title := e.Title
	if title == "" {
		title = http.StatusText(e.Status)
	}
	fmt.Fprintf(&b, "%s (%d)", sanitize(title), e.Status)
	if e.Detail != "" {
		b.WriteString(": " + sanitize(e.Detail))
	}
	for _, f := range e.Errors {
		b.WriteString("\n  ")
		if f.At != "" {
			b.WriteString(sanitize(f.At) + ": ")
		}
		if f.Pointer != "" {
			b.WriteString(sanitize(f.Pointer) + ": ")
		}
		b.WriteString(sanitize(f.Detail))
		if f.Line > 0 {
			fmt.Fprintf(&b, " (line %d)", f.Line)
		}
	}
	return b.String()
}

// StatusError is an error answer that is not a problem document, typically
// from a proxy in front of the server.
type StatusError struct {
	Status int
	Body   string // the start of the body, for a hint
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("server answered %d %s", e.Status, http.StatusText(e.Status))
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// NetworkError means no HTTP answer arrived. It names the server so that a
// wrong --server or FLEETGATE_SERVER is obvious.
type NetworkError struct {
	Server string // redacted base URL
	Method string
	Path   string
	Err    error
}

func (e *NetworkError) Error() string {
	if errors.Is(e.Err, context.DeadlineExceeded) {
		return fmt.Sprintf("no answer from fleetgate server at %s within %s (%s %s)", e.Server, RequestTimeout, e.Method, e.Path)
	}
	return fmt.Sprintf("cannot reach fleetgate server at %s (%s %s): %v", e.Server, e.Method, e.Path, e.Err)
}

func (e *NetworkError) Unwrap() error { return e.Err }

// parseServer checks the server URL early, so a typo is reported as such
// rather than as an obscure transport error.
func parseServer(s string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("invalid server URL %q: want http://host:port or https://host", redactURL(s))
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("invalid server URL %q: no query or fragment allowed", redactURL(s))
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// redactURL hides a password embedded in a URL before it is printed.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return "<unparsable URL>"
}

// noRedirects stops the default client from following redirects: following
// would silently turn a POST into a GET and could carry the bearer token to a
// URL the operator never configured.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// RawBody is a request body sent as it is, with its own media type, for the
// endpoints that take a document rather than JSON (device imports as CSV).
type RawBody struct {
	ContentType string
	Body        io.Reader
	Length      int64 // bytes Body holds; 0: unknown (sent chunked)
}

// Do sends one request to <Server>/admin/v1<path> (path may carry a query)
// with body encoded as JSON (nil: no body; a *RawBody is sent as it is) and
// decodes a JSON answer into out (nil: discarded; an empty answer leaves out
// untouched; a *string or *[]byte receives the body as it is). Error answers
// become *ProblemError or *StatusError, transport failures *NetworkError.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	base, err := parseServer(c.Server)
	if err != nil {
		return err
	}
	var rdr io.Reader
	contentType := ""
	raw, isRaw := body.(*RawBody)
	switch {
	case isRaw:
		rdr, contentType = raw.Body, raw.ContentType
	case body != nil:
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encoding request: %w", err)
		}
		rdr, contentType = bytes.NewReader(b), "application/json"
	}
	ctx, cancel := context.WithTimeout(ctx, RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, base.String()+adminPrefix+path, rdr)
	if err != nil {
		return fmt.Errorf("building request %s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json, application/problem+json")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if isRaw && raw.Length > 0 {
		req.ContentLength = raw.Length
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if c.Tenant != "" {
		req.Header.Set(tenantHeader, c.Tenant)
	}
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: RequestTimeout, CheckRedirect: noRedirects}
	}
	resp, err := hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is already part of the message
		}
		return &NetworkError{Server: base.Redacted(), Method: method, Path: adminPrefix + path, Err: scrubbed{err, c.Token}}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return &NetworkError{Server: base.Redacted(), Method: method, Path: adminPrefix + path, Err: scrubbed{err, c.Token}}
	}
	if len(data) > maxResponseBytes {
		return fmt.Errorf("answer to %s %s exceeds %d bytes", method, path, maxResponseBytes)
	}
	switch {
	case resp.StatusCode >= 400:
		return c.errorFrom(resp, data)
	case resp.StatusCode >= 300:
		return fmt.Errorf("server at %s redirected %s %s to %q; set --server to the final URL",
			base.Redacted(), method, path, redactURL(resp.Header.Get("Location")))
	}
	if bin, ok := out.(*[]byte); ok { // a binary answer (CRLs), byte for byte
		*bin = data
		return nil
	}
	if out == nil || len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if text, ok := out.(*string); ok { // a non-JSON answer (Markdown reports)
		*text = string(data)
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decoding answer to %s %s: %w", method, path, err)
	}
	return nil
}

// errorFrom turns an error answer into *ProblemError when it is one (or a
// JSON body shaped like one), else *StatusError. The token is scrubbed from
// anything the server echoes back.
func (c *Client) errorFrom(resp *http.Response, data []byte) error {
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if ct == "application/problem+json" || ct == "application/json" {
		var p ProblemError
		if json.Unmarshal(data, &p) == nil && (p.Title != "" || p.Status != 0 || p.Detail != "") {
			if p.Status == 0 {
				p.Status = resp.StatusCode
			}
			p.Type = redact(p.Type, c.Token)
			p.Title = redact(p.Title, c.Token)
			p.Detail = redact(p.Detail, c.Token)
			p.RequestID = redact(p.RequestID, c.Token)
			for i := range p.Errors {
				p.Errors[i].Pointer = redact(p.Errors[i].Pointer, c.Token)
				p.Errors[i].Detail = redact(p.Errors[i].Detail, c.Token)
			}
			return &p
		}
	}
	snippet := ""
	if ct == "text/plain" || ct == "application/json" || ct == "application/problem+json" {
		snippet = strings.TrimSpace(string(data))
		if len(snippet) > 200 {
			snippet = snippet[:200] + "..."
		}
		snippet = sanitize(redact(snippet, c.Token))
	}
	return &StatusError{Status: resp.StatusCode, Body: snippet}
}

// scrubbed wraps a transport error so that its message never carries the
// token, whatever a lower layer chose to put in it.
type scrubbed struct {
	err   error
	token string
}

func (s scrubbed) Error() string { return redact(s.err.Error(), s.token) }
func (s scrubbed) Unwrap() error { return s.err }

// redact replaces every occurrence of secret in s.
func redact(s, secret string) string {
	if secret == "" {
		return s
	}
	return strings.ReplaceAll(s, secret, "[REDACTED]")
}

// escapePath joins path segments, escaping each, and refuses the segments
// that would make the server see a different route ("", ".", "..").
func escapePath(segments ...string) (string, error) {
	var b strings.Builder
	for _, s := range segments {
		if s == "" || s == "." || s == ".." {
			return "", fmt.Errorf("invalid name %s", strconv.Quote(s))
		}
		b.WriteString("/" + url.PathEscape(s))
	}
	return b.String(), nil
}
