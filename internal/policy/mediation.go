package policy

import (
	"errors"
	"net/url"
	"strconv"
	"strings"
)

// MQTTTarget is an upstream that publishes an HTTP request's body to a
// device topic instead of proxying it: backends command one device through
// an HTTP operation that the engine authorizes like any other.
type MQTTTarget struct {
	Topic string // template, parameters of the HTTP route fill it: fleet/{deviceId}/commands
	QoS   byte
}

// ParseMQTTTarget parses "mqtt:<topic template>?qos=N" (qos 0-2, default 1).
func ParseMQTTTarget(s string) (MQTTTarget, error) {
	if strings.ContainsAny(s, "#+") { // '#' would otherwise parse as a URL fragment
		return MQTTTarget{}, errors.New("an MQTT target topic may not contain wildcards")
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "mqtt" || u.Opaque == "" || u.Fragment != "" {
		return MQTTTarget{}, errors.New("an MQTT target looks like mqtt:fleet/{deviceId}/commands?qos=1")
	}
	t := MQTTTarget{Topic: u.Opaque, QoS: 1}
	if q := u.Query().Get("qos"); q != "" {
		n, err := strconv.Atoi(q)
		if err != nil || n < 0 || n > 2 {
			return MQTTTarget{}, errors.New("qos must be 0, 1 or 2")
		}
		t.QoS = byte(n)
	}
	return t, nil
}

// Expand fills the topic template from the request's parameters. A
// parameter missing from the route leaves the request unroutable (false).
func (t MQTTTarget) Expand(params []Param) (string, bool) {
	segs := strings.Split(t.Topic, "/")
	for i, s := range segs {
		name, ok := paramName(s)
		if !ok {
			continue
		}
		found := false
		for _, p := range params {
			if p.Name == name {
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
