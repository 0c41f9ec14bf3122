package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// memstat prints a process's resident memory and, for a Go process with a
// pprof endpoint (fleetgate --debug-addr), its heap and goroutine stacks in
// use after a forced collection and its goroutine count: the parts that
// say what an idle connection costs.
//
//	MEM rss_kb=... heap_inuse=... stack_inuse=... goroutines=...
func memstat(args []string) error {
	fs := flag.NewFlagSet("memstat", flag.ContinueOnError)
	pid := fs.String("pid", "", "process id")
	debug := fs.String("debug", "", "base URL of the process's /debug/pprof endpoint (e.g. http://127.0.0.1:9206)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rss, err := rssKB(*pid)
	if err != nil {
		return err
	}
	line := fmt.Sprintf("MEM rss_kb=%d", rss)
	if *debug != "" {
		st, err := goMem(*debug)
		if err != nil {
			return err
		}
		line += fmt.Sprintf(" heap_inuse=%d stack_inuse=%d goroutines=%d", st.heap, st.stack, st.goroutines)
	}
	fmt.Println(line)
	return nil
}

// rssKB reads VmRSS from /proc/PID/status.
func rssKB(pid string) (int64, error) {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%s/status: no VmRSS", pid)
}

type goStats struct{ heap, stack, goroutines int64 }

// goMem reads runtime.MemStats as the heap profile's debug=1 text prints
// it ("# HeapInuse = N", "# Stack = inuse / sys"), after gc=1 forced a
// collection, and the goroutine profile's total.
func goMem(base string) (goStats, error) {
	var st goStats
	c := &http.Client{Timeout: 30 * time.Second}
	get := func(path string) (string, error) {
		res, err := c.Get(base + path)
		if err != nil {
			return "", err
		}
		defer res.Body.Close()
		if res.StatusCode != 200 {
			return "", fmt.Errorf("%s%s: %s", base, path, res.Status)
		}
		b, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
		return string(b), err
	}
	heap, err := get("/debug/pprof/heap?debug=1&gc=1")
	if err != nil {
		return st, err
	}
	sc := bufio.NewScanner(strings.NewReader(heap))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if v, ok := strings.CutPrefix(l, "# HeapInuse = "); ok {
			st.heap, _ = strconv.ParseInt(v, 10, 64)
		}
		if v, ok := strings.CutPrefix(l, "# Stack = "); ok {
			st.stack, _ = strconv.ParseInt(strings.Fields(v)[0], 10, 64)
		}
	}
	g, err := get("/debug/pprof/goroutine?debug=1")
	if err != nil {
		return st, err
	}
	first, _, _ := strings.Cut(g, "\n")
	if v, ok := strings.CutPrefix(first, "goroutine profile: total "); ok {
		st.goroutines, _ = strconv.ParseInt(v, 10, 64)
	}
	if st.heap == 0 {
		return st, fmt.Errorf("%s: no MemStats in the heap profile", base)
	}
	return st, nil
}
