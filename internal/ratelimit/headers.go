package ratelimit

import (
	"strconv"
	"time"
)

// Headers formats the rate-limit response headers of
// draft-ietf-httpapi-ratelimit-headers (the structured-field form), for one
// policy:
//
//	RateLimit-Policy: "<name>";q=<burst>;w=<period in seconds>
//	RateLimit: "<name>";r=<remaining>;t=<seconds until full>
//	Retry-After: <seconds>            (RFC 9110 §10.2.3)
//
// Seconds are rounded up, so a client that waits as told is never early;
// w is at least 1. retryAfter is "" when r.Allowed, and also when
// r.RetryAfter is Never (n > burst or rate 0): waiting cannot help then,
// and a client told to wait 292 years might hang rather than give up.
// Callers may map that case to a non-retryable status.
//
// The name is a structured-field String: '"' and '\' are escaped and bytes
// outside printable ASCII, which an sf-string cannot carry, become '?'.
func Headers(policyName string, l Limit, r Result) (policy, ratelimit, retryAfter string) {
	name := appendSFString(make([]byte, 0, len(policyName)+48), policyName)
	n := len(name)

	b := append(name, ";q="...)
	b = strconv.AppendInt(b, int64(l.Burst), 10)
	b = append(b, ";w="...)
	b = strconv.AppendInt(b, max(1, ceilSeconds(l.Period)), 10)
	policy = string(b)

	b = append(b[:n], ";r="...)
	b = strconv.AppendInt(b, int64(r.Remaining), 10)
	b = append(b, ";t="...)
	b = strconv.AppendInt(b, ceilSeconds(r.Reset), 10)
	ratelimit = string(b)

	if !r.Allowed && r.RetryAfter != Never {
		retryAfter = strconv.FormatInt(max(1, ceilSeconds(r.RetryAfter)), 10)
	}
	return policy, ratelimit, retryAfter
}

// ceilSeconds returns d in whole seconds, rounded up; negative is 0.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	s := int64(d / time.Second)
	if d%time.Second != 0 {
		s++
	}
	return s
}

// appendSFString appends s as an RFC 8941 §3.3.3 String.
func appendSFString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c > 0x7e:
			b = append(b, '?')
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
