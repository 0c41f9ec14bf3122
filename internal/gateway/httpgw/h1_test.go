package httpgw

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/internal/model"
)

// rawUpstream serves each accepted connection with serve, on a real
// loopback socket, and counts connections.
func rawUpstream(t testing.TB, serve func(c net.Conn)) (string, *atomic.Int32) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var n atomic.Int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				serve(c)
			}()
		}
	}()
	return "http://" + l.Addr().String(), &n
}

// A keep-alive connection the upstream closed while it sat in the pool is
// not an error the client sees: requests that can be replayed go out again
// on a fresh connection, and a request whose body cannot be replayed never
// takes a connection that the peer has closed.
func TestLeanStaleKeepAlive(t *testing.T) {
	url, conns := rawUpstream(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		body, _ := io.ReadAll(req.Body)
		msg := "ok " + req.Method + " " + string(body)
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(msg), msg)
		// Keep-alive was promised, but the connection is closed right away:
		// an upstream whose idle timeout is shorter than ours.
	})
	h := newHarness(t, 0, version("a", "/api", model.StatePublished, url))
	for i, tc := range []struct {
		method, body, want string
	}{
		{"GET", "", "ok GET "},
		{"GET", "", "ok GET "},
		{"POST", "payload-1", "ok POST payload-1"},
		{"POST", "payload-2", "ok POST payload-2"},
	} {
		path := "/api/items/1"
		if tc.method == "POST" {
			path = "/api/items"
		}
		// Give the upstream's close time to reach the pooled socket.
		time.Sleep(30 * time.Millisecond)
		req, _ := http.NewRequest(tc.method, h.srv.URL+path, strings.NewReader(tc.body))
		if tc.body == "" {
			req.Body = nil
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || string(b) != tc.want {
			t.Fatalf("request %d: %d %q", i, res.StatusCode, b)
		}
	}
	if n := conns.Load(); n != 4 {
		t.Fatalf("upstream saw %d connections, want 4 (one per request)", n)
	}
}

// Connections are reused: many sequential requests share one upstream
// connection, including after HEAD and 204 answers that carry no body.
func TestLeanReusesConnections(t *testing.T) {
	var conns atomic.Int32
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/204") {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Length", "5")
		_, _ = io.WriteString(w, "hello")
	}))
	up.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	up.Start()
	defer up.Close()
	v := version("a", "/api", model.StatePublished, up.URL)
	v.Bindings.HTTP.Operations = append(v.Bindings.HTTP.Operations, model.HTTPOperation{Method: "HEAD", Path: "/items/{id}", OperationID: "headItem"})
	h := newHarness(t, 0, v)
	for i := 0; i < 20; i++ {
		method, path, want := "GET", "/api/items/1", "hello"
		switch i % 3 {
		case 1:
			method, want = "HEAD", ""
		case 2:
			path, want = "/api/items/204", ""
		}
		req, _ := http.NewRequest(method, h.srv.URL+path, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode >= 300 || string(b) != want {
			t.Fatalf("%s %s: %d %q", method, path, res.StatusCode, b)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("20 sequential requests used %d upstream connections, want 1", n)
	}
}

// Bodies of unknown length travel chunked both ways, large responses
// stream whole, and trailers reach the client.
func TestLeanChunkedBodiesAndTrailers(t *testing.T) {
	const big = 3 << 20
	var gotTE []string
	var gotBody string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "GET" {
			chunk := strings.Repeat("x", 64<<10)
			for n := 0; n < big; n += len(chunk) {
				_, _ = io.WriteString(w, chunk)
				w.(http.Flusher).Flush()
			}
			return
		}
		gotTE = r.TransferEncoding
		b, _ := io.ReadAll(r.Body)
		gotBody = string(b)
		w.Header().Set("Trailer", "X-Checksum")
		_, _ = io.WriteString(w, "received")
		w.Header().Set("X-Checksum", fmt.Sprint(len(b)))
	}))
	defer up.Close()
	h := newHarness(t, 0, version("a", "/api", model.StatePublished, up.URL))

	pr, pw := io.Pipe()
	go func() {
		for i := 0; i < 3; i++ {
			fmt.Fprintf(pw, "part-%d;", i)
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", h.srv.URL+"/api/items", pr) // unknown length: chunked
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(b) != "received" || gotBody != "part-0;part-1;part-2;" || len(gotTE) != 1 || gotTE[0] != "chunked" {
		t.Fatalf("%d %q; upstream got %q %v", res.StatusCode, b, gotBody, gotTE)
	}
	if res.Trailer.Get("X-Checksum") != "21" {
		t.Fatalf("trailer lost: %v", res.Trailer)
	}

	res, _ = get(t, h.srv.URL+"/api/items/1")
	if res.StatusCode != 200 {
		t.Fatal(res.StatusCode)
	}
	res2, err := http.Get(h.srv.URL + "/api/items/1")
	if err != nil {
		t.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, res2.Body)
	res2.Body.Close()
	if n != big {
		t.Fatalf("streamed %d bytes, want %d", n, big)
	}
}

// Hop-by-hop headers stop at the gateway in both directions, the gateway
// states X-Forwarded-* itself, and headers it set win over the upstream's.
func TestLeanHeaderHygiene(t *testing.T) {
	var seen http.Header
	var seenHost string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen, seenHost = r.Header.Clone(), r.Host
		w.Header().Set("Connection", "X-Upstream-Hop")
		w.Header().Set("X-Upstream-Hop", "secret")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("X-Request-Id", "upstream-made-this")
		w.Header().Set("X-Upstream-Visible", "yes")
	}))
	defer up.Close()
	h := newHarness(t, 0, version("a", "/api", model.StatePublished, up.URL+"/base/"))
	res, _ := get(t, h.srv.URL+"/api/items/7?q=a%20b", "X-Request-Id", "trace-7", "Te", "trailers",
		"X-Forwarded-For", "6.6.6.6", "Forwarded", "for=6.6.6.6", "Proxy-Authorization", "Basic eA==")
	if res.StatusCode != 200 {
		t.Fatal(res.StatusCode)
	}
	for k, want := range map[string]string{"X-Forwarded-For": "127.0.0.1", "Te": "trailers", "Forwarded": "", "Proxy-Authorization": "", "X-Request-Id": "trace-7"} {
		if got := seen.Get(k); got != want {
			t.Errorf("upstream saw %s=%q, want %q", k, got, want)
		}
	}
	if !strings.HasPrefix(h.srv.URL, "http://"+seenHost) {
		t.Errorf("Host not preserved: %q", seenHost)
	}
	for k, want := range map[string]string{"X-Upstream-Hop": "", "Keep-Alive": "", "X-Request-Id": "trace-7", "X-Upstream-Visible": "yes"} {
		if got := res.Header.Get(k); got != want {
			t.Errorf("client saw %s=%q, want %q", k, got, want)
		}
	}
}

// The target URL's path prefixes the request path, and the query is kept
// byte for byte.
func TestLeanTargetBasePath(t *testing.T) {
	var uri string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { uri = r.RequestURI }))
	defer up.Close()
	h := newHarness(t, 0, version("a", "/api", model.StatePublished, up.URL+"/base/"))
	if res, _ := get(t, h.srv.URL+"/api/items/a%20b?q=a%20b&x=1"); res.StatusCode != 200 {
		t.Fatal(res.StatusCode)
	}
	if uri != "/base/api/items/a%20b?q=a%20b&x=1" {
		t.Fatalf("upstream request-target %q", uri)
	}
}

// Protocol upgrades (WebSocket) keep the connection after the response, so
// they go through ReverseProxy rather than the lean core, and work.
func TestUpgradeGoesThroughReverseProxy(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			http.Error(w, "upgrade expected", 400)
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		fmt.Fprint(brw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		brw.Flush()
		line, _ := brw.ReadString('\n')
		fmt.Fprint(brw, "echo:"+line)
		brw.Flush()
	}))
	defer up.Close()
	h := newHarness(t, 0, version("a", "/api", model.StatePublished, up.URL))
	c, err := net.Dial("tcp", strings.TrimPrefix(h.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprint(c, "GET /api/items/1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != 101 {
		t.Fatalf("%v %v", res, err)
	}
	fmt.Fprint(c, "ping\n")
	if line, _ := br.ReadString('\n'); line != "echo:ping\n" {
		t.Fatalf("tunnel: %q", line)
	}
}

// A client that gives up cuts the upstream exchange at once rather than
// holding it until the upstream timeout.
func TestLeanClientGoneCutsUpstream(t *testing.T) {
	cut := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			close(cut)
		case <-time.After(10 * time.Second):
		}
	}))
	defer up.Close()
	h := newHarness(t, 30*time.Second, version("a", "/api", model.StatePublished, up.URL))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", h.srv.URL+"/api/items/1", nil)
	if res, err := http.DefaultClient.Do(req); err == nil {
		res.Body.Close()
		t.Fatal("expected the client's own timeout")
	}
	select {
	case <-cut:
	case <-time.After(5 * time.Second):
		t.Fatal("upstream exchange still open 5 s after the client left")
	}
}

// FuzzUpstreamResponse feeds arbitrary bytes as the upstream's answer over
// a real socket: the gateway answers the client with some status, never
// panics, and never hangs past its upstream timeout.
func FuzzUpstreamResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"HTTP/1.0 302 Found\r\nLocation: /x\r\nConnection: close\r\n\r\n",
		"garbage\r\n\r\n",
		"",
	} {
		f.Add([]byte(s))
	}
	var answer atomic.Value
	url, _ := rawUpstream(f, func(c net.Conn) {
		_, _ = http.ReadRequest(bufio.NewReader(c))
		_, _ = c.Write(answer.Load().([]byte))
	})
	h := newHarness(f, 300*time.Millisecond, version("a", "/api", model.StatePublished, url))
	client := &http.Client{Timeout: 5 * time.Second}
	f.Fuzz(func(t *testing.T, b []byte) {
		answer.Store(b)
		res, err := client.Get(h.srv.URL + "/api/items/1")
		if err != nil {
			return // a truncated body after a relayed status is a client-side error
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode < 200 || res.StatusCode > 599 {
			t.Fatalf("status %d", res.StatusCode)
		}
	})
}

// An upstream that restarted leaves every pooled connection stale: the
// retry dials instead of taking the next stale one from the pool.
func TestLeanAllPooledConnectionsStale(t *testing.T) {
	url, conns := rawUpstream(t, func(c net.Conn) {
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		time.Sleep(50 * time.Millisecond) // keep the four requests overlapping
		fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	h := newHarness(t, 0, version("a", "/api", model.StatePublished, url))
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		go func() {
			res, err := http.Get(h.srv.URL + "/api/items/1")
			if err == nil {
				res.Body.Close()
				if res.StatusCode != 200 {
					err = fmt.Errorf("status %d", res.StatusCode)
				}
			}
			errs <- err
		}()
	}
	for i := 0; i < 4; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(30 * time.Millisecond) // the upstream closed all four
	if res, body := get(t, h.srv.URL+"/api/items/1"); res.StatusCode != 200 || body != "ok" {
		t.Fatalf("after the upstream closed its pooled connections: %d %q", res.StatusCode, body)
	}
	if n := conns.Load(); n != 5 {
		t.Fatalf("upstream saw %d connections, want 5 (4 pooled, then one fresh dial)", n)
	}
}
