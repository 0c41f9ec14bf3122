package main

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// handshake is the mTLS load client of scripts/bench-handshake: conns
// goroutines each open a new TCP connection, do a full TLS handshake with
// the device certificate (no session cache, so no resumption), send one
// request (unless -path is empty) and close, until -duration ends. It runs
// as its own process so that it can be pinned to other cores than the
// server. It prints connections/s, errors and latency percentiles.
func handshake(args []string) error {
	fs := flag.NewFlagSet("handshake", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:8443", "host:port of the TLS listener")
	certFile := fs.String("cert", "device.crt", "PEM client certificate")
	keyFile := fs.String("key", "device.key", "PEM client key")
	caFile := fs.String("ca", "", "PEM CA of the server certificate (empty: do not verify the server)")
	name := fs.String("servername", "localhost", "TLS server name")
	conns := fs.Int("conns", 8, "concurrent connections")
	dur := fs.Duration("duration", 10*time.Second, "how long to run")
	curves := fs.String("curves", "default", "key exchange the client offers: default (Go's: X25519MLKEM768 hybrid first), x25519 or p256 (what constrained devices offer)")
	path := fs.String("path", "/v1/meters/meter-17/readings", "request path sent on each connection (POST {}); empty: handshake only")
	_ = fs.Parse(args)
	pair, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		return err
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{pair}, ServerName: *name, NextProtos: []string{"http/1.1"}}
	if *caFile != "" {
		pemBytes, err := os.ReadFile(*caFile)
		if err != nil {
			return err
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pemBytes) {
			return errors.New("-ca: no certificate")
		}
	} else {
		cfg.InsecureSkipVerify = true // loopback benchmark against our own server
	}
	switch *curves {
	case "default":
	case "x25519":
		cfg.CurvePreferences = []tls.CurveID{tls.X25519}
	case "p256":
		cfg.CurvePreferences = []tls.CurveID{tls.CurveP256}
	default:
		return fmt.Errorf("-curves %q: want default, x25519 or p256", *curves)
	}
	var req []byte
	if *path != "" {
		req = []byte("POST " + *path + " HTTP/1.1\r\nHost: " + *name + "\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
	}
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	lat := make([][]time.Duration, *conns)
	deadline := time.Now().Add(*dur)
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < *conns; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for time.Now().Before(deadline) {
				t0 := time.Now()
				if err := oneConn(*addr, cfg, req); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				ok.Add(1)
				lat[i] = append(lat[i], time.Since(t0))
			}
		}(i)
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	pct := func(p float64) time.Duration {
		if len(all) == 0 {
			return 0
		}
		return all[int(p*float64(len(all)-1))]
	}
	fmt.Printf("connections %d errors %d seconds %.2f handshakes/s %.0f p50 %v p99 %v\n", ok.Load(), failed.Load(), el,
		float64(ok.Load())/el, pct(0.5).Round(time.Microsecond), pct(0.99).Round(time.Microsecond))
	if e, _ := firstErr.Load().(string); e != "" {
		fmt.Fprintln(os.Stderr, "first error:", e)
	}
	if ok.Load() == 0 {
		return errors.New("no successful connection")
	}
	return nil
}

// oneConn is one connection: handshake, optional request, close. A
// non-200 answer is an error (the device must be authenticated).
func oneConn(addr string, cfg *tls.Config, req []byte) error {
	raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(10 * time.Second))
	c := tls.Client(raw, cfg)
	if err := c.Handshake(); err != nil {
		return err
	}
	if req == nil {
		return nil
	}
	if _, err := c.Write(req); err != nil {
		return err
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, res.Body)
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", res.StatusCode)
	}
	return nil
}

// enroll generates a P-256 key and CSR for device -id, enrolls it at the
// data plane with a one-time token and writes device.crt and device.key
// into -dir.
func enroll(args []string) error {
	fs := flag.NewFlagSet("enroll", flag.ExitOnError)
	url := fs.String("url", "http://127.0.0.1:8080", "data-plane base URL")
	token := fs.String("token", "", "one-time enrollment token")
	id := fs.String("id", "meter-17", "device id (CSR common name)")
	dir := fs.String("dir", ".", "output directory")
	_ = fs.Parse(args)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: *id}}, key)
	if err != nil {
		return err
	}
	req, _ := http.NewRequest("POST", *url+"/.well-known/fleetgate/enroll", bytes.NewReader(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr})))
	req.Header.Set("Authorization", "Bearer "+*token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	var out struct {
		Certificate string `json:"certificate"`
	}
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusCreated || json.Unmarshal(body, &out) != nil || out.Certificate == "" {
		return fmt.Errorf("enroll: %d %s", res.StatusCode, body)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	if err := os.WriteFile(filepath.Join(*dir, "device.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(*dir, "device.crt"), []byte(out.Certificate), 0o600)
}

// selfsigned writes a self-signed P-256 server certificate for -host
// (server.crt, server.key in -dir) for the benchmark's TLS listener.
func selfsigned(args []string) error {
	fs := flag.NewFlagSet("selfsigned", flag.ExitOnError)
	host := fs.String("host", "localhost", "DNS name")
	dir := fs.String("dir", ".", "output directory")
	_ = fs.Parse(args)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: *host}, DNSNames: []string{*host},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	if err := os.WriteFile(filepath.Join(*dir, "server.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(*dir, "server.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
}
