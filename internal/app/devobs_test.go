package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/fleetgate/fleetgate/internal/config"
	"github.com/fleetgate/fleetgate/internal/policy"
	"github.com/fleetgate/fleetgate/internal/store"
	"github.com/fleetgate/fleetgate/internal/store/sqlite"
)

func withMQTTS(interval time.Duration) func(*config.Config) {
	return func(c *config.Config) {
		c.MQTTSAddr, c.DeviceSeenInterval = "127.0.0.1:0", interval
	}
}

// push sends one reading over HTTPS with the device certificate and an
// optional firmware header; it returns the status.
func (d *device) push(t *testing.T, firmware string) int {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: d.roots, Certificates: []tls.Certificate{d.pair}}}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest("POST", d.https+"/v1/meters/meter-17/readings", strings.NewReader(`{"kwh":1}`))
	req.Header.Set("Content-Type", "application/json")
	if firmware != "" {
		req.Header.Set("Fleetgate-Firmware", firmware)
	}
	res, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// mqttsConnect opens an MQTT 5 session over TLS with the device
// certificate, reporting firmware as a CONNECT user property; it returns
// the CONNACK reason code (0 on success) and closes the session.
func (d *device) mqttsConnect(t *testing.T, firmware string) byte {
	t.Helper()
	conn, err := tls.Dial("tcp", d.app.MQTTAddrs()["tls"], &tls.Config{RootCAs: d.roots, ServerName: "localhost", Certificates: []tls.Certificate{d.pair}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := paho.NewClient(paho.ClientConfig{Conn: conn, PacketTimeout: 5 * time.Second, OnClientError: func(error) {}})
	cp := &paho.Connect{ClientID: "meter-17", KeepAlive: 0, CleanStart: true}
	if firmware != "" {
		cp.Properties = &paho.ConnectProperties{User: paho.UserProperties{{Key: "firmware", Value: firmware}}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ca, err := c.Connect(ctx, cp)
	if ca != nil {
		if ca.ReasonCode == 0 {
			_ = c.Disconnect(&paho.Disconnect{})
		}
		return ca.ReasonCode
	}
	t.Fatalf("mqtts connect: %v", err)
	return 0
}

// waitDevice polls GET /devices/meter-17 until ok accepts it (5 s hang
// guard) and returns it.
func (d *device) waitDevice(t *testing.T, what string, ok func(map[string]any) bool) map[string]any {
	t.Helper()
	var dev map[string]any
	for i := 0; i < 250; i++ {
		if dev = d.adm(d.root, "GET", "/devices/meter-17", nil, 200); ok(dev) {
			return dev
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: device record %v", what, dev)
	return nil
}

// TestDeviceSeenAndFirmware: the data plane notes the device on each
// authenticated request and the flusher writes last_seen and the firmware
// it reports (HTTP header, MQTT 5 CONNECT user property) to the registry,
// audited with the device as actor; the next snapshot carries the new
// firmware in the principal; a malformed version is counted and ignored.
func TestDeviceSeenAndFirmware(t *testing.T) {
	d := enrolledDevice(t, withMQTTS(100*time.Millisecond))
	enrolled := d.adm(d.root, "GET", "/devices/meter-17", nil, 200)["last_seen"].(string)
	waitStatus(t, d, 200)
	d.waitDevice(t, "firmware from the HTTP header", func(m map[string]any) bool {
		ls, _ := m["last_seen"].(string)
		return m["firmware"] == "" || m["firmware"] == nil || ls == enrolled
	})
	if st := d.push(t, "1.4.2"); st != 200 {
		t.Fatalf("push: %d", st)
	}
	dev := d.waitDevice(t, "firmware from the HTTP header", func(m map[string]any) bool { return m["firmware"] == "1.4.2" })
	if ls, _ := dev["last_seen"].(string); ls <= enrolled || dev["first_seen"] == nil {
		t.Fatalf("last_seen %v not after enrollment %s", dev["last_seen"], enrolled)
	}
	audit := d.adm(d.root, "GET", "/audit?action=device.firmware_reported", nil, 200)["items"].([]any)
	if len(audit) != 1 {
		t.Fatalf("firmware audit records: %v", audit)
	}
	rec := audit[0].(map[string]any)
	if det, _ := json.Marshal(rec["detail"]); rec["actor"] != "device:meter-17" || rec["object_id"] != "meter-17" || string(det) != `{"from":"","to":"1.4.2"}` {
		t.Fatalf("firmware audit record: %v", rec)
	}
	leaf, _ := x509.ParseCertificate(d.pair.Certificate[0])
	principalFirmware := func() string {
		p, st, _ := d.app.engine.AuthenticateSession(d.app.engine.Snapshot(), policy.Credentials{PeerCert: leaf}, time.Now())
		if st != policy.Allow {
			return "refused"
		}
		return p.Firmware
	}
	for i := 0; i < 250 && principalFirmware() != "1.4.2"; i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if fw := principalFirmware(); fw != "1.4.2" {
		t.Fatalf("principal firmware after the snapshot: %q", fw)
	}

	// A malformed version is ignored and counted; the request still counts
	// as a sighting.
	bad := d.app.devices.Stats().BadFirmware
	if st := d.push(t, "1.4"); st != 200 {
		t.Fatalf("push with a malformed firmware: %d", st)
	}
	if _, err := d.app.flushSeen(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := d.app.devices.Stats().BadFirmware; got != bad+1 {
		t.Fatalf("malformed firmware counter %d, want %d", got, bad+1)
	}
	if fw := d.adm(d.root, "GET", "/devices/meter-17", nil, 200)["firmware"]; fw != "1.4.2" {
		t.Fatalf("malformed version replaced the firmware: %v", fw)
	}

	// MQTT 5: the CONNECT user property.
	if rc := d.mqttsConnect(t, "2.0.0-rc.1"); rc != 0 {
		t.Fatalf("mqtts connect: reason %#x", rc)
	}
	d.waitDevice(t, "firmware from the MQTT CONNECT", func(m map[string]any) bool { return m["firmware"] == "2.0.0-rc.1" })
}

// waitStatus waits until the published route answers want to the device.
func waitStatus(t *testing.T, d *device, want int) {
	t.Helper()
	st := 0
	for i := 0; i < 250; i++ {
		if st = d.push(t, ""); st == want {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("device push: %d, want %d", st, want)
}

// TestRefusedAttemptsBecomeFindings presents a revoked certificate, and the
// certificate of a suspended device, on HTTPS and on MQTT over TLS, then
// reads the findings: each listener's attempts are reported with the
// device, the certificate serial, the count and the remote address.
func TestRefusedAttemptsBecomeFindings(t *testing.T) {
	tests := []struct {
		name      string
		bar       func(d *device)
		finding   string
		wantExtra string
	}{
		{"revoked certificate", func(d *device) {
			d.adm(d.root, "POST", "/devices/meter-17/credentials/"+d.issued.Credential.ID+"/revoke", map[string]any{"reason": "keyCompromise"}, 200)
		}, "revoked-credential-attempts", ""},
		{"suspended device", func(d *device) {
			d.adm(d.root, "PATCH", "/devices/meter-17", map[string]any{"status": "suspended", "reason": "unpaid"}, 200)
		}, "suspended-device-attempts", "[suspended]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := enrolledDevice(t, withMQTTS(time.Hour))
			waitStatus(t, d, 200)
			findings := func() []any {
				return d.adm(d.root, "GET", "/security/findings", nil, 200)["findings"].([]any)
			}
			for _, f := range findings() {
				if id := f.(map[string]any)["id"]; id == tc.finding {
					t.Fatalf("finding %s before any refused attempt", id)
				}
			}
			tc.bar(d)
			waitStatus(t, d, 401)
			// The first 401's handshake may have run against the snapshot
			// before the change (the swap landed between handshake and
			// request), so two more handshakes are made against the new one.
			for i := 0; i < 2; i++ {
				if st := d.push(t, ""); st != 401 {
					t.Fatalf("push after the change: %d", st)
				}
			}
			if rc := d.mqttsConnect(t, ""); rc != 0x86 {
				t.Fatalf("mqtts connect with a refused certificate: reason %#x, want 0x86", rc)
			}
			var got map[string]any
			for _, f := range findings() {
				if m := f.(map[string]any); m["id"] == tc.finding {
					got = m
				}
			}
			if got == nil || got["severity"] != "high" || got["fix"] == "" {
				t.Fatalf("no %s finding: %v", tc.finding, findings())
			}
			objs := got["objects"].([]any)
			if len(objs) != 2 {
				t.Fatalf("objects %v, want one per listener", objs)
			}
			leaf, _ := x509.ParseCertificate(d.pair.Certificate[0])
			for i, proto := range []string{"https", "mqtts"} {
				o := objs[i].(string)
				if !strings.HasPrefix(o, "device:meter-17 certificate "+leaf.SerialNumber.Text(16)+" ("+proto+": ") ||
					!strings.Contains(o, "from 127.0.0.1") || !strings.Contains(o, tc.wantExtra) {
					t.Errorf("object %q", o)
				}
			}
			if !strings.Contains(objs[0].(string), "https: ") || strings.Contains(objs[0].(string), "https: 1 attempt") {
				t.Errorf("HTTPS attempts not all counted (2 handshakes at least after the change): %q", objs[0])
			}
		})
	}
}

// TestRevokedAPIKeyAttemptsOverMQTT: an MQTT CONNECT with a revoked API key
// as password is refused and reported as a revoked credential still
// attempting to connect, naming the application and the key (never the
// secret).
func TestRevokedAPIKeyAttemptsOverMQTT(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir, cfg.AdminAddr, cfg.HTTPAddr, cfg.MQTTAddr = t.TempDir(), "127.0.0.1:0", "", "127.0.0.1:0"
	cfg.AdminToken = "fgt_mqtt-attempts-token-0123456789a"
	a := startNode(t, cfg)
	root := cfg.AdminToken
	adminCall(t, a, root, "POST", "/apps", map[string]any{"name": "meter1"}, 201)
	k := adminCall(t, a, root, "POST", "/apps/meter1/keys", map[string]any{"name": "k"}, 201)
	key, keyID := k["secret"].(string), k["key"].(map[string]any)["id"].(string)
	connect := func() byte {
		conn, err := net.DialTimeout("tcp", a.MQTTAddrs()["tcp"], 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		c := paho.NewClient(paho.ClientConfig{Conn: conn, PacketTimeout: 5 * time.Second, OnClientError: func(error) {}})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ca, err := c.Connect(ctx, &paho.Connect{ClientID: "meter1", KeepAlive: 0, CleanStart: true, Password: []byte(key), PasswordFlag: true})
		if ca == nil {
			t.Fatalf("connect: %v", err)
		}
		return ca.ReasonCode
	}
	// Snapshots follow admin changes asynchronously: first the key works,
	// then, once revoked, it is refused.
	rc := byte(0xff)
	for i := 0; i < 250 && rc != 0; i++ {
		if rc = connect(); rc != 0 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if rc != 0 {
		t.Fatalf("live key: reason %#x", rc)
	}
	adminCall(t, a, root, "POST", "/apps/meter1/keys/"+keyID+"/revoke", map[string]any{}, 200)
	for i := 0; i < 250; i++ {
		if rc = connect(); rc == 0x86 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if rc != 0x86 {
		t.Fatalf("revoked key: reason %#x, want 0x86", rc)
	}
	var objs []any
	for _, f := range adminCall(t, a, root, "GET", "/security/findings", nil, 200)["findings"].([]any) {
		if m := f.(map[string]any); m["id"] == "revoked-credential-attempts" {
			objs = m["objects"].([]any)
		}
	}
	if len(objs) != 1 || !strings.HasPrefix(objs[0].(string), "app:meter1 api_key:"+keyID+" (mqtt: ") ||
		!strings.Contains(objs[0].(string), "from 127.0.0.1") || strings.Contains(objs[0].(string), key) {
		t.Fatalf("revoked-credential-attempts objects: %v", objs)
	}
}

// TestShutdownFlushesSightings: sightings noted since the last flush are
// written when the node stops (after its listeners), not lost.
func TestShutdownFlushesSightings(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir, cfg.AdminAddr, cfg.HTTPAddr, cfg.DeviceSeenInterval = t.TempDir(), "127.0.0.1:0", "", time.Hour
	cfg.AdminToken = "fgt_seen-shutdown-token-0123456789ab"
	a, err := New(context.Background(), cfg, slog.New(slog.DiscardHandler), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	adminCall(t, a, cfg.AdminToken, "POST", "/devices", map[string]any{"id": "meter-9", "status": "active"}, 201)
	at := time.Now()
	a.devices.Seen(&policy.Principal{Kind: "device", Tenant: "default", ID: "meter-9"}, "3.1.4", at)
	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	err = st.View(context.Background(), func(tx store.Tx) error {
		d, err := tx.GetDevice("default", "meter-9")
		if err != nil {
			return err
		}
		if d.Firmware != "3.1.4" || d.LastSeen == nil || !d.LastSeen.Equal(at.Truncate(time.Microsecond).UTC()) || d.FirstSeen == nil {
			t.Errorf("after shutdown: firmware %q last_seen %v first_seen %v", d.Firmware, d.LastSeen, d.FirstSeen)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
