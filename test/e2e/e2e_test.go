// Package e2e runs the real fleetgate binary and talks to it over real
// sockets on 127.0.0.1.
package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/internal/store/pgtest"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fleetgate-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "fleetgate")
	out, err := exec.Command("go", "build", "-o", binary, "../../cmd/fleetgate").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const token = "fgt_e2e-token-0123456789abcdefghij"

// node is one running fleetgate process.
type node struct {
	t      *testing.T
	cmd    *exec.Cmd
	url    string
	data   string // data-plane base URL
	stderr *lockedBuffer
	done   chan error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var (
	startedRe = regexp.MustCompile(`"admin":"(http://127\.0\.0\.1:\d+)"`)
	dataRe    = regexp.MustCompile(`"http":"(127\.0\.0\.1:\d+)"`)
)

// start runs `fleetgate serve` and waits until its admin listener is up.
func start(t *testing.T, env []string, args ...string) *node {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"serve", "--admin-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--log-format", "json"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	n := &node{t: t, cmd: cmd, stderr: &lockedBuffer{}, done: make(chan error, 1)}
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			n.stderr.Write([]byte(line + "\n"))
			if m := startedRe.FindStringSubmatch(line); m != nil {
				if d := dataRe.FindStringSubmatch(line); d != nil {
					n.data = "http://" + d[1]
				}
				select {
				case urlc <- m[1]:
				default:
				}
			}
		}
	}()
	go func() { n.done <- cmd.Wait(); pw.Close() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-n.done
		}
	})
	select {
	case n.url = <-urlc:
	case err := <-n.done:
		t.Fatalf("fleetgate exited early: %v\n%s", err, n.stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("fleetgate did not start:\n%s", n.stderr.String())
	}
	return n
}

var client = &http.Client{Timeout: 20 * time.Second}

func (n *node) do(method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, n.url+path, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, b, err
}

// killDuringWrites runs concurrent writers against a node, kills it with
// SIGKILL in the middle, restarts it on the same store and checks that
// every acknowledged write survived and the audit chain still verifies.
func killDuringWrites(t *testing.T, env []string, args ...string) {
	n := start(t, env, args...)
	const writers = 8
	var mu sync.Mutex
	var acked []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 10000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("api-%d-%d", w, i)
				status, _, err := n.do("POST", "/admin/v1/apis", map[string]any{"name": name, "owner": "load"})
				if err != nil {
					return // the process is gone
				}
				if status == 201 {
					mu.Lock()
					acked = append(acked, name)
					mu.Unlock()
				}
			}
		}(w)
	}
	deadline := time.After(20 * time.Second)
	for {
		mu.Lock()
		count := len(acked)
		mu.Unlock()
		if count >= 150 {
			break
		}
		select {
		case <-deadline:
			t.Fatalf("only %d writes acknowledged in 20 s", count)
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := n.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-n.done
	close(stop)
	wg.Wait()

	n2 := start(t, env, args...)
	status, body, err := n2.do("GET", "/admin/v1/apis?limit=1000", nil)
	if err != nil || status != 200 {
		t.Fatalf("list after restart: %d %v", status, err)
	}
	have := map[string]bool{}
	var list struct {
		Items []struct{ Name string } `json:"items"`
		Next  string                  `json:"next"`
	}
	for pages := 0; pages < 100; pages++ {
		if err := json.Unmarshal(body, &list); err != nil {
			t.Fatal(err)
		}
		for _, it := range list.Items {
			have[it.Name] = true
		}
		if list.Next == "" {
			break
		}
		_, body, _ = n2.do("GET", "/admin/v1/apis?limit=1000&after="+list.Next, nil)
	}
	lost := 0
	for _, name := range acked {
		if !have[name] {
			lost++
			t.Errorf("acknowledged write lost: %s", name)
		}
	}
	t.Logf("%d writes acknowledged before SIGKILL, %d present after restart, %d lost", len(acked), len(have), lost)
	_, body, _ = n2.do("GET", "/admin/v1/audit/verify", nil)
	var v struct{ OK bool }
	if err := json.Unmarshal(body, &v); err != nil || !v.OK {
		t.Fatalf("audit chain after SIGKILL: %s", body)
	}
}

func TestKillDuringWritesSQLite(t *testing.T) {
	dir := t.TempDir()
	killDuringWrites(t, []string{"FLEETGATE_ADMIN_TOKEN=" + token}, "--data-dir", dir)
}

func TestKillDuringWritesPostgres(t *testing.T) {
	url := pgtest.SchemaURL(t)
	killDuringWrites(t, []string{"FLEETGATE_ADMIN_TOKEN=" + token}, "--data-dir", t.TempDir(), "--store", url)
}

// TestBootstrapAndGracefulShutdown: the generated token is printed once,
// stored only as a hash, and SIGTERM stops the node cleanly.
func TestBootstrapAndGracefulShutdown(t *testing.T) {
	dir := t.TempDir()
	n := start(t, nil, "--data-dir", dir)
	m := regexp.MustCompile(`fgt_[A-Za-z0-9_-]{43}`).FindString(n.stderr.String())
	if m == "" {
		t.Fatalf("no bootstrap token printed:\n%s", n.stderr.String())
	}
	if strings.Count(n.stderr.String(), m) != 2 { // the token line and the export line
		t.Fatalf("token printed %d times", strings.Count(n.stderr.String(), m))
	}
	req, _ := http.NewRequest("GET", n.url+"/admin/v1/whoami", nil)
	req.Header.Set("Authorization", "Bearer "+m)
	res, err := client.Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("bootstrap token rejected: %v %v", err, res)
	}
	res.Body.Close()
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		res, err := client.Get(n.url + p)
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("GET %s: %v %v", p, err, res)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if p == "/metrics" && !strings.Contains(string(b), "fleetgate_admin_requests_total") {
			t.Fatalf("metrics lack admin counters")
		}
	}
	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-n.done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, n.stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	db, err := os.ReadFile(filepath.Join(dir, "fleetgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(db, []byte(m)) {
		t.Fatal("the bootstrap token is stored in clear in the database")
	}
	// The secret never reaches the structured log lines.
	for _, line := range strings.Split(n.stderr.String(), "\n") {
		if strings.HasPrefix(line, "{") && strings.Contains(line, m) {
			t.Fatalf("token logged: %s", line)
		}
	}
	// A restart does not print a new token.
	n2 := start(t, nil, "--data-dir", dir)
	if strings.Contains(n2.stderr.String(), "fgt_") {
		t.Fatalf("token printed again on restart")
	}
}

func TestPortInUseNamesTheFlag(t *testing.T) {
	n := start(t, []string{"FLEETGATE_ADMIN_TOKEN=" + token}, "--data-dir", t.TempDir())
	addr := strings.TrimPrefix(n.url, "http://")
	out, err := exec.Command(binary, "serve", "--data-dir", t.TempDir(), "--admin-addr", addr).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--admin-addr") || !strings.Contains(string(out), "already in use") {
		t.Fatalf("port in use: %v\n%s", err, out)
	}
}
