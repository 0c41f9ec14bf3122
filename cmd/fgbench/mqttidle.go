package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// mqtt-idle opens N authenticated connections, prints the connect rate,
// and holds them, idle, until it is signalled (or -hold passes), so that
// the broker's memory per connection can be read meanwhile (memstat). With
// -tls-cert every connection is a full TLS handshake with that client
// certificate (no session resumption): the connect rate of device
// certificates.
func mqttIdle(args []string) error {
	fs := flag.NewFlagSet("mqtt-idle", flag.ContinueOnError)
	o := dialOptions{timeout: 10 * time.Second}
	fs.StringVar(&o.addr, "addr", "127.0.0.1:1883", "broker address")
	version := fs.Int("v", 5, "MQTT version: 4 (3.1.1) or 5")
	n := fs.Int("n", 1000, "connections")
	conc := fs.Int("c", 4, "connections opened concurrently")
	fs.StringVar(&o.user, "user", "", "user name")
	fs.StringVar(&o.password, "pass", "", "password (an API key for Fleetgate)")
	prefix := fs.String("id-prefix", "idle", "client ids are <prefix>-<i>")
	keepAlive := fs.Int("keepalive", 900, "keep-alive seconds (long: idle means idle)")
	certFile := fs.String("tls-cert", "", "PEM client certificate: connect over TLS with it")
	keyFile := fs.String("tls-key", "", "PEM key of -tls-cert")
	caFile := fs.String("tls-ca", "", "PEM CA of the server certificate")
	serverName := fs.String("server-name", "localhost", "server name to verify")
	hold := fs.Duration("hold", 0, "how long to hold the connections (0: until SIGTERM or SIGINT)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.version, o.keepAlive = byte(*version), uint16(*keepAlive)
	if *n < 1 || *conc < 1 || *conc > 64 {
		return errors.New("want -n >= 1 and 1 <= -c <= 64")
	}
	if *certFile != "" {
		pair, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			return err
		}
		roots := x509.NewCertPool()
		if pem, err := os.ReadFile(*caFile); err != nil || !roots.AppendCertsFromPEM(pem) {
			return fmt.Errorf("-tls-ca %q: no PEM certificate (%v)", *caFile, err)
		}
		o.tls = &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: roots, ServerName: *serverName,
			ClientSessionCache: nil, MinVersion: tls.VersionTLS12}
	}
	if err := raiseFileLimit(*n + 64); err != nil {
		return err
	}
	conns := make([]*client, *n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, *conc)
	start := time.Now()
	for range *conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= *n {
					return
				}
				co := o
				co.clientID = fmt.Sprintf("%s-%d", *prefix, i)
				cl, err := dial(co)
				if err != nil {
					errs <- fmt.Errorf("connection %d: %w", i, err)
					next.Store(int64(*n)) // stop the others
					return
				}
				conns[i] = cl
			}
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	defer func() {
		for _, c := range conns {
			if c != nil {
				_ = c.c.Close()
			}
		}
	}()
	select {
	case err := <-errs:
		return err
	default:
	}
	fmt.Printf("READY n=%d secs=%.2f connects_per_s=%.0f tls=%t\n", *n, secs, float64(*n)/secs, o.tls != nil)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	var timeout <-chan time.Time
	if *hold > 0 {
		timeout = time.After(*hold)
	}
	select {
	case <-sig:
	case <-timeout:
	}
	return nil
}

// raiseFileLimit raises the soft limit on open files to at least want,
// within the hard limit: one descriptor per connection.
func raiseFileLimit(want int) error {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return err
	}
	if l.Cur >= uint64(want) {
		return nil
	}
	if l.Max < uint64(want) {
		return fmt.Errorf("open-file hard limit %d is below the %d connections asked for", l.Max, want)
	}
	l.Cur = uint64(want)
	return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
}
