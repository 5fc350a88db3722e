package oktatest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func hookBody(uri, secret string, types ...string) string {
	b, _ := json.Marshal(map[string]any{
		"name":   "h",
		"events": map[string]any{"type": "EVENT_TYPE", "items": types},
		"channel": map[string]any{"type": "HTTP", "version": "1.0.0", "config": map[string]any{
			"uri": uri, "headers": []map[string]string{{"key": "x-api-key", "value": "k"}},
			"authScheme": map[string]string{"type": "HEADER", "key": "Authorization", "value": secret},
		}},
	})
	return string(b)
}

func call(t *testing.T, base, token, method, path, body string) (int, map[string]any, string) {
	t.Helper()
	req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
	req.Header.Set("Authorization", "SSWS "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return resp.StatusCode, m, string(raw)
}

func TestEventHookRoutes(t *testing.T) {
	s := New(Options{})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "s3cret" || r.Header.Get("x-api-key") != "k" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"verification": r.Header.Get("X-Okta-Verification-Challenge")})
	}))
	defer hook.Close()

	if st, _, _ := call(t, srv.URL, "wrong", "GET", "/api/v1/eventHooks", ""); st != 401 {
		t.Errorf("bad token: %d, want 401", st)
	}
	if st, _, raw := call(t, srv.URL, DefaultToken, "POST", "/api/v1/eventHooks", hookBody(hook.URL, "s3cret", "user.lifecycle.deactivated")); st != 400 || !strings.Contains(raw, "user.lifecycle.deactivated") {
		t.Errorf("unknown type: %d %s, want 400 naming it", st, raw)
	}
	if st, _, _ := call(t, srv.URL, DefaultToken, "POST", "/api/v1/eventHooks", hookBody("http://example.com/x", "s3cret", "group.user_membership.add")); st != 400 {
		t.Errorf("http:// non-loopback URI: %d, want 400", st)
	}
	st, created, raw := call(t, srv.URL, DefaultToken, "POST", "/api/v1/eventHooks", hookBody(hook.URL, "s3cret", "group.user_membership.add"))
	if st != 200 || created["status"] != "ACTIVE" || created["verificationStatus"] != "UNVERIFIED" || created["created"] == nil || created["lastUpdated"] == nil {
		t.Fatalf("create: %d %s", st, raw)
	}
	if strings.Contains(raw, "s3cret") {
		t.Errorf("authScheme.value returned: %s", raw)
	}
	id := created["id"].(string)
	if len(id) != 20 || !strings.HasPrefix(id, "who") {
		t.Errorf("id %q does not look like Okta's", id)
	}
	if st, m, raw := call(t, srv.URL, DefaultToken, "POST", "/api/v1/eventHooks/"+id+"/lifecycle/verify", ""); st != 200 || m["verificationStatus"] != "VERIFIED" {
		t.Fatalf("verify: %d %s", st, raw)
	}
	// Same channel: stays verified. Another secret: must be verified again.
	if st, m, _ := call(t, srv.URL, DefaultToken, "PUT", "/api/v1/eventHooks/"+id, hookBody(hook.URL, "s3cret", "group.user_membership.add", "group.user_membership.remove")); st != 200 || m["verificationStatus"] != "VERIFIED" {
		t.Errorf("PUT events only: %d %v", st, m["verificationStatus"])
	}
	if st, m, _ := call(t, srv.URL, DefaultToken, "PUT", "/api/v1/eventHooks/"+id, hookBody(hook.URL, "other", "group.user_membership.add")); st != 200 || m["verificationStatus"] != "UNVERIFIED" {
		t.Errorf("PUT new secret: %d %v, want UNVERIFIED", st, m["verificationStatus"])
	}
	if st, _, raw := call(t, srv.URL, DefaultToken, "POST", "/api/v1/eventHooks/"+id+"/lifecycle/verify", ""); st != 400 || strings.Contains(raw, "other") {
		t.Errorf("verify against a hook refusing the secret: %d %s, want 400 without the value", st, raw)
	}
	if h := s.EventHooks()[0]; h.VerificationStatus != HookUnverified || h.Verifications != 3 {
		t.Errorf("%s after %d GETs, want UNVERIFIED after 1+2", h.VerificationStatus, h.Verifications)
	}
	if st, _, _ := call(t, srv.URL, DefaultToken, "DELETE", "/api/v1/eventHooks/"+id, ""); st != 400 {
		t.Errorf("delete ACTIVE: %d, want 400", st)
	}
	if st, m, _ := call(t, srv.URL, DefaultToken, "POST", "/api/v1/eventHooks/"+id+"/lifecycle/deactivate", ""); st != 200 || m["status"] != "INACTIVE" {
		t.Errorf("deactivate: %d %v", st, m["status"])
	}
	if st, _, _ := call(t, srv.URL, DefaultToken, "PUT", "/api/v1/eventHooks/who00000000000000999", hookBody(hook.URL, "s3cret", "group.user_membership.add")); st != 404 {
		t.Errorf("PUT unknown id: %d, want 404", st)
	}
	if st, _, _ := call(t, srv.URL, DefaultToken, "DELETE", "/api/v1/eventHooks/"+id, ""); st != 204 {
		t.Errorf("delete INACTIVE: %d, want 204", st)
	}
	if st, _, raw := call(t, srv.URL, DefaultToken, "GET", "/api/v1/eventHooks", ""); st != 200 || strings.TrimSpace(raw) != "[]" {
		t.Errorf("list after delete: %d %s", st, raw)
	}
}
