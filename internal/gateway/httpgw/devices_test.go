package httpgw

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/internal/devobs"
	"github.com/fleetgate/fleetgate/internal/identity/credential"
	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/policy"
	"github.com/fleetgate/fleetgate/internal/ratelimit"
)

// TestObserveRevokedAPIKey: over a real socket, a request with a revoked
// API key is refused (401) and recorded as a refused attempt with the
// client address; a live key, an unknown key and no key are not.
func TestObserveRevokedAPIKey(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer up.Close()
	now := time.Now()
	live, _, liveHash := credential.NewAPIKey()
	revoked, _, revokedHash := credential.NewAPIKey()
	unknown, _, _ := credential.NewAPIKey()
	c := ratelimit.NewLocal(ratelimit.LocalOptions{})
	defer c.Close()
	eng := policy.NewEngine(policy.Options{Counter: c})
	v := version("v1", "/v1", model.StatePublished, up.URL)
	v.Policy.Auth.Methods = []string{"api_key"}
	eng.Swap(policy.Compile(&policy.Input{Versions: []model.Version{v},
		Apps: []model.Application{{ID: "a1", TenantID: "acme", Name: "billing"}},
		Keys: []model.APIKey{{ID: "k1", TenantID: "acme", AppID: "a1", Hash: liveHash[:]},
			{ID: "k2", TenantID: "acme", AppID: "a1", Hash: revokedHash[:], RevokedAt: &now}}}, nil))
	rec := devobs.New(0, 0)
	srv := httptest.NewServer(New(Options{Engine: eng, Devices: rec}))
	defer srv.Close()
	for _, tc := range []struct {
		name, key string
		status    int
	}{
		{"live key", live, 200},
		{"revoked key", revoked, 401},
		{"revoked key again", revoked, 401},
		{"unknown key", unknown, 401},
		{"no key", "", 401},
	} {
		res, _ := get(t, srv.URL+"/v1/items/1", "X-API-Key", tc.key)
		if res.StatusCode != tc.status {
			t.Errorf("%s: %d, want %d", tc.name, res.StatusCode, tc.status)
		}
	}
	got := rec.Attempts("acme")
	if len(got) != 1 || got[0].Kind != policy.RefusedRevokedAPIKey || got[0].Subject != "app:billing" || got[0].Credential != "api_key:k2" ||
		got[0].Count != 2 || got[0].Protocol != "http" || got[0].Remote != "127.0.0.1" {
		t.Fatalf("attempts %+v", got)
	}
}
