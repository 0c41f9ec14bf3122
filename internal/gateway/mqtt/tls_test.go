package mqttgw

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/fleetgate/fleetgate/internal/identity/pki"
	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/policy"
)

// testPKI is a CA, a server certificate for 127.0.0.1 and client
// certificates, all made in memory.
type testPKI struct {
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	pool   *x509.CertPool
	server tls.Certificate
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	p := &testPKI{ca: ca, caKey: key, pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	p.server = p.issue(t, "server", x509.ExtKeyUsageServerAuth)
	return p
}

func (p *testPKI) issue(t testing.TB, cn string, usage x509.ExtKeyUsage) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn}, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		KeyUsage: x509.KeyUsageDigitalSignature, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

func fingerprint(c tls.Certificate) string {
	sum := sha256.Sum256(c.Certificate[0])
	return hex.EncodeToString(sum[:])
}

// TestTLSClientCertificate: a client certificate pinned to an application
// authenticates without a password; an unpinned one does not.
func TestTLSClientCertificate(t *testing.T) {
	pki := newTestPKI(t)
	pinned := pki.issue(t, "dev1", x509.ExtKeyUsageClientAuth)
	stranger := pki.issue(t, "stranger", x509.ExtKeyUsageClientAuth)
	f := newFixture(t, "")
	f.swap(t, func(in *policy.Input) {
		for i := range in.Apps {
			if in.Apps[i].Name == f.dev1 {
				in.Apps[i].CertFingerprints = []string{fingerprint(pinned)}
			}
		}
	})
	g := startGateway(t, f, func(o *Options) {
		o.TLSAddr = "127.0.0.1:0"
		o.TLSConfig = &tls.Config{Certificates: []tls.Certificate{pki.server}, ClientAuth: tls.RequireAndVerifyClientCert,
			ClientCAs: pki.pool, MinVersion: tls.VersionTLS12}
	})
	dial := func(cert tls.Certificate, clientID string) (*paho.Client, *paho.Connack, error) {
		conn, err := tls.Dial("tcp", g.Addrs()["tls"], &tls.Config{RootCAs: pki.pool, Certificates: []tls.Certificate{cert}})
		if err != nil {
			t.Fatal(err)
		}
		c := paho.NewClient(paho.ClientConfig{Conn: conn, OnClientError: func(error) {}, PacketTimeout: 5 * time.Second})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// KeepAlive 0: paho.golang v0.23's pinger sends its first PINGREQ at
		// once from its own goroutine, unsynchronized with the client's other
		// writes; over TLS it landed inside a PUBLISH (fixed header, then
		// c0 00, then the body), and the broker rightly refused the stream
		// as malformed. This test is about certificates, not keep-alive.
		ca, err := c.Connect(ctx, &paho.Connect{ClientID: clientID, KeepAlive: 0, CleanStart: true})
		return c, ca, err
	}
	c, ca, err := dial(pinned, f.dev1)
	if err != nil {
		t.Fatalf("pinned certificate refused: %v %+v", err, ca)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pr, err := c.Publish(ctx, &paho.Publish{Topic: "fleet/" + f.dev1 + "/telemetry", QoS: 1, Payload: []byte(`{"temp":3}`)})
	if err != nil || pr.ReasonCode != 0 {
		t.Fatalf("publish over mTLS: %+v %v", pr, err)
	}
	_ = c.Disconnect(&paho.Disconnect{})
	if _, ca, err := dial(pinned, f.dev2); err == nil || ca.ReasonCode != 0x85 {
		t.Fatalf("pinned certificate with another device's id: %+v %v, want 0x85", ca, err)
	}
	if _, ca, err := dial(stranger, f.dev1); err == nil || ca.ReasonCode != 0x86 {
		t.Fatalf("unpinned certificate: %+v %v, want 0x86", ca, err)
	}
}

// issueDevice signs a device certificate for device with the tenant CA.
func issueDevice(t testing.TB, ca *pki.CA, device string) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: device}}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, _ := x509.ParseCertificateRequest(der)
	cert, _, err := ca.Issue(csr, pki.DeviceIdentity{Tenant: ca.Tenant(), DeviceID: device}, pki.IssueOptions{Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}
}

// TestDeviceCertificateSession: a device authenticates with a certificate
// of its tenant CA (a device principal), and revoking that certificate
// ends its session even though the device has another live one.
func TestDeviceCertificateSession(t *testing.T) {
	ca, err := pki.NewCA("acme", pki.KeyECDSAP256, 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	const device = "sensor-7"
	a, b := issueDevice(t, ca, device), issueDevice(t, ca, device)
	cred := func(id string, c tls.Certificate) model.DeviceCredential {
		return model.DeviceCredential{ID: id, TenantID: "acme", DeviceID: device, Kind: model.CredCertificate,
			Fingerprint: pki.Fingerprint(c.Leaf), NotAfter: &c.Leaf.NotAfter}
	}
	f := newFixture(t, "")
	f.swap(t, func(in *policy.Input) {
		in.Devices = policy.DeviceInput{Devices: []model.Device{{ID: device, TenantID: "acme", Status: model.DeviceActive}},
			Credentials: []model.DeviceCredential{cred("a", a), cred("b", b)}}
	})
	srv := newTestPKI(t)
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	g := startGateway(t, f, func(o *Options) {
		o.TLSAddr = "127.0.0.1:0"
		o.TLSConfig = &tls.Config{Certificates: []tls.Certificate{srv.server}, ClientAuth: tls.RequireAndVerifyClientCert,
			ClientCAs: roots, MinVersion: tls.VersionTLS12}
	})
	connect := func(cert tls.Certificate, id string) (*v5, error) {
		conn, err := tls.Dial("tcp", g.Addrs()["tls"], &tls.Config{RootCAs: srv.pool, Certificates: []tls.Certificate{cert}})
		if err != nil {
			return nil, err
		}
		c := &v5{msgs: make(chan *paho.Publish, 10), disc: make(chan *paho.Disconnect, 1)}
		c.Client = paho.NewClient(paho.ClientConfig{Conn: conn, OnClientError: func(error) {}, PacketTimeout: 5 * time.Second,
			OnServerDisconnect: func(d *paho.Disconnect) { c.disc <- d }})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err = c.Connect(ctx, &paho.Connect{ClientID: id, KeepAlive: 0, CleanStart: true})
		return c, err
	}
	ca1, err := connect(a, device)
	if err != nil {
		t.Fatalf("device certificate refused: %v", err)
	}
	cb, err := connect(b, device+"-2")
	if err != nil {
		t.Fatalf("second certificate refused: %v", err)
	}
	if c := ca1.pub(t, "fleet/"+device+"/telemetry", `{"temp":4}`, nil); c != 0 {
		t.Fatalf("device publishing its telemetry: PUBACK %#x", c)
	}
	now := time.Now()
	f.swap(t, func(in *policy.Input) { in.Devices.Credentials[0].RevokedAt = &now })
	g.Revalidate()
	select {
	case d := <-ca1.disc:
		if d.ReasonCode != 0x87 {
			t.Fatalf("reason %#x, want 0x87", d.ReasonCode)
		}
	case <-time.After(time.Second):
		t.Fatal("session of a revoked device certificate still open after 1 s")
	}
	if c := cb.pub(t, "fleet/"+device+"/telemetry", `{"temp":5}`, nil); c != 0 {
		t.Fatalf("session of the live certificate affected: PUBACK %#x", c)
	}
}
