package policy

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Bounds of a command's wait for the device's reply. The cap keeps a
// waiting HTTP request (and its slot in the MQTT adapter's bounded set of
// waiting requests) from outliving any sensible client timeout.
const (
	DefaultReplyTimeout = 5 * time.Second
	MinReplyTimeout     = 100 * time.Millisecond
	MaxReplyTimeout     = 30 * time.Second
)

// MQTTTarget is an upstream that publishes an HTTP request's body to a
// device topic instead of proxying it: backends command one device through
// an HTTP operation that the engine authorizes like any other.
type MQTTTarget struct {
	Topic string // template, parameters of the HTTP route fill it: fleet/{deviceId}/commands
	QoS   byte
	// Reply, when set, is the template of the topic the device answers on
	// (MQTT 5 request/response): the command carries it as Response Topic
	// with fresh Correlation Data, and the HTTP request waits up to
	// Timeout for the matching reply.
	Reply   string
	Timeout time.Duration
}

// ParseMQTTTarget parses "mqtt:<topic template>?qos=N[&reply=<topic
// template>[&timeout=D]]": qos 0-2 (default 1); reply a topic template
// that cannot name the command topic; timeout a Go duration from 100ms to
// 30s (default 5s), only with reply. Unknown or repeated parameters are
// errors, so a misspelt "replay=" fails at submit time instead of silently
// turning a request/response command into a fire-and-forget one.
func ParseMQTTTarget(s string) (MQTTTarget, error) {
	if strings.ContainsAny(s, "#+") { // '#' would otherwise parse as a URL fragment, '+' as a space
		return MQTTTarget{}, errors.New("an MQTT target topic may not contain wildcards")
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "mqtt" || u.Opaque == "" || u.Fragment != "" {
		return MQTTTarget{}, errors.New("an MQTT target looks like mqtt:fleet/{deviceId}/commands?qos=1")
	}
	t := MQTTTarget{Topic: u.Opaque, QoS: 1}
	if err := checkTemplate(t.Topic); err != nil {
		return MQTTTarget{}, fmt.Errorf("topic: %w", err)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return MQTTTarget{}, fmt.Errorf("parameters: %v", err)
	}
	for k, vs := range q {
		switch k {
		case "qos", "reply", "timeout":
		default:
			return MQTTTarget{}, fmt.Errorf("unknown parameter %q: want qos, reply or timeout", k)
		}
		if len(vs) != 1 {
			return MQTTTarget{}, fmt.Errorf("parameter %q given %d times", k, len(vs))
		}
	}
	if v, ok := q["qos"]; ok {
		n, err := strconv.Atoi(v[0])
		if err != nil || n < 0 || n > 2 {
			return MQTTTarget{}, errors.New("qos must be 0, 1 or 2")
		}
		t.QoS = byte(n)
	}
	if v, ok := q["reply"]; ok {
		t.Reply, t.Timeout = v[0], DefaultReplyTimeout
		if err := checkTemplate(t.Reply); err != nil {
			return MQTTTarget{}, fmt.Errorf("reply: %w", err)
		}
		if templatesOverlap(t.Topic, t.Reply) {
			// The gateway would take its own command for the reply.
			return MQTTTarget{}, errors.New("reply: the reply topic must differ from the command topic for every parameter value")
		}
	}
	if v, ok := q["timeout"]; ok {
		if t.Reply == "" {
			return MQTTTarget{}, errors.New("timeout: only a command with a reply topic waits")
		}
		d, err := time.ParseDuration(v[0])
		if err != nil || d < MinReplyTimeout || d > MaxReplyTimeout {
			return MQTTTarget{}, fmt.Errorf("timeout must be a duration from %v to %v, like 5s", MinReplyTimeout, MaxReplyTimeout)
		}
		t.Timeout = d
	}
	return t, nil
}

// checkTemplate checks an MQTT topic template: non-empty, valid UTF-8
// without NUL or wildcards [MQTT-1.5.4-1] [MQTT-1.5.4-2] [MQTT-3.3.2-2],
// at most 65535 bytes, and every level that opens a brace a whole
// "{name}" parameter.
func checkTemplate(t string) error {
	switch {
	case t == "":
		return errors.New("must not be empty")
	case len(t) > 65535:
		return errors.New("longer than 65535 bytes")
	case !utf8.ValidString(t) || strings.IndexByte(t, 0) >= 0:
		return errors.New("must be UTF-8 without NUL")
	case strings.ContainsAny(t, "#+"):
		return errors.New("may not contain wildcards")
	}
	for _, seg := range strings.Split(t, "/") {
		if _, ok := paramName(seg); !ok && strings.ContainsAny(seg, "{}") {
			return fmt.Errorf("level %q: a parameter is a whole level like {deviceId}", seg)
		}
	}
	return nil
}

// templatesOverlap reports whether some parameter values expand a and b
// to the same topic: same number of levels, and each pair of levels equal
// or at least one of them a parameter.
func templatesOverlap(a, b string) bool {
	as, bs := strings.Split(a, "/"), strings.Split(b, "/")
	if len(as) != len(bs) {
		return false
	}
	for i := range as {
		_, ap := paramName(as[i])
		_, bp := paramName(bs[i])
		if !ap && !bp && as[i] != bs[i] {
			return false
		}
	}
	return true
}

// Expand fills the topic template from the request's parameters. A
// parameter missing from the route leaves the request unroutable (false).
func (t MQTTTarget) Expand(params []Param) (string, bool) {
	return expandTemplate(t.Topic, params)
}

// ExpandReply fills the reply topic template like Expand.
func (t MQTTTarget) ExpandReply(params []Param) (string, bool) {
	return expandTemplate(t.Reply, params)
}

// expandTemplate fills a topic template. A parameter value that is empty
// or holds '/', a wildcard or NUL would change the topic's shape, so it
// leaves the request unroutable too.
func expandTemplate(tpl string, params []Param) (string, bool) {
	segs := strings.Split(tpl, "/")
	for i, s := range segs {
		name, ok := paramName(s)
		if !ok {
			continue
		}
		found := false
		for _, p := range params {
			if p.Name == name {
				if p.Value == "" || strings.ContainsAny(p.Value, "/+#\x00") {
					return "", false
				}
				segs[i], found = p.Value, true
				break
			}
		}
		if !found {
			return "", false
		}
	}
	return strings.Join(segs, "/"), true
}
