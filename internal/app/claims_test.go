package app

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/fleetgate/fleetgate/internal/config"
	"github.com/fleetgate/fleetgate/internal/identity/pki/pkitest"
)

// claimNode is a node with HTTP, HTTPS and MQTTS data-plane listeners, a
// tenant CA and a published API whose one operation accepts device
// certificates or API keys and binds the meter to the device.
type claimNode struct {
	t     *testing.T
	app   *App
	root  string
	roots *x509.CertPool
	https string // https://localhost:port
	http  string
}

func newClaimNode(t *testing.T) *claimNode {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Header.Get("X-Fleetgate-Subject"))
	}))
	t.Cleanup(up.Close)
	dir := t.TempDir()
	_, srvCert, srvKey := selfSigned(t, "localhost", true)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	_ = os.WriteFile(certFile, srvCert, 0o600)
	_ = os.WriteFile(keyFile, srvKey, 0o600)
	cfg := config.Default()
	cfg.DataDir, cfg.AdminAddr, cfg.HTTPAddr, cfg.HTTPSAddr, cfg.MQTTSAddr = dir, "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.TLSCert, cfg.TLSKey, cfg.AdminToken = certFile, keyFile, "fgt_claims-test-token-0123456789abcd"
	cfg.DeviceKEK = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32))
	a := startNode(t, cfg)
	n := &claimNode{t: t, app: a, root: cfg.AdminToken, roots: x509.NewCertPool()}
	n.roots.AppendCertsFromPEM(srvCert)
	for _, u := range a.DataURLs() {
		if strings.HasPrefix(u, "https://") {
			n.https = "https://localhost" + strings.TrimPrefix(u, "https://127.0.0.1")
		} else {
			n.http = u
		}
	}
	n.adm("POST", "/ca", map[string]any{}, 201)
	n.adm("POST", "/operators", map[string]any{"name": "rev", "roles": []string{"reviewer"}}, 201)
	rev := createToken(t, a.AdminURL(), n.root, "rev")
	n.adm("POST", "/apis", map[string]any{"name": "readings", "owner": "energy"}, 201)
	n.adm("POST", "/apis/readings/versions", map[string]any{"version": "v1", "upstream": map[string]any{"targets": []string{up.URL}},
		"bindings": map[string]any{"http": map[string]any{"base_path": "/v1", "operations": []any{map[string]any{"method": "POST", "path": "/meters/{meterId}/readings", "operation_id": "push"}}}},
		"policy": map[string]any{"auth": map[string]any{"methods": []string{"mtls", "api_key"}},
			"operations": map[string]any{"push": map[string]any{"bindings": []any{map[string]any{"param": "meterId", "equals": "principal.device"}}}}}}, 201)
	n.adm("POST", "/apis/readings/versions/v1/transitions", map[string]any{"to": "in_review"}, 200)
	adminCall(t, a, rev, "POST", "/apis/readings/versions/v1/transitions", map[string]any{"to": "published"}, 200)
	return n
}

func (n *claimNode) adm(method, path string, body any, want int) map[string]any {
	n.t.Helper()
	return adminCall(n.t, n.app, n.root, method, path, body, want)
}

// push posts a reading for meter over HTTPS with cert (may be nil) and
// extra headers; it answers the status and body.
func (n *claimNode) push(t *testing.T, cert *tls.Certificate, meter string, hdr ...string) (int, string) {
	t.Helper()
	tc := &tls.Config{RootCAs: n.roots}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	tr := &http.Transport{TLSClientConfig: tc}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest("POST", n.https+"/v1/meters/"+meter+"/readings", strings.NewReader(`{"kwh":1}`))
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// pushUntil retries push until it answers want (snapshots follow admin
// changes asynchronously), for at most 100 tries.
func (n *claimNode) pushUntil(t *testing.T, cert *tls.Certificate, meter string, want int) (int, string) {
	t.Helper()
	var status int
	var body string
	for i := 0; i < 100; i++ {
		if status, body = n.push(t, cert, meter); status == want {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return status, body
}

// mqttsConnect opens an MQTT 5 session over TLS with cert and password;
// it reports whether the broker accepted it.
func (n *claimNode) mqttsConnect(t *testing.T, cert *tls.Certificate, clientID string, password []byte) bool {
	t.Helper()
	tc := &tls.Config{RootCAs: n.roots, ServerName: "localhost"}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", n.app.MQTTAddrs()["tls"], tc)
	if err != nil {
		return false // a handshake refusal is a refusal too
	}
	defer conn.Close()
	c := paho.NewClient(paho.ClientConfig{Conn: conn, PacketTimeout: 5 * time.Second, OnClientError: func(error) {}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cp := &paho.Connect{ClientID: clientID, KeepAlive: 0, CleanStart: true}
	if password != nil {
		cp.Password, cp.PasswordFlag = password, true
	}
	ca, err := c.Connect(ctx, cp)
	if err == nil && ca != nil && ca.ReasonCode == 0 {
		_ = c.Disconnect(&paho.Disconnect{})
		return true
	}
	return false
}

func claimJSON(t *testing.T, device, model string) ([]byte, *ecdsa.PrivateKey) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: device}}, key)
	b, _ := json.Marshal(map[string]string{"device_id": device, "model": model,
		"csr": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr}))})
	return b, key
}

func keyPair(t *testing.T, certPEM string, key any) tls.Certificate {
	t.Helper()
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	pair, err := tls.X509KeyPair([]byte(certPEM), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

// TestClaimCertificateOnlyEnrolls: a device of a batch enrolls over HTTPS
// with the batch's claim certificate as its TLS client certificate, then
// works with its own certificate; the claim certificate and the claim
// token authenticate nobody on HTTP or MQTT, and the token is no API key.
func TestClaimCertificateOnlyEnrolls(t *testing.T) {
	n := newClaimNode(t)
	out := n.adm("POST", "/claims", map[string]any{"name": "batch-1", "models": []string{"em-300"}, "max_devices": 5, "expires_in": "24h", "kind": "certificate"}, 201)
	claimPair, err := tls.X509KeyPair([]byte(out["certificate"].(string)), []byte(out["private_key"].(string)))
	if err != nil {
		t.Fatal(err)
	}
	token := n.adm("POST", "/claims", map[string]any{"name": "batch-2", "models": []string{"em-300"}, "max_devices": 5, "expires_in": "24h"}, 201)["secret"].(string)

	// Enroll meter-50 with the claim certificate.
	body, devKey := claimJSON(t, "meter-50", "em-300")
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: n.roots, Certificates: []tls.Certificate{claimPair}}}
	defer tr.CloseIdleConnections()
	res, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Post(n.https+"/.well-known/fleetgate/claim", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var issued struct {
		Certificate string `json:"certificate"`
	}
	_ = json.NewDecoder(res.Body).Decode(&issued)
	res.Body.Close()
	if res.StatusCode != 201 || issued.Certificate == "" {
		t.Fatalf("claim-certificate enrollment: %d", res.StatusCode)
	}
	devPair := keyPair(t, issued.Certificate, devKey)
	if status, body := n.pushUntil(t, &devPair, "meter-50", 200); status != 200 || body != "device:meter-50" {
		t.Fatalf("enrolled device: %d %q", status, body)
	}
	if !n.mqttsConnect(t, &devPair, "meter-50", nil) {
		t.Fatal("enrolled device refused on MQTTS")
	}

	// The claim credentials do nothing else, over real sockets.
	for _, meter := range []string{"meter-50", "batch-1"} {
		if status, body := n.push(t, &claimPair, meter); status != 401 {
			t.Fatalf("claim certificate on HTTPS (%s): %d %s", meter, status, body)
		}
	}
	if status, body := n.push(t, nil, "meter-50", "X-API-Key", token); status != 401 {
		t.Fatalf("claim token as API key: %d %s", status, body)
	}
	if status, body := n.push(t, nil, "meter-50", "Authorization", "Bearer "+token); status != 401 {
		t.Fatalf("claim token as bearer: %d %s", status, body)
	}
	if n.mqttsConnect(t, &claimPair, "meter-50", nil) {
		t.Fatal("claim certificate accepted on MQTTS")
	}
	if n.mqttsConnect(t, nil, "meter-50", []byte(token)) {
		t.Fatal("claim token accepted as MQTT password")
	}
	// Nor does it renew anything over EST.
	estRes, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Post(n.https+"/.well-known/est/simplereenroll", "application/pkcs10", strings.NewReader("MIIB"))
	if err != nil {
		t.Fatal(err)
	}
	estRes.Body.Close()
	if estRes.StatusCode != 401 {
		t.Fatalf("claim certificate at EST simplereenroll: %d", estRes.StatusCode)
	}
	// The token enrolls over plain HTTP too, and is no enrollment token.
	body2, _ := claimJSON(t, "meter-51", "em-300")
	req, _ := http.NewRequest("POST", n.http+"/.well-known/fleetgate/claim", bytes.NewReader(body2))
	req.Header.Set("Authorization", "Bearer "+token)
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != 201 {
		t.Fatalf("token enrollment: %v %v", err, res)
	}
	req, _ = http.NewRequest("POST", n.http+"/.well-known/fleetgate/enroll", bytes.NewReader(body2))
	req.Header.Set("Authorization", "Bearer "+token)
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != 401 {
		t.Fatalf("claim token at /enroll: %v %v", err, res)
	}
	// A revoked claim certificate no longer enrolls.
	n.adm("POST", "/claims/batch-1/revoke", map[string]any{}, 200)
	body3, _ := claimJSON(t, "meter-52", "em-300")
	res, err = (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Post(n.https+"/.well-known/fleetgate/claim", "application/json", bytes.NewReader(body3))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 401 {
		t.Fatalf("revoked claim certificate: %d", res.StatusCode)
	}
}

// TestExternalCADevice: a CA made in the test is registered with a CN
// mapping; a certificate it issued for a registered active device
// authenticates as that device over HTTPS, one for an unregistered id does
// not, and decommissioning the device closes its live connection and
// refuses the next one.
func TestExternalCADevice(t *testing.T) {
	n := newClaimNode(t)
	ca := pkitest.NewExternalCA(t, nil)
	leaf := func(cn string) tls.Certificate {
		key := pkitest.NewKey(t)
		tmpl := &x509.Certificate{Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now().Add(-time.Minute),
			NotAfter: time.Now().Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
		return keyPair(t, string(ca.Issue(t, tmpl, key.Public())), key)
	}
	// The registration code as the admin API gives it, and the proof the
	// CA key signs for it.
	code := n.adm("GET", "/ca/external/registration-code", nil, 200)["registration_code"].(string)
	proof := ca.VerificationWith(t, func(c *x509.Certificate) { c.Subject.CommonName = code })
	n.adm("POST", "/ca/external", map[string]any{"name": "factory", "certificate": ca.PEM, "verification_certificate": proof,
		"mapping": map[string]any{"source": "cn"}}, 201)
	n.adm("POST", "/devices", map[string]any{"id": "ext-1", "model": "em-300", "status": "active"}, 201)
	ext1, ext2 := leaf("ext-1"), leaf("ext-2")
	if status, body := n.pushUntil(t, &ext1, "ext-1", 200); status != 200 || body != "device:ext-1" {
		t.Fatalf("external-CA device: %d %q", status, body)
	}
	if status, _ := n.push(t, &ext1, "ext-9"); status != 403 {
		t.Fatalf("external-CA device writing another meter: %d", status)
	}
	if status, _ := n.push(t, &ext2, "ext-2"); status != 401 {
		t.Fatalf("unregistered device of the external CA: %d", status)
	}
	// Another tenant knows the CA certificate, registers a device ext-1 and
	// replays this tenant's proof: it cannot register the CA, so ext-1's
	// certificate neither authenticates into it nor becomes ambiguous.
	evil := []string{"Fleetgate-Tenant", "evil"}
	n.adm("POST", "/tenants", map[string]any{"id": "evil"}, 201)
	adminCall(t, n.app, n.root, "POST", "/operators", map[string]any{"name": "mallory", "roles": []string{"admin"}}, 201, evil...)
	mallory := adminCall(t, n.app, n.root, "POST", "/tokens", map[string]any{"name": "t", "operator": "mallory"}, 201, evil...)["secret"].(string)
	adminCall(t, n.app, mallory, "POST", "/devices", map[string]any{"id": "ext-1", "model": "em-300", "status": "active"}, 201)
	for _, p := range []string{"", proof} {
		adminCall(t, n.app, mallory, "POST", "/ca/external", map[string]any{"name": "stolen", "certificate": ca.PEM, "verification_certificate": p,
			"mapping": map[string]any{"source": "cn"}}, 422)
	}
	if status, body := n.push(t, &ext1, "ext-1"); status != 200 || body != "device:ext-1" {
		t.Fatalf("external-CA device after another tenant's attempt: %d %q", status, body)
	}
	if !n.mqttsConnect(t, &ext1, "ext-1", nil) {
		t.Fatal("external-CA device refused on MQTTS")
	}
	// A keep-alive connection authenticated by the external certificate...
	hostport := strings.Replace(strings.TrimPrefix(n.https, "https://"), "localhost", "127.0.0.1", 1)
	live, err := tls.Dial("tcp", hostport, &tls.Config{RootCAs: n.roots, ServerName: "localhost", Certificates: []tls.Certificate{ext1}, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	rd := bufio.NewReader(live)
	_, _ = io.WriteString(live, "POST /v1/meters/ext-1/readings HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
	kres, err := http.ReadResponse(rd, nil)
	if err != nil || kres.StatusCode != 200 {
		t.Fatalf("keep-alive request: %v %v", err, kres)
	}
	_, _ = io.Copy(io.Discard, kres.Body)
	kres.Body.Close()
	// ...is closed soon after the device is decommissioned.
	n.adm("PATCH", "/devices/ext-1", map[string]any{"status": "decommissioned", "reason": "returned"}, 200)
	at := time.Now()
	_ = live.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := rd.ReadByte(); err == nil || time.Since(at) >= 5*time.Second {
		t.Fatalf("keep-alive connection of a decommissioned device still open: %v after %v", err, time.Since(at))
	}
	if status, _ := n.pushUntil(t, &ext1, "ext-1", 401); status != 401 {
		t.Fatalf("decommissioned external-CA device: %d", status)
	}
	if n.mqttsConnect(t, &ext1, "ext-1", nil) {
		t.Fatal("decommissioned external-CA device accepted on MQTTS")
	}
}
