// Command fgbench holds the moving parts of the HTTP data-plane benchmark
// (scripts/bench-http): a fast upstream and the baseline every gateway is
// compared with, a plain but tuned httputil.ReverseProxy.
//
//	fgbench upstream -addr 127.0.0.1:9101
//	fgbench baseline -addr 127.0.0.1:9102 -target http://127.0.0.1:9101
//	fgbench cpu PID...   prints utime+stime of each process in microseconds
//
// and of the MQTT benchmark (scripts/bench-mqtt), a cheap hand-written
// MQTT client (mqttwire.go) so that the generator leaves the shared cores
// to the broker it measures:
//
//	fgbench mqtt-pubsub -addr A -creds FILE -qos 0 -pid PID   publishers -> subscribers, msg/s, CPU/msg, latency
//	fgbench mqtt-idle -addr A -n 15000 -user U -pass P        holds idle authenticated connections
//	fgbench memstat -pid PID [-debug URL]                     resident memory (and Go heap/stacks) of a process
//	fgbench mochi -addr A -creds FILE                         stock mochi-mqtt with its auth ledger (the floor)
//
// and of the device handshake benchmark (scripts/bench-handshake):
//
//	fgbench selfsigned -dir D          a P-256 server certificate (scripts/bench-handshake)
//	fgbench enroll -url U -token T -id meter-17 -dir D   enrolls a device (P-256 key + CSR)
//	fgbench handshake -addr A -cert C -key K -conns N -duration D   mTLS connections/s
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: fgbench upstream|baseline|cpu|mqtt-pubsub|mqtt-idle|memstat|mochi|selfsigned|enroll|handshake ...")
		os.Exit(2)
	}
	if run := command(os.Args[1]); run != nil {
		if err := run(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "fgbench:", err)
			os.Exit(1)
		}
		return
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:9101", "listen address")
	target := fs.String("target", "http://127.0.0.1:9101", "upstream of the baseline proxy")
	_ = fs.Parse(os.Args[2:])
	var err error
	switch os.Args[1] {
	case "upstream":
		body := []byte(`{"vin":"SJNFAAZE0U6000001","charge":81,"range_km":212}`)
		err = serve(*addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(body)
		}))
	case "baseline":
		u, perr := url.Parse(*target)
		if perr != nil {
			err = perr
			break
		}
		p := httputil.NewSingleHostReverseProxy(u)
		p.Transport = &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        1024,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     90 * time.Second,
		}
		p.BufferPool = &bufferPool{}
		err = serve(*addr, p)
	case "cpu":
		for _, pid := range fs.Args() {
			us, cerr := cpuMicros(pid)
			if cerr != nil {
				err = cerr
				break
			}
			fmt.Println(us)
		}
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fgbench:", err)
		os.Exit(1)
	}
}

// command returns the subcommand with flags of its own named name, or nil.
func command(name string) func(args []string) error {
	switch name {
	case "mqtt-pubsub":
		return mqttPubsub
	case "mqtt-idle":
		return mqttIdle
	case "memstat":
		return memstat
	case "mochi":
		return mochi
	case "handshake":
		return handshake
	case "enroll":
		return enroll
	case "selfsigned":
		return selfsigned
	}
	return nil
}

func serve(addr string, h http.Handler) error {
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	return srv.ListenAndServe()
}

// cpuMicros reads utime+stime (fields 14 and 15 of /proc/PID/stat, in
// clock ticks of 1/100 s on Linux) and returns microseconds.
func cpuMicros(pid string) (int64, error) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, err
	}
	s := string(b)
	// The command name (field 2) may contain spaces; fields resume after ')'.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("unexpected /proc/%s/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("unexpected /proc/%s/stat", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("unexpected /proc/%s/stat", pid)
	}
	return (ut + st) * 10000, nil
}

// bufferPool is the one tuning a production ReverseProxy gets besides its
// transport: reused copy buffers (the gateway uses the same).
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }
