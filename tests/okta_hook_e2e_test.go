package tests

// End-to-end test of cmd/okta-hook (make okta-hook / make okta-hook-check): the real command
// binary reads the stack's outputs (CloudFormation DescribeStacks) and the secret (Secrets Manager)
// from moto_server, registers the event hook in the Okta fake, and the fake verifies it against the
// real hook bootstrap (under the harness's Lambda Runtime API, behind an API Gateway stand-in that
// checks x-api-key) the way Okta does: a GET with X-Okta-Verification-Challenge and the hook's
// auth and custom headers.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/okta/oktatest"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/oktahook"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/tests/harness"
)

const (
	regHookSecret = "reg-hook-secret-e2e-Wq5Yt7"
	regOktaToken  = "reg-okta-ssws-e2e-Cx2Vb6"
	regAPIKey     = "reg-api-key-e2e-Nk8Jm3"
	regAuthHeader = "X-Okta-Hook-Auth"
)

// apiGateway turns HTTP requests into API Gateway proxy events for the real hook bootstrap and
// refuses a request without the API key with 403, as API Gateway does before Lambda runs.
func apiGateway(t *testing.T, rt *harness.Runtime, apiKey string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("x-api-key") != apiKey {
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, `{"message":"Forbidden"}`)
			return
		}
		body, _ := io.ReadAll(r.Body)
		req := events.APIGatewayProxyRequest{HTTPMethod: r.Method, Path: r.URL.Path, Body: string(body),
			Headers: map[string]string{}, MultiValueHeaders: map[string][]string{}}
		for k, vs := range r.Header {
			req.Headers[k] = vs[len(vs)-1]
			req.MultiValueHeaders[k] = vs
		}
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		resp, err := rt.InvokeAPIGateway(ctx, req)
		if err != nil {
			t.Errorf("invoke hook: %v", err)
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		for k, v := range resp.Headers {
			w.Header().Set(k, v)
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.WriteString(w, resp.Body)
	})
}

func TestOktaHookCommandEndToEnd(t *testing.T) {
	t.Parallel()
	m := harness.MustStartMoto(t)
	ctx := context.Background()
	queue := harness.MustCreateFIFOQueue(t, m, "okta-hook-reg", 5)
	secretARN := harness.MustCreateSecret(t, m, "okta-aws-sso-sync/okta-hook-reg", harness.SecretJSON(regHookSecret, "scim-unused", regOktaToken))
	rt := harness.MustStartRuntime(t, harness.MustBuildFunction(t, "hook"), harness.MergeEnv(m.Env(), map[string]string{
		"SECRET_ID": secretARN, "QUEUE_URL": queue.URL, "AUTH_HEADER": regAuthHeader, "LOG_LEVEL": "debug",
	}))
	gw := httptest.NewServer(apiGateway(t, rt, regAPIKey))
	defer gw.Close()
	hookURL := gw.URL + "/prod/okta/events"

	okta := oktatest.New(oktatest.Options{Token: regOktaToken})
	oktaURL, err := okta.Start("")
	if err != nil {
		t.Fatal(err)
	}
	defer okta.Close()

	// The stack's outputs as template.yaml declares them (HookUrl, SecretArn), in a moto stack.
	const stack = "okta-aws-sso-sync-e2e"
	mustCreateStack(t, ctx, m, stack,
		map[string]string{"AuthHeader": "Authorization"},
		map[string]string{"AuthHeader": regAuthHeader},
		map[string]string{"HookUrl": hookURL, "SecretArn": secretARN})

	bin := harness.MustBuild(t, "cmd/okta-hook")
	runCmd := func(t *testing.T, args ...string) (int, string) {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"-org", oktaURL, "-stack", stack}, args...)...)
		// No AUTH_HEADER: the command takes the stack's AuthHeader parameter.
		env := harness.MergeEnv(m.Env(), map[string]string{"HOOK_API_KEY": regAPIKey})
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		start := time.Now()
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		t.Logf("okta-hook %s → exit %d in %v\n%s", strings.Join(args, " "), code, time.Since(start).Round(time.Millisecond), out.String())
		for _, s := range []string{regHookSecret, regOktaToken, regAPIKey} {
			if strings.Contains(out.String(), s) {
				t.Errorf("output contains a secret")
			}
		}
		return code, out.String()
	}
	writes := func() []string {
		var w []string
		for _, r := range okta.RequestLog() {
			if r.Method != http.MethodGet {
				w = append(w, r.Method+" "+r.Path)
			}
		}
		return w
	}

	if code, out := runCmd(t, "-check"); code != 2 || !strings.Contains(out, "no event hook named") {
		t.Errorf("check before: exit %d", code)
	}
	code, out := runCmd(t)
	if code != 0 || !strings.Contains(out, "created event hook") || !strings.Contains(out, "verified") {
		t.Fatalf("create: exit %d", code)
	}
	hooks := okta.EventHooks()
	if len(hooks) != 1 {
		t.Fatalf("%d hooks", len(hooks))
	}
	h := hooks[0]
	if h.Name != stack || h.URI != hookURL || h.AuthKey != regAuthHeader || h.AuthValue != regHookSecret ||
		h.Status != "ACTIVE" || h.VerificationStatus != "VERIFIED" || h.Verifications != 1 ||
		!slices.Equal(slices.Sorted(slices.Values(h.Events)), oktahook.HandledEventTypes()) ||
		!slices.Equal(h.Headers, []oktatest.EventHookHeader{{Key: "x-api-key", Value: regAPIKey}}) {
		t.Errorf("hook = %s %s %s %s/%s %v %d headers", h.Name, h.URI, h.AuthKey, h.Status, h.VerificationStatus, h.Events, len(h.Headers))
	}
	if !strings.Contains(rt.Logs(), "verification") {
		t.Errorf("the hook bootstrap logged no verification request:\n%s", rt.Logs())
	}
	assertNoSecrets(t, rt.Logs(), regHookSecret, regOktaToken, regAPIKey)

	okta.ResetStats()
	if code, out := runCmd(t); code != 0 || !strings.Contains(out, "nothing changed") {
		t.Errorf("second run: exit %d", code)
	}
	if w := writes(); len(w) != 0 {
		t.Errorf("second run wrote %v", w)
	}
	if code, out := runCmd(t, "-check"); code != 0 || !strings.Contains(out, "is complete") {
		t.Errorf("check after: exit %d", code)
	}

	// Someone drops the deactivate event in the admin console and deactivates the hook.
	req, _ := json.Marshal(map[string]any{"name": h.Name, "events": map[string]any{"type": "EVENT_TYPE", "items": []string{"group.user_membership.add"}},
		"channel": map[string]any{"type": "HTTP", "version": "1.0.0", "config": map[string]any{"uri": h.URI,
			"headers": []map[string]string{{"key": "x-api-key", "value": regAPIKey}}, "authScheme": map[string]string{"type": "HEADER", "key": regAuthHeader, "value": regHookSecret}}}})
	for _, c := range []struct{ method, path, body string }{
		{http.MethodPut, "/api/v1/eventHooks/" + h.ID, string(req)},
		{http.MethodPost, "/api/v1/eventHooks/" + h.ID + "/lifecycle/deactivate", ""},
	} {
		r, _ := http.NewRequest(c.method, oktaURL+c.path, strings.NewReader(c.body))
		r.Header.Set("Authorization", "SSWS "+regOktaToken)
		r.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(r)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s %s: %v %v", c.method, c.path, err, resp)
		}
		resp.Body.Close()
	}
	code, out = runCmd(t, "-check")
	if code != 2 || !strings.Contains(out, "missing event type user.lifecycle.deactivate") || !strings.Contains(out, "not ACTIVE") {
		t.Errorf("check of the broken hook: exit %d", code)
	}
	if code, out := runCmd(t); code != 0 || !strings.Contains(out, "fixed missing event type user.lifecycle.deactivate") || !strings.Contains(out, "activated") {
		t.Errorf("repair: exit %d", code)
	}
	if code, _ := runCmd(t, "-check"); code != 0 {
		t.Errorf("check after repair: exit %d", code)
	}

	// A wrong API key fails verification at the API Gateway stand-in: exit 1, reason printed.
	cmd := exec.Command(bin, "-org", oktaURL, "-stack", stack, "-rotate")
	for k, v := range harness.MergeEnv(m.Env(), map[string]string{"HOOK_API_KEY": "wrong-key"}) {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	outB, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(outB), "403") {
		t.Errorf("wrong API key: %v\n%s", err, outB)
	}
	if strings.Contains(string(outB), regHookSecret) || strings.Contains(string(outB), regOktaToken) {
		t.Error("output contains a secret")
	}
}
