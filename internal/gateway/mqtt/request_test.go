package mqttgw

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/policy"
)

// withReplies adds the channel devices answer commands on: each device
// may publish on its own reply topic only.
func withReplies(t testing.TB, f *fixture) {
	f.swap(t, func(in *policy.Input) {
		in.Versions = append(in.Versions, model.Version{ID: "v-replies", TenantID: "acme", APIName: "replies", Label: "v1",
			State: model.StatePublished,
			Bindings: model.Bindings{MQTT: &model.MQTTBinding{Channels: []model.MQTTChannel{
				{Topic: "fleet/{deviceId}/replies", Action: "publish", OperationID: "pubReply"}}}},
			Policy: model.Policy{Operations: map[string]model.OperationPolicy{
				"pubReply": {Bindings: []model.IdentityBinding{{Param: "deviceId", Equals: "principal.id"}}}}}})
	})
}

// runRequest: a command published with Gateway.Request reaches the device
// with a Response Topic and Correlation Data; another device's forged
// reply (on the device's reply topic: refused by the engine; on its own:
// not matched) is never taken for the answer; the device's reply is, with
// its content type; without a reply the wait ends with DeadlineExceeded.
func runRequest(t *testing.T, f *fixture, g *Gateway, addr string) {
	withReplies(t, f)
	dev1 := mustV5(t, addr, f.dev1, f.key[f.dev1])
	dev2 := mustV5(t, addr, f.dev2, f.key[f.dev2])
	cmdTopic, replyTopic := "fleet/"+f.dev1+"/commands", "fleet/"+f.dev1+"/replies"
	if rc := dev1.sub(t, cmdTopic, 1); rc > 2 {
		t.Fatalf("subscribe: 0x%02x", rc)
	}
	type result struct {
		r   Reply
		err error
	}
	request := func(timeout time.Duration) chan result {
		done := make(chan result, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			r, err := g.Request(ctx, cmdTopic, []byte(`{"reboot":true}`), 1, replyTopic)
			done <- result{r, err}
		}()
		return done
	}
	forge := func(corr []byte) {
		t.Helper()
		if rc := dev2.pub(t, replyTopic, `{"forged":true}`, &paho.PublishProperties{CorrelationData: corr}); rc != 0x87 {
			t.Fatalf("another device's reply on the device's reply topic: 0x%02x, want 0x87", rc)
		}
		if rc := dev2.pub(t, "fleet/"+f.dev2+"/replies", `{"forged":true}`, &paho.PublishProperties{CorrelationData: corr}); rc != 0 {
			t.Fatalf("a device's reply on its own reply topic: 0x%02x", rc)
		}
	}

	t.Run("reply matched", func(t *testing.T) {
		done := request(10 * time.Second)
		m := dev1.expectMsg(t, cmdTopic)
		if m.Properties == nil || m.Properties.ResponseTopic != replyTopic || len(m.Properties.CorrelationData) != correlationLen {
			t.Fatalf("command properties: %+v", m.Properties)
		}
		forge(m.Properties.CorrelationData)
		// A reply of the right device with other correlation data is not it either.
		if rc := dev1.pub(t, replyTopic, `{"stale":true}`, &paho.PublishProperties{CorrelationData: []byte("old")}); rc != 0 {
			t.Fatalf("stale reply: 0x%02x", rc)
		}
		if rc := dev1.pub(t, replyTopic, `{"ok":true}`, &paho.PublishProperties{CorrelationData: m.Properties.CorrelationData,
			ContentType: "application/json"}); rc != 0 {
			t.Fatalf("reply: 0x%02x", rc)
		}
		select {
		case res := <-done:
			if res.err != nil || string(res.r.Payload) != `{"ok":true}` || res.r.ContentType != "application/json" {
				t.Fatalf("Request = %+v, %v", res.r, res.err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Request did not return")
		}
	})
	t.Run("only forgeries: timeout", func(t *testing.T) {
		start := time.Now()
		done := request(time.Second)
		m := dev1.expectMsg(t, cmdTopic)
		forge(m.Properties.CorrelationData)
		select {
		case res := <-done:
			if !errors.Is(res.err, context.DeadlineExceeded) || time.Since(start) < 900*time.Millisecond {
				t.Fatalf("Request = %+v, %v after %v; want DeadlineExceeded after 1 s", res.r, res.err, time.Since(start))
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Request did not return")
		}
	})
	if n := g.waiting.Load(); n != 0 {
		t.Fatalf("%d requests still counted as waiting", n)
	}
}

func TestRequestEmbedded(t *testing.T) {
	f := newFixture(t, "")
	g := startGateway(t, f, nil)
	runRequest(t, f, g, g.Addrs()["tcp"])
}

func TestRequestProxyMosquitto(t *testing.T) {
	f, g := startProxyToMosquitto(t)
	runRequest(t, f, g, g.Addrs()["tcp"])
}

func TestRequestProxyFleetgate(t *testing.T) {
	f, g, _ := startProxyToFleetgate(t, nil)
	runRequest(t, f, g, g.Addrs()["tcp"])
}

// TestRequestBounds: beyond MaxWaitingReplies a request fails at once with
// ErrBusy; bad topics are refused before anything is published.
func TestRequestBounds(t *testing.T) {
	f := newFixture(t, "")
	g := startGateway(t, f, func(o *Options) { o.MaxWaitingReplies = 1 })
	first := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_, err := g.Request(ctx, "fleet/x/commands", nil, 0, "fleet/x/replies")
		first <- err
	}()
	for i := 0; g.waiting.Load() == 0; i++ {
		if i == 300 {
			t.Fatal("the first request never started waiting")
		}
		time.Sleep(10 * time.Millisecond)
	}
	ctx := context.Background()
	if _, err := g.Request(ctx, "fleet/y/commands", nil, 0, "fleet/y/replies"); !errors.Is(err, ErrBusy) {
		t.Fatalf("second request: %v, want ErrBusy", err)
	}
	if err := <-first; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("first request: %v, want DeadlineExceeded", err)
	}
	for _, tc := range []struct{ name, topic, reply string }{
		{"wildcard reply", "fleet/x/commands", "fleet/+/replies"},
		{"reply is the command topic", "fleet/x/commands", "fleet/x/commands"},
		{"empty reply", "fleet/x/commands", ""},
		{"wildcard topic", "fleet/#", "fleet/x/replies"},
	} {
		if _, err := g.Request(ctx, tc.topic, nil, 1, tc.reply); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}
