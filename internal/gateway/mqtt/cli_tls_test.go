package mqttgw

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/internal/identity/pki"
	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/policy"
)

// writePEM writes a certificate and its key as PEM files mosquitto_pub
// and mosquitto_sub read with --cert and --key.
func writePEM(t *testing.T, dir, name string, c tls.Certificate) (certFile, keyFile string) {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestMosquittoClientsTLS drives the mqtts listener with mosquitto_sub and
// mosquitto_pub authenticating by a device certificate of the tenant CA
// (--cafile --cert --key, no password), in MQTT 5 and 3.1.1: the device
// receives its command and publishes its telemetry; MQTT 5 shows the
// refusal of another device's topic; a certificate of a foreign CA fails
// the handshake.
//
// WebSocket is not in this scripted test: mosquitto_pub and mosquitto_sub
// 2.0.11 (Debian 12) have no WebSocket transport (`mosquitto_pub --help`
// lists TCP, --unix and --proxy only), so TestWebSocket covers it with
// paho over ws://.
func TestMosquittoClientsTLS(t *testing.T) {
	requireMosquittoClients(t)
	ca, err := pki.NewCA("acme", pki.KeyECDSAP256, 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, "")
	device := "meter" + f.dev1[len("dev1"):] // unique per run, like the fixture's names
	devCert := issueDevice(t, ca, device)
	f.swap(t, func(in *policy.Input) {
		in.Devices = policy.DeviceInput{Devices: []model.Device{{ID: device, TenantID: "acme", Status: model.DeviceActive}},
			Credentials: []model.DeviceCredential{{ID: "c1", TenantID: "acme", DeviceID: device, Kind: model.CredCertificate,
				Fingerprint: pki.Fingerprint(devCert.Leaf), NotAfter: &devCert.Leaf.NotAfter}}}
	})
	srv := newTestPKI(t)
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	g := startGateway(t, f, func(o *Options) {
		o.TLSAddr = "127.0.0.1:0"
		o.TLSConfig = &tls.Config{Certificates: []tls.Certificate{srv.server}, ClientAuth: tls.RequireAndVerifyClientCert,
			ClientCAs: roots, MinVersion: tls.VersionTLS12}
	})
	dir := t.TempDir()
	caFile := filepath.Join(dir, "server-ca.crt")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.ca.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := writePEM(t, dir, "device", devCert)
	strangerCert, strangerKey := writePEM(t, dir, "stranger", srv.issue(t, device, x509.ExtKeyUsageClientAuth))
	host, port, _ := net.SplitHostPort(g.Addrs()["tls"])
	args := func(id, version, cert, key string) []string {
		return []string{"-h", host, "-p", port, "-i", id, "-V", version, "--cafile", caFile, "--cert", cert, "--key", key}
	}
	backend := mustV5(t, g.Addrs()["tcp"], f.backend, f.key[f.backend])
	if c := backend.sub(t, "fleet/"+device+"/telemetry", 1); c != 1 {
		t.Fatalf("backend SUBACK %#x", c)
	}
	for _, version := range []string{"mqttv5", "mqttv311"} {
		t.Run(version, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmdTopic := "fleet/" + device + "/commands"
			var subOut, subErr bytes.Buffer
			sub := exec.CommandContext(ctx, "mosquitto_sub", append(args(device, version, certFile, keyFile),
				"-t", cmdTopic, "-q", "1", "-C", "1", "-W", "15", "-F", "%t %p")...)
			sub.Stdout, sub.Stderr = &subOut, &subErr
			if err := sub.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- sub.Wait() }()
			// No "subscribed" signal from mosquitto_sub: publish the command
			// until it arrives (bounded: 30 tries, 15 s).
			var werr error
		publish:
			for range 30 {
				if err := g.Publish(ctx, cmdTopic, []byte(`{"cmd":"reboot"}`), 1, false); err != nil {
					t.Fatalf("publish command: %v", err)
				}
				select {
				case werr = <-done:
					break publish
				case <-time.After(500 * time.Millisecond):
				}
			}
			if werr != nil || strings.TrimSpace(subOut.String()) != cmdTopic+` {"cmd":"reboot"}` {
				t.Fatalf("mosquitto_sub over TLS: %v, stdout %q, stderr %q", werr, subOut.String(), subErr.String())
			}

			out, err := exec.CommandContext(ctx, "mosquitto_pub", append(args(device+"-pub", version, certFile, keyFile),
				"-t", "fleet/"+device+"/telemetry", "-q", "1", "-m", `{"temp":21}`)...).CombinedOutput()
			if err != nil {
				t.Fatalf("mosquitto_pub over TLS: %v: %s", err, out)
			}
			if m := backend.expectMsg(t, "fleet/"+device+"/telemetry"); string(m.Payload) != `{"temp":21}` {
				t.Fatalf("backend received %s", m.Payload)
			}

			if version == "mqttv5" {
				out, _ := exec.CommandContext(ctx, "mosquitto_pub", append(args(device+"-pub", version, certFile, keyFile),
					"-t", "fleet/"+f.dev2+"/telemetry", "-q", "1", "-m", `{"temp":1}`)...).CombinedOutput()
				if !strings.Contains(strings.ToLower(string(out)), "not authorized") {
					t.Fatalf("another device's topic: output %q, want 'not authorized'", out)
				}
			}

			out, err = exec.CommandContext(ctx, "mosquitto_pub", append(args(device+"-x", version, strangerCert, strangerKey),
				"-t", "fleet/"+device+"/telemetry", "-q", "1", "-m", `{"temp":2}`)...).CombinedOutput()
			if err == nil {
				t.Fatalf("certificate of a foreign CA accepted: %s", out)
			}
			backend.expectNoMsg(t, 200*time.Millisecond)
		})
	}
}
