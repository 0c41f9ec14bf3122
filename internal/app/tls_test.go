package app

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/internal/config"
)

func selfSigned(t testing.TB, cn string, server bool) (tls.Certificate, []byte, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = nil
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return pair, certPEM, keyPEM
}

// TestHTTPSWithPinnedClientCertificates starts a node with an HTTPS data
// plane that requests client certificates, pins one to an application, and
// checks HTTP/2, the pinned certificate, an unknown one, and none.
func TestHTTPSWithPinnedClientCertificates(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Header.Get("X-Fleetgate-Subject"))
	}))
	defer up.Close()
	dir := t.TempDir()
	_, srvCert, srvKey := selfSigned(t, "localhost", true)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	_ = os.WriteFile(certFile, srvCert, 0o600)
	_ = os.WriteFile(keyFile, srvKey, 0o600)
	cfg := config.Default()
	cfg.DataDir, cfg.AdminAddr, cfg.HTTPAddr, cfg.HTTPSAddr = dir, "127.0.0.1:0", "", "127.0.0.1:0"
	cfg.TLSCert, cfg.TLSKey, cfg.AdminToken = certFile, keyFile, "fgt_tls-test-token-0123456789abcdef"
	a := startNode(t, cfg)

	pinned, pinnedPEM, _ := selfSigned(t, "meter-gateway", false)
	stranger, _, _ := selfSigned(t, "stranger", false)
	blk, _ := pem.Decode(pinnedPEM)
	sum := sha256.Sum256(blk.Bytes)
	admin := func(method, path string, body any) {
		t.Helper()
		adminCall(t, a, cfg.AdminToken, method, path, body, 0)
	}
	admin("POST", "/operators", map[string]any{"name": "rev", "roles": []string{"reviewer"}})
	admin("POST", "/apps", map[string]any{"name": "meter-gateway", "cert_fingerprints": []string{hex.EncodeToString(sum[:])}})
	admin("POST", "/apis", map[string]any{"name": "meters", "owner": "energy"})
	admin("POST", "/apis/meters/versions", map[string]any{"version": "v1", "upstream": map[string]any{"targets": []string{up.URL}},
		"bindings": map[string]any{"http": map[string]any{"base_path": "/v1", "operations": []any{map[string]any{"method": "GET", "path": "/readings", "operation_id": "readings"}}}},
		"policy":   map[string]any{"auth": map[string]any{"methods": []string{"mtls"}}}})
	// No spec, so no lint; a reviewer who is not the author publishes.
	admin("POST", "/apis/meters/versions/v1/transitions", map[string]any{"to": "in_review"})
	revTok := createToken(t, a.AdminURL(), cfg.AdminToken, "rev")
	req, _ := http.NewRequest("POST", a.AdminURL()+"/admin/v1/apis/meters/versions/v1/transitions", strings.NewReader(`{"to":"published"}`))
	req.Header.Set("Authorization", "Bearer "+revTok)
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("publish: %v %v", err, res)
	}
	res.Body.Close()

	url := "https://localhost" + strings.TrimPrefix(a.DataURLs()[0], "https://127.0.0.1") + "/v1/readings"
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(srvCert)
	call := func(certs []tls.Certificate) (*http.Response, string) {
		t.Helper()
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: certs}, ForceAttemptHTTP2: true}
		defer tr.CloseIdleConnections()
		cl := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		var res *http.Response
		var err error
		for i := 0; i < 50; i++ { // the snapshot follows the publish asynchronously
			if res, err = cl.Get(url); err == nil && res.StatusCode != 404 {
				break
			}
			if err == nil {
				res.Body.Close()
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	res, body := call([]tls.Certificate{pinned})
	if res.StatusCode != 200 || body != "app:meter-gateway" || res.Proto != "HTTP/2.0" {
		t.Fatalf("pinned certificate: %d %q over %s", res.StatusCode, body, res.Proto)
	}
	if res, body := call([]tls.Certificate{stranger}); res.StatusCode != 401 {
		t.Fatalf("unpinned certificate: %d %s", res.StatusCode, body)
	}
	if res, body := call(nil); res.StatusCode != 401 {
		t.Fatalf("no certificate: %d %s", res.StatusCode, body)
	}
}

func createToken(t testing.TB, adminURL, root, operator string) string {
	t.Helper()
	req, _ := http.NewRequest("POST", adminURL+"/admin/v1/tokens", strings.NewReader(`{"name":"t","operator":"`+operator+`"}`))
	req.Header.Set("Authorization", "Bearer "+root)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct{ Secret string }
	_ = json.NewDecoder(res.Body).Decode(&out)
	return out.Secret
}
