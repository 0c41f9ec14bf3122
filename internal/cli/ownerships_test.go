package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

func TestOwnershipsCommands(t *testing.T) {
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /admin/v1/ownerships": reply(200, map[string]any{"items": []map[string]any{
			{"subject": "user:alice", "object_type": "vehicle", "object_id": "WVW123", "created_at": t0},
		}, "next": "user:alice|vehicle|WVW123"}),
		"POST /admin/v1/ownerships":   reply(201, map[string]any{"items": []map[string]any{{"subject": "user:alice"}}}),
		"DELETE /admin/v1/ownerships": func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) },
	})
	tests := []struct {
		name                         string
		args                         []string
		wantReq, wantQuery, wantBody string
		wantOut, wantStderr, wantErr string
	}{
		{
			name:       "list with filters",
			args:       []string{"ownerships", "list", "--subject", "user:alice", "--object-type", "vehicle", "--limit", "1"},
			wantReq:    "GET /admin/v1/ownerships",
			wantQuery:  "limit=1&object_type=vehicle&subject=user%3Aalice",
			wantOut:    "SUBJECT     OBJECT TYPE  OBJECT ID  CREATED\nuser:alice  vehicle      WVW123     2026-03-01T12:00:00Z\n",
			wantStderr: "(more results: add --after user:alice|vehicle|WVW123)\n",
		},
		{
			name:     "add",
			args:     []string{"ownerships", "add", "user:alice", "vehicle", "WVW123"},
			wantReq:  "POST /admin/v1/ownerships",
			wantBody: `{"subject":"user:alice","object_type":"vehicle","object_id":"WVW123"}`,
			wantOut:  "Added: user:alice owns vehicle WVW123.\n",
		},
		{
			name:      "remove names the relation in the query",
			args:      []string{"ownerships", "remove", "user:alice", "vehicle", "WVW 1&2"},
			wantReq:   "DELETE /admin/v1/ownerships",
			wantQuery: "object_id=WVW+1%262&object_type=vehicle&subject=user%3Aalice",
			wantOut:   "Removed: user:alice owns vehicle WVW 1&2.\n",
		},
		{
			name:    "remove needs all three",
			args:    []string{"ownerships", "remove", "user:alice", "vehicle"},
			wantErr: "accepts 3 arg(s)",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := len(f.requests())
			r := runCLI(t, runOpts{env: env(f)}, tc.args...)
			if tc.wantErr != "" {
				if r.err == nil || !strings.Contains(r.err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", r.err, tc.wantErr)
				}
				if len(f.requests()) != n {
					t.Error("a request was sent despite a local error")
				}
				return
			}
			if r.err != nil {
				t.Fatalf("%v\n%s", r.err, r.stderr)
			}
			req := f.last(t)
			if got := req.Method + " " + req.Path; got != tc.wantReq {
				t.Errorf("request = %s, want %s", got, tc.wantReq)
			}
			if tc.wantQuery != "" && req.Query != tc.wantQuery {
				t.Errorf("query = %q, want %q", req.Query, tc.wantQuery)
			}
			if tc.wantBody != "" {
				jsonEqual(t, req.Body, tc.wantBody)
			}
			if r.stdout != tc.wantOut {
				t.Errorf("stdout\n got:\n%s\nwant:\n%s", r.stdout, tc.wantOut)
			}
			if r.stderr != tc.wantStderr {
				t.Errorf("stderr = %q, want %q", r.stderr, tc.wantStderr)
			}
		})
	}
}

// batches returns the "items" of every POST /ownerships the server got.
func batches(t *testing.T, f *fakeAPI) [][]relation {
	t.Helper()
	var out [][]relation
	for _, r := range f.requests() {
		if r.Method != http.MethodPost {
			continue
		}
		var b struct {
			Items []relation `json:"items"`
		}
		if err := json.Unmarshal(r.Body, &b); err != nil {
			t.Fatalf("body %s: %v", r.Body, err)
		}
		out = append(out, b.Items)
	}
	return out
}

func csvRows(n int) string {
	var b strings.Builder
	b.WriteString("subject,object_type,object_id\n")
	for i := range n {
		fmt.Fprintf(&b, "user:u%d,vehicle,VIN%04d\n", i, i)
	}
	return b.String()
}

func TestOwnershipsImportChunks(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, filepath.Join(dir, "owners.csv"), csvRows(12), 0o600)
	f := newFakeAPI(t, map[string]http.HandlerFunc{"POST /admin/v1/ownerships": reply(201, map[string]any{"items": []any{}})})

	r := runCLI(t, runOpts{env: env(f)}, "ownerships", "import", "-f", file, "--chunk", "5")
	if r.err != nil {
		t.Fatalf("%v\n%s", r.err, r.stderr)
	}
	got := batches(t, f)
	if len(got) != 3 || len(got[0]) != 5 || len(got[1]) != 5 || len(got[2]) != 2 {
		t.Fatalf("batch sizes: %v", got)
	}
	if got[0][0] != (relation{"user:u0", "vehicle", "VIN0000"}) || got[2][1] != (relation{"user:u11", "vehicle", "VIN0011"}) {
		t.Errorf("rows out of order: first %v, last %v", got[0][0], got[2][1])
	}
	if want := "imported 5/12\nimported 10/12\nimported 12/12\n"; r.stderr != want {
		t.Errorf("stderr = %q, want %q", r.stderr, want)
	}
	if want := "Imported 12 relations from " + file + " in 3 requests.\n"; r.stdout != want {
		t.Errorf("stdout = %q, want %q", r.stdout, want)
	}

	t.Run("one chunk: no progress, json summary", func(t *testing.T) {
		r := runCLI(t, runOpts{env: env(f)}, "ownerships", "import", "-f", file, "-o", "json")
		if r.err != nil || r.stderr != "" {
			t.Fatalf("err %v, stderr %q", r.err, r.stderr)
		}
		jsonEqual(t, []byte(r.stdout), `{"file":"`+file+`","rows":12,"skipped":0,"imported":12,"requests":1,"dry_run":false}`)
	})

	t.Run("skip resumes", func(t *testing.T) {
		n := len(batches(t, f))
		r := runCLI(t, runOpts{env: env(f)}, "ownerships", "import", "-f", file, "--skip", "10")
		if r.err != nil {
			t.Fatal(r.err)
		}
		b := batches(t, f)[n:]
		if len(b) != 1 || len(b[0]) != 2 || b[0][0].Subject != "user:u10" {
			t.Errorf("batches %v", b)
		}
		if want := "Imported 2 relations from " + file + " (first 10 skipped) in 1 request.\n"; r.stdout != want {
			t.Errorf("stdout = %q", r.stdout)
		}
	})

	t.Run("dry run sends nothing", func(t *testing.T) {
		n := len(f.requests())
		r := runCLI(t, runOpts{env: env(f)}, "ownerships", "import", "-f", file, "--chunk", "5", "--dry-run")
		if r.err != nil {
			t.Fatal(r.err)
		}
		if len(f.requests()) != n {
			t.Error("a request was sent")
		}
		if want := file + ": 12 valid relations; would send 3 requests. Dry run: nothing sent.\n"; r.stdout != want {
			t.Errorf("stdout = %q", r.stdout)
		}
	})

	for _, bad := range [][]string{{"--chunk", "0"}, {"--chunk", "10001"}, {"--skip", "13"}, {"--format", "xml"}} {
		t.Run("refuses "+strings.Join(bad, " "), func(t *testing.T) {
			n := len(f.requests())
			r := runCLI(t, runOpts{env: env(f)}, append([]string{"ownerships", "import", "-f", file}, bad...)...)
			if r.err == nil || len(f.requests()) != n {
				t.Errorf("err = %v, requests sent: %d", r.err, len(f.requests())-n)
			}
		})
	}
}

func TestOwnershipsImportLargeFileUsesServerMaximum(t *testing.T) {
	file := writeFile(t, filepath.Join(t.TempDir(), "big.csv"), csvRows(25000), 0o600)
	f := newFakeAPI(t, map[string]http.HandlerFunc{"POST /admin/v1/ownerships": reply(201, map[string]any{"items": []any{}})})
	r := runCLI(t, runOpts{env: env(f)}, "ownerships", "import", "-f", file, "--chunk", "10000")
	if r.err != nil {
		t.Fatal(r.err)
	}
	b := batches(t, f)
	if len(b) != 3 || len(b[0]) != 10000 || len(b[2]) != 5000 {
		t.Errorf("%d batches", len(b))
	}
	if want := "imported 10000/25000\nimported 20000/25000\nimported 25000/25000\n"; r.stderr != want {
		t.Errorf("stderr = %q", r.stderr)
	}
}

func TestSplitChunksByBytes(t *testing.T) {
	rows := make([]importRow, 10)
	for i := range rows {
		rows[i] = importRow{relation{"user:a", "vehicle", strings.Repeat("x", 100)}, i + 2}
	}
	size := rows[0].size()
	got := splitChunks(rows, 100, 3*size)
	want := []chunk{{0, 3}, {3, 6}, {6, 9}, {9, 10}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("chunks = %v, want %v", got, want)
	}
	if got := splitChunks(rows, 4, 1<<20); fmt.Sprint(got) != fmt.Sprint([]chunk{{0, 4}, {4, 8}, {8, 10}}) {
		t.Errorf("chunks = %v", got)
	}
	if got := splitChunks(rows[:1], 4, 1); len(got) != 1 {
		t.Errorf("an oversized row must still go alone: %v", got)
	}
}

// TestOwnershipsImportBadRows: every bad row is reported with its line,
// and nothing is sent.
func TestOwnershipsImportBadRows(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, file, content string
		args                []string
		want                []string
	}{
		{
			name: "csv",
			file: "owners.csv",
			content: "object_id, subject ,object_type\n" +
				"VIN1,user:alice,vehicle\n" +
				"\n" +
				"VIN2,alice,vehicle\n" +
				"VIN3,user:bob,Vehicle\n" +
				"VIN1,user:alice,vehicle\n" +
				"VIN4,user:carol\n" +
				",user:dave,vehicle\n",
			want: []string{
				`owners.csv:4: subject "alice": want user:NAME, app:NAME or device:ID`,
				`owners.csv:5: object_type "Vehicle": want a lowercase type`,
				"owners.csv:6: the same relation as line 2",
				"owners.csv:7: 2 fields, want 3",
				`owners.csv:8: object_id "": want 1 to 256 bytes`,
				"owners.csv: 5 bad rows; nothing was sent",
			},
		},
		{
			name:    "csv header",
			file:    "h.csv",
			content: "subject,type,object_id\nuser:a,vehicle,1\n",
			want:    []string{`h.csv:1: column "type": want a header row naming the columns subject, object_type, object_id once each`},
		},
		{
			name:    "csv quoting",
			file:    "q.csv",
			content: "subject,object_type,object_id\nuser:a,vehicle,\"VIN\"x\n",
			want:    []string{"q.csv:2:"},
		},
		{
			name: "json",
			file: "owners.json",
			content: `[
  {"subject": "user:alice", "object_type": "vehicle", "object_id": "VIN1"},
  {"subject": "user:bob", "object_type": "vehicle", "object_id": 42},
  "user:carol",
  {"subject": "user:dave", "object_type": "vehicle", "object_id": "VIN4", "owner": "x"}
]`,
			want: []string{
				"owners.json:3: object_id must be a string",
				"owners.json:4: want an object with subject, object_type and object_id, not a JSON string",
				`owners.json:5: unknown member "owner"`,
				"3 bad rows; nothing was sent",
			},
		},
		{
			name:    "json syntax",
			file:    "s.json",
			content: "[\n  {\"subject\": \"user:a\",}\n]",
			want:    []string{"s.json:2:"},
		},
		{
			name:    "json not an array",
			file:    "o.json",
			content: `{"subject": "user:a"}`,
			want:    []string{`o.json:1:2: unexpected member "subject"`},
		},
		{
			name:    "unknown extension",
			file:    "owners.txt",
			content: csvRows(1),
			want:    []string{"name it .csv or .json, or give --format"},
		},
		{
			name:    "empty",
			file:    "e.csv",
			content: "subject,object_type,object_id\n",
			want:    []string{"e.csv holds no relations"},
		},
	}
	f := newFakeAPI(t, nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, filepath.Join(dir, tc.file), tc.content, 0o600)
			r := runCLI(t, runOpts{env: env(f)}, append([]string{"ownerships", "import", "-f", path}, tc.args...)...)
			if r.err == nil {
				t.Fatal("want an error")
			}
			msg := strings.ReplaceAll(r.err.Error(), dir+string(filepath.Separator), "")
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error\n%s\nlacks %q", msg, w)
				}
			}
			if n := len(f.requests()); n != 0 {
				t.Errorf("%d requests sent", n)
			}
		})
	}
}

func TestOwnershipsImportJSON(t *testing.T) {
	f := newFakeAPI(t, map[string]http.HandlerFunc{"POST /admin/v1/ownerships": reply(201, map[string]any{"items": []any{}})})
	// What `ownerships list -o json` prints imports as it is.
	export := `{"items": [
  {"tenant": "acme", "subject": "user:alice", "object_type": "vehicle", "object_id": "VIN1", "created_at": "2026-03-01T12:00:00Z"},
  {"subject": "app:fleet-ops", "object_type": "device-model", "object_id": "meter x"}
], "next": ""}`
	r := runCLI(t, runOpts{env: env(f), stdin: export}, "ownerships", "import", "-f", "-", "--format", "json")
	if r.err != nil {
		t.Fatal(r.err)
	}
	jsonEqual(t, f.last(t).Body, `{"items":[{"subject":"user:alice","object_type":"vehicle","object_id":"VIN1"},{"subject":"app:fleet-ops","object_type":"device-model","object_id":"meter x"}]}`)
	if r.stdout != "Imported 2 relations from stdin in 1 request.\n" {
		t.Errorf("stdout = %q", r.stdout)
	}
}

// TestOwnershipsImportChunkRejected: a rejected chunk stops the import;
// the error shows the server's problem at the file's line, what was
// imported before, and how to resume.
func TestOwnershipsImportChunkRejected(t *testing.T) {
	file := writeFile(t, filepath.Join(t.TempDir(), "owners.csv"), csvRows(12), 0o600)
	var calls atomic.Int32
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"POST /admin/v1/ownerships": func(w http.ResponseWriter, r *http.Request) {
			if calls.Add(1) == 2 {
				replyProblem(409, map[string]any{"title": "Conflict", "status": 409, "detail": "relation already exists: user:u6 owns vehicle VIN0006",
					"errors": []map[string]any{{"pointer": "/items/1", "detail": "already exists"}}})(w, r)
				return
			}
			reply(201, map[string]any{"items": []any{}})(w, r)
		},
	})
	r := runCLI(t, runOpts{env: env(f)}, "ownerships", "import", "-f", file, "--chunk", "5")
	if r.err == nil {
		t.Fatal("want an error")
	}
	for _, w := range []string{
		"Conflict (409): relation already exists",
		"\n  " + file + ":8: /items/1: already exists",
		"chunk 2 of 3 (" + file + " lines 7-11) was rejected; none of its relations were stored.",
		"5 of 12 relations were imported before it; after fixing the file, resume with --skip 5.",
	} {
		if !strings.Contains(r.err.Error(), w) {
			t.Errorf("error\n%s\nlacks %q", r.err, w)
		}
	}
	if r.stderr != "imported 5/12\nError: "+r.err.Error()+"\n" {
		t.Errorf("stderr = %q", r.stderr)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("%d requests; the import must stop at the rejected chunk", n)
	}
}
