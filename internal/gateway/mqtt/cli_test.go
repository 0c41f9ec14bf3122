package mqttgw

import (
	"bytes"
	"context"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// requireMosquittoClients fails, naming the package, when the Mosquitto
// command-line clients are missing.
func requireMosquittoClients(t *testing.T) {
	t.Helper()
	for _, bin := range []string{"mosquitto_pub", "mosquitto_sub"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s not found: install the Debian package mosquitto-clients (.ci/run does)", bin)
		}
	}
}

// TestMosquittoClients drives the embedded broker with mosquitto_sub and
// mosquitto_pub over TCP, in MQTT 5 and 3.1.1: an allowed message is
// delivered, a forbidden one is refused with the reason the tools print.
func TestMosquittoClients(t *testing.T) {
	requireMosquittoClients(t)
	f := newFixture(t, "")
	g := startGateway(t, f, nil)
	host, port, _ := net.SplitHostPort(g.Addrs()["tcp"])
	common := func(id, key, version string) []string {
		return []string{"-h", host, "-p", port, "-i", id, "-u", "cli", "-P", key, "-V", version}
	}
	for _, version := range []string{"mqttv5", "mqttv311"} {
		t.Run(version, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			topic := "fleet/" + f.dev1 + "/telemetry"
			var subOut, subErr bytes.Buffer
			sub := exec.CommandContext(ctx, "mosquitto_sub", append(common(f.backend+"-cli", f.key[f.backend], version),
				"-t", "fleet/+/telemetry", "-q", "1", "-C", "1", "-W", "15", "-F", "%t %p")...)
			sub.Stdout, sub.Stderr = &subOut, &subErr
			if err := sub.Start(); err != nil {
				t.Fatal(err)
			}
			// mosquitto_sub has no "subscribed" signal: publish until the
			// subscriber has its message (bounded: 30 tries, 15 s).
			done := make(chan error, 1)
			go func() { done <- sub.Wait() }()
			var err error
			for i := 0; i < 30; i++ {
				pub := exec.CommandContext(ctx, "mosquitto_pub", append(common(f.dev1+"-cli", f.key[f.dev1], version),
					"-t", topic, "-q", "1", "-m", `{"temp":42}`)...)
				if out, perr := pub.CombinedOutput(); perr != nil {
					t.Fatalf("allowed mosquitto_pub failed: %v: %s", perr, out)
				}
				select {
				case err = <-done:
					i = 30
				case <-time.After(500 * time.Millisecond):
				}
			}
			if err != nil || strings.TrimSpace(subOut.String()) != topic+` {"temp":42}` {
				t.Fatalf("mosquitto_sub: %v, stdout %q, stderr %q", err, subOut.String(), subErr.String())
			}

			pub := exec.CommandContext(ctx, "mosquitto_pub", append(common(f.dev1+"-cli", f.key[f.dev1], version),
				"-t", "fleet/"+f.dev2+"/telemetry", "-q", "1", "-m", `{"temp":1}`)...)
			out, perr := pub.CombinedOutput()
			// mosquitto_pub 2.0 reports a refused PUBACK on stderr
			// ("Publish 1 failed: Not authorized.") and still exits 0.
			if version == "mqttv5" && !strings.Contains(strings.ToLower(string(out)), "not authorized") {
				t.Fatalf("forbidden mosquitto_pub: err %v, output %q; want 'not authorized'", perr, out)
			}
			if version == "mqttv311" && perr == nil {
				t.Fatalf("forbidden 3.1.1 mosquitto_pub succeeded (output %q); the gateway closes the connection", out)
			}

			bad := exec.CommandContext(ctx, "mosquitto_sub", append(common(f.dev1+"-cli", "fgk_"+strings.Repeat("C", 43), version),
				"-t", "fleet/+/telemetry", "-C", "1", "-W", "5")...)
			out, perr = bad.CombinedOutput()
			if perr == nil || !strings.Contains(strings.ToLower(string(out)), "bad user") {
				t.Fatalf("wrong key: err %v, output %q; want a 'bad user name or password' refusal", perr, out)
			}
		})
	}
}
