package httpgw

import (
	"context"
	"errors"
	"mime"
	"net/http"
	"strconv"

	"github.com/fleetgate/fleetgate/internal/policy"
)

// Requester is the optional capability of a Publisher to wait for a
// device's reply to a command (MQTT 5 request/response). The composition
// root's Publisher implements it when the MQTT data plane runs.
type Requester interface {
	// Request publishes payload on topic with replyTopic as the response
	// topic and returns the matching reply's payload and content type. It
	// gives up when ctx ends (an error wrapping context.DeadlineExceeded)
	// and returns ErrTooManyWaiting rather than queue.
	Request(ctx context.Context, topic string, payload []byte, qos byte, replyTopic string) (reply []byte, contentType string, err error)
}

// ErrTooManyWaiting is what a Requester returns when its bound of commands
// waiting for a reply is reached.
var ErrTooManyWaiting = errors.New("too many commands are waiting for a reply")

// commandReply publishes a command whose target declares a reply topic
// and answers with the device's reply: 200 and the reply payload (its
// content type from the reply's Content Type property), 504 when the
// device does not answer within the target's timeout, 503 when too many
// commands are waiting already. The reply topic must be a declared MQTT
// publish channel: otherwise no device could ever be allowed to answer,
// and every request would wait for nothing.
func (g *Gateway) commandReply(w http.ResponseWriter, r *http.Request, reqID string, s *policy.Snapshot, rt *policy.Route,
	params []policy.Param, topic string, body []byte) int {
	target := rt.Command
	rq, ok := g.o.Publisher.(Requester)
	if !ok {
		g.problem(w, r, reqID, http.StatusBadGateway, "no-upstream", "Bad gateway", "commands that wait for a reply need the MQTT data plane (--mqtt-addr)", "")
		return http.StatusBadGateway
	}
	replyTopic, ok := target.ExpandReply(params)
	if !ok {
		g.problem(w, r, reqID, http.StatusBadGateway, "no-upstream", "Bad gateway", "the request's parameters do not make a valid reply topic", "")
		return http.StatusBadGateway
	}
	var pbuf [policy.MaxParams]policy.Param
	if rrt, _ := s.MatchMQTT("publish", replyTopic, pbuf[:0]); rrt == nil {
		g.problem(w, r, reqID, http.StatusBadGateway, "no-reply-channel", "Bad gateway",
			"no published API declares publish "+target.Reply+": devices could not reply", "")
		return http.StatusBadGateway
	}
	ctx, cancel := context.WithTimeout(r.Context(), target.Timeout)
	defer cancel()
	reply, ctype, err := rq.Request(ctx, topic, body, target.QoS, replyTopic)
	switch {
	case err == nil:
	case errors.Is(err, ErrTooManyWaiting):
		w.Header().Set("Retry-After", "1")
		g.problem(w, r, reqID, http.StatusServiceUnavailable, "too-many-waiting", "Service unavailable", "too many commands are waiting for a reply; retry later", "")
		return http.StatusServiceUnavailable
	case errors.Is(err, context.DeadlineExceeded) && r.Context().Err() == nil:
		g.problem(w, r, reqID, http.StatusGatewayTimeout, "reply-timeout", "Gateway timeout",
			"the device did not reply on "+replyTopic+" within "+target.Timeout.String(), "")
		return http.StatusGatewayTimeout
	case r.Context().Err() != nil:
		return 499 // the client went away; nobody reads an answer
	default:
		g.o.Logger.Warn("command request failed", "topic", topic, "err", err.Error(), "request_id", reqID)
		g.problem(w, r, reqID, http.StatusBadGateway, "upstream-mqtt", "Bad gateway", "the command could not be published", "")
		return http.StatusBadGateway
	}
	h := w.Header()
	h.Set("Content-Type", replyContentType(ctype))
	h.Set("Content-Length", strconv.Itoa(len(reply)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(reply)
	return http.StatusOK
}

// replyContentType is the reply's MQTT 5 Content Type when it is a valid
// media type, application/octet-stream otherwise: the device chooses it,
// and a malformed value must not reach the backend as a header.
func replyContentType(ct string) string {
	if ct == "" || len(ct) > 256 {
		return "application/octet-stream"
	}
	if _, _, err := mime.ParseMediaType(ct); err != nil {
		return "application/octet-stream"
	}
	return ct
}
