package tests

// End-to-end test of functions/hook: the real bootstrap, built for the host, runs under the
// harness's fake Lambda Runtime API with moto_server as SQS (FIFO) and Secrets Manager, reached
// through AWS_ENDPOINT_URL exactly as in a deployment. Inputs are the events/ samples (the bytes
// API Gateway would send) and requests built from them.

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/membership"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/queue"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/tests/harness"
)

// Secret values of this test. hookSampleToken is the value events/README.md documents for the
// samples; the others must never show up in any output.
const (
	hookSampleToken  = "sample-okta-hook-token"
	hookRotatedToken = "rotated-okta-hook-token-7Qx2"
	hookSCIMKey      = "scim-bearer-e2e-Zr8Kd1"
	hookOktaToken    = "okta-ssws-e2e-Lm3Np0"
)

// hookE2E is one moto, one queue, one secret and the hook running against them.
type hookE2E struct {
	moto   *harness.Moto
	queue  harness.Queue
	secret string // ARN
	rt     *harness.Runtime
}

func startHookE2E(t *testing.T, m *harness.Moto, name string, extraEnv map[string]string) *hookE2E {
	t.Helper()
	e := &hookE2E{moto: m}
	e.queue = harness.MustCreateFIFOQueue(t, m, name, 5)
	e.secret = harness.MustCreateSecret(t, m, "okta-aws-sso-sync/"+name, harness.SecretJSON(hookSampleToken, hookSCIMKey, hookOktaToken))
	env := harness.MergeEnv(m.Env(), map[string]string{
		"SECRET_ID":    e.secret,
		"QUEUE_URL":    e.queue.URL,
		"LOG_LEVEL":    "debug", // the most output, so the secret check below covers the most
		"GROUP_PREFIX": "AWS_",
	}, extraEnv)
	e.rt = harness.MustStartRuntime(t, harness.MustBuildFunction(t, "hook"), env)
	return e
}

func (e *hookE2E) invoke(t *testing.T, req events.APIGatewayProxyRequest) events.APIGatewayProxyResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	resp, err := e.rt.InvokeAPIGateway(ctx, req)
	if err != nil {
		t.Fatalf("invoke %s %s: %v", req.HTTPMethod, req.Path, err)
	}
	t.Logf("%s → %d in %v", req.HTTPMethod, resp.StatusCode, time.Since(start).Round(time.Millisecond))
	return resp
}

// depth is the number of messages on the queue; moto answers it exactly.
func (e *hookE2E) depth(t *testing.T) int {
	t.Helper()
	n, err := e.moto.Depth(context.Background(), e.queue.URL)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func hookSample(t *testing.T, name string) events.APIGatewayProxyRequest {
	t.Helper()
	root, err := harness.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "events", name))
	if err != nil {
		t.Fatal(err)
	}
	var req events.APIGatewayProxyRequest
	if err := json.Unmarshal(b, &req); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return req
}

// withAuth returns req with the auth header replaced in both header maps.
func withAuth(req events.APIGatewayProxyRequest, value string) events.APIGatewayProxyRequest {
	req.Headers = hookCopyHeaders(req.Headers)
	req.MultiValueHeaders = hookCopyMultiHeaders(req.MultiValueHeaders)
	for k := range req.Headers {
		if strings.EqualFold(k, "Authorization") {
			delete(req.Headers, k)
		}
	}
	for k := range req.MultiValueHeaders {
		if strings.EqualFold(k, "Authorization") {
			delete(req.MultiValueHeaders, k)
		}
	}
	if value != "" {
		req.Headers["Authorization"] = value
		req.MultiValueHeaders["Authorization"] = []string{value}
	}
	return req
}

func hookCopyHeaders(h map[string]string) map[string]string {
	out := make(map[string]string, len(h)+1)
	for k, v := range h {
		out[k] = v
	}
	return out
}

func hookCopyMultiHeaders(h map[string][]string) map[string][]string {
	out := make(map[string][]string, len(h)+1)
	for k, v := range h {
		out[k] = append([]string(nil), v...)
	}
	return out
}

// oktaDelivery is the part of an Okta event hook body this test reads to derive, independently
// of pkg/oktahook, what the hook must enqueue.
type oktaDelivery struct {
	EventID string `json:"eventId"`
	Data    struct {
		Events []struct {
			UUID      string    `json:"uuid"`
			Published time.Time `json:"published"`
			EventType string    `json:"eventType"`
			Outcome   struct {
				Result string `json:"result"`
			} `json:"outcome"`
			Target []struct {
				ID          string `json:"id"`
				Type        string `json:"type"`
				AlternateID string `json:"alternateId"`
				DisplayName string `json:"displayName"`
			} `json:"target"`
		} `json:"events"`
	} `json:"data"`
}

func hookBody(t *testing.T, req events.APIGatewayProxyRequest) []byte {
	t.Helper()
	if !req.IsBase64Encoded {
		return []byte(req.Body)
	}
	b, err := base64.StdEncoding.DecodeString(req.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// expectedChanges is what the README (Architecture: the hook) says a delivery must yield: one change per SUCCESS event of a
// relevant type whose group (if it has one) starts with AWS_, targets found by type.
func expectedChanges(t *testing.T, body []byte) []membership.Change {
	t.Helper()
	var d oktaDelivery
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]membership.Kind{
		"group.user_membership.add":    membership.KindAdd,
		"group.user_membership.remove": membership.KindRemove,
		"group.profile.update":         membership.KindRename,
		"group.lifecycle.delete":       membership.KindGroupDelete,
		"user.lifecycle.deactivate":    membership.KindUserDeactivate,
	}
	var out []membership.Change
	for _, ev := range d.Data.Events {
		kind, ok := kinds[ev.EventType]
		if !ok || ev.Outcome.Result != "SUCCESS" {
			continue
		}
		c := membership.Change{EventUUID: ev.UUID, Published: ev.Published, Kind: kind}
		for _, tg := range ev.Target {
			switch tg.Type {
			case "User":
				c.UserID, c.Login = tg.ID, tg.AlternateID
			case "UserGroup":
				c.GroupID, c.GroupName = tg.ID, tg.DisplayName
			}
		}
		if kind != membership.KindUserDeactivate && !strings.HasPrefix(c.GroupName, "AWS_") {
			continue
		}
		out = append(out, c)
	}
	return out
}

// changeKey identifies a change without the fields the hook may legitimately shape differently
// (login and names, which the worker re-reads).
func changeKey(c membership.Change) string {
	return fmt.Sprintf("%s|%s|%s|%s|%s", c.EventUUID, c.Kind, c.GroupID, c.UserID, c.Published.UTC().Format(time.RFC3339Nano))
}

// assertQueue drains the queue and checks it holds exactly want: each message decoded with
// queue.Decode holds changes of one Okta group (its MessageGroupId; a deactivation's is
// "user:<id>"), and its deduplication id is derived from the event targets it holds, so Okta's
// redeliveries are deduplicated.
func (e *hookE2E) assertQueue(t *testing.T, want []membership.Change) []harness.Message {
	t.Helper()
	msgs := harness.MustReceiveAll(t, e.moto, e.queue.URL)
	got := map[string]int{}
	dedup := map[string]bool{}
	for _, m := range msgs {
		cs, err := queue.Decode(m.Body)
		if err != nil {
			t.Errorf("message %s does not decode: %v\n%s", m.ID, err, m.Body)
			continue
		}
		if dedup[m.DedupID] {
			t.Errorf("two messages with deduplication id %q", m.DedupID)
		}
		dedup[m.DedupID] = true
		var ids []string
		for _, c := range cs {
			got[changeKey(c)]++
			wantGroup := c.GroupID
			if c.Kind == membership.KindUserDeactivate {
				wantGroup = "user:" + c.UserID
			}
			if m.GroupID != wantGroup || m.GroupID != queue.GroupID(c) {
				t.Errorf("%s %s: in a message of MessageGroupId %q, want %q", c.Kind, c.EventUUID, m.GroupID, wantGroup)
			}
			if id := queue.DedupID(c); !strings.HasPrefix(id, c.EventUUID+"/"+string(c.Kind)) {
				t.Errorf("%s %s: change deduplication id %q", c.Kind, c.EventUUID, id)
			}
			ids = append(ids, queue.DedupID(c))
			if c.Kind.Member() && (c.Login == "" || c.GroupName == "") {
				t.Errorf("%s %s: login %q, group name %q: the worker needs both", c.Kind, c.EventUUID, c.Login, c.GroupName)
			}
		}
		// One change: its own id (as v1 messages had); several: the hash of their sorted ids.
		wantDedup := ""
		if len(ids) == 1 {
			wantDedup = ids[0]
		} else {
			slices.Sort(ids)
			sum := sha256.Sum256([]byte(strings.Join(ids, "\n")))
			wantDedup = hex.EncodeToString(sum[:])
		}
		if m.DedupID != wantDedup {
			t.Errorf("message of %d changes: MessageDeduplicationId %q, want %q", len(cs), m.DedupID, wantDedup)
		}
	}
	wantKeys := map[string]int{}
	for _, c := range want {
		wantKeys[changeKey(c)]++
	}
	for k, n := range wantKeys {
		if got[k] != n {
			t.Errorf("change %s: %d on the queue, want %d", k, got[k], n)
		}
	}
	for k, n := range got {
		if wantKeys[k] == 0 {
			t.Errorf("unexpected change on the queue (%d times): %s", n, k)
		}
	}
	return msgs
}

// messageGroups is the number of FIFO message groups the changes of one delivery go to: the
// hook packs them into one message per group (none of these samples exceeds a pack).
func messageGroups(want []membership.Change) int {
	groups := map[string]bool{}
	for _, c := range want {
		if c.Kind == membership.KindUserDeactivate {
			groups["user:"+c.UserID] = true
		} else {
			groups[c.GroupID] = true
		}
	}
	return len(groups)
}

// assertNoSecrets fails if any secret value, or a token a caller presented, appears in the
// function's output.
func assertNoSecrets(t *testing.T, logs string, extra ...string) {
	t.Helper()
	for _, s := range append([]string{hookSampleToken, hookRotatedToken, hookSCIMKey, hookOktaToken}, extra...) {
		if strings.Contains(logs, s) {
			t.Errorf("function output contains the secret value %q", s)
		}
	}
}

func TestHookEndToEnd(t *testing.T) {
	t.Parallel()
	// Fails (never skips) without moto_server: CI has it, and a skipped e2e test hides breakage.
	m := harness.MustStartMoto(t)
	e := startHookE2E(t, m, "hook-e2e", nil)
	const wrongToken = "not-the-token"
	presented := []string{wrongToken, "sample-okta-hook-tokeN"}

	t.Run("verification", func(t *testing.T) {
		resp := e.invoke(t, hookSample(t, "hook-verification.json"))
		if resp.StatusCode != http.StatusOK || resp.Body != `{"verification":"Me_rShK8JHsTnbyYrWXCEoMGbM_zsZ6k0hLPZ_Pg"}` {
			t.Errorf("response %d %q", resp.StatusCode, resp.Body)
		}
		// The challenge header in another case.
		req := hookSample(t, "hook-verification.json")
		req.Headers = map[string]string{"x-okta-verification-challenge": "abc123", "authorization": hookSampleToken}
		req.MultiValueHeaders = map[string][]string{"x-okta-verification-challenge": {"abc123"}, "authorization": {hookSampleToken}}
		if resp := e.invoke(t, req); resp.StatusCode != http.StatusOK || resp.Body != `{"verification":"abc123"}` {
			t.Errorf("lower-case headers: response %d %q", resp.StatusCode, resp.Body)
		}
		if n := e.depth(t); n != 0 {
			t.Errorf("verification enqueued %d messages", n)
		}
	})

	t.Run("deliveries", func(t *testing.T) {
		for _, name := range []string{
			"hook-delivery-membership.json",
			"hook-delivery-rename.json",
			"hook-delivery-group-delete.json",
			"hook-delivery-user-deactivate.json",
			"hook-delivery-base64.json",
			"hook-delivery-failure.json",
		} {
			t.Run(strings.TrimSuffix(name, ".json"), func(t *testing.T) {
				req := hookSample(t, name)
				want := expectedChanges(t, hookBody(t, req))
				resp := e.invoke(t, req)
				if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
					t.Fatalf("response %d %q", resp.StatusCode, resp.Body)
				}
				if resp.Body != "" {
					t.Errorf("success with a body: %q", resp.Body)
				}
				if msgs := e.assertQueue(t, want); len(msgs) != messageGroups(want) {
					t.Errorf("%d messages for changes of %d groups, want one per group", len(msgs), messageGroups(want))
				}
			})
		}
	})

	t.Run("membership delivery", func(t *testing.T) {
		req := hookSample(t, "hook-delivery-membership.json")
		want := expectedChanges(t, hookBody(t, req))
		if len(want) != 4 {
			t.Fatalf("the sample should yield 4 changes, derived %d", len(want))
		}
		if resp := e.invoke(t, req); resp.StatusCode != http.StatusOK {
			t.Fatalf("response %d %q", resp.StatusCode, resp.Body)
		}
		msgs := e.assertQueue(t, want)
		perGroup := map[string]int{}
		for _, m := range msgs {
			cs, _ := queue.Decode(m.Body)
			perGroup[m.GroupID] += len(cs)
		}
		if len(msgs) != 2 || perGroup["00g8f2aa1bEngR4Hs5d7"] != 2 || perGroup["00g8f2bb2cRdoS5It5d7"] != 2 || len(perGroup) != 2 {
			t.Errorf("%d messages, changes per group %v; want one message each for AWS_Engineers and AWS_ReadOnly, 2 changes each", len(msgs), perGroup)
		}
	})

	t.Run("rejected", func(t *testing.T) {
		membershipReq := hookSample(t, "hook-delivery-membership.json")
		garbage64 := membershipReq
		garbage64.IsBase64Encoded, garbage64.Body = true, "%%% not base64 %%%"
		tooBig := membershipReq
		tooBig.Body = membershipReq.Body + strings.Repeat(" ", 6<<20) // MAX_BODY_BYTES is Lambda's 6 MiB
		noChallenge := withAuth(hookSample(t, "hook-verification.json"), hookSampleToken)
		delete(noChallenge.Headers, "X-Okta-Verification-Challenge")
		delete(noChallenge.MultiValueHeaders, "X-Okta-Verification-Challenge")
		put := membershipReq
		put.HTTPMethod = "PUT"
		notAnEnvelope := membershipReq
		notAnEnvelope.Body = `{"eventType":"com.okta.event_hook","data":{"events":"none"}}`

		cases := []struct {
			name   string
			req    events.APIGatewayProxyRequest
			status int
		}{
			{"sample malformed", hookSample(t, "hook-malformed.json"), http.StatusBadRequest},
			{"sample wrong shape", hookSample(t, "hook-wrong-shape.json"), http.StatusBadRequest},
			{"sample wrong auth", hookSample(t, "hook-wrong-auth.json"), http.StatusUnauthorized},
			{"sample missing auth", hookSample(t, "hook-missing-auth.json"), http.StatusUnauthorized},
			{"sample wrong content type", hookSample(t, "hook-wrong-content-type.json"), http.StatusUnsupportedMediaType},
			{"sample verification wrong auth", hookSample(t, "hook-verification-wrong-auth.json"), http.StatusUnauthorized},
			{"token differing in case", withAuth(membershipReq, presented[1]), http.StatusUnauthorized},
			{"token as bearer", withAuth(membershipReq, "Bearer "+hookSampleToken), http.StatusUnauthorized},
			{"empty token", withAuth(membershipReq, " "), http.StatusUnauthorized},
			{"wrong token, valid body", withAuth(membershipReq, wrongToken), http.StatusUnauthorized},
			{"invalid base64", garbage64, http.StatusBadRequest},
			{"over 6 MiB", tooBig, http.StatusRequestEntityTooLarge},
			{"envelope with events not a list", notAnEnvelope, http.StatusBadRequest},
			{"GET without challenge", noChallenge, http.StatusBadRequest},
			{"PUT", put, http.StatusMethodNotAllowed},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				resp := e.invoke(t, tc.req)
				if resp.StatusCode != tc.status {
					t.Errorf("status %d, want %d (body %q)", resp.StatusCode, tc.status, resp.Body)
				}
				for _, s := range append([]string{hookSampleToken}, presented...) {
					if strings.Contains(resp.Body, s) {
						t.Errorf("response body %q repeats a token", resp.Body)
					}
				}
				if n := e.depth(t); n != 0 {
					t.Errorf("a rejected request enqueued %d messages", n)
					harness.MustReceiveAll(t, e.moto, e.queue.URL)
				}
			})
		}
	})

	t.Run("redelivery", func(t *testing.T) {
		req := hookSample(t, "hook-delivery-membership.json")
		want := expectedChanges(t, hookBody(t, req))
		// Okta's retry after a timeout: the identical request.
		for range 2 {
			if resp := e.invoke(t, req); resp.StatusCode != http.StatusOK {
				t.Fatalf("response %d %q", resp.StatusCode, resp.Body)
			}
		}
		// The same events amalgamated into another delivery, in another order.
		var env map[string]any
		if err := json.Unmarshal([]byte(req.Body), &env); err != nil {
			t.Fatal(err)
		}
		env["eventId"] = "2f7c1a0e-0000-4000-8000-e2e000000001"
		evs := env["data"].(map[string]any)["events"].([]any)
		slices.Reverse(evs)
		b, _ := json.Marshal(env)
		again := req
		again.Body = string(b)
		if resp := e.invoke(t, again); resp.StatusCode != http.StatusOK {
			t.Fatalf("response %d %q", resp.StatusCode, resp.Body)
		}
		// Checked before draining: moto, unlike SQS, forgets a deduplication id once its message
		// is deleted, so the three deliveries must meet while the first copies are queued. The
		// reordered delivery packs the same changes per group into the same messages.
		if n := e.depth(t); n != messageGroups(want) {
			t.Errorf("%d messages after three deliveries of %d changes in %d groups: redelivery was not deduplicated", n, len(want), messageGroups(want))
		}
		e.assertQueue(t, want)
	})

	t.Run("enqueue failure", func(t *testing.T) {
		env := map[string]string{"QUEUE_URL": e.moto.Endpoint + "/" + harness.AccountID + "/no-such-queue.fifo"}
		bad := startHookE2E(t, m, "hook-e2e-noqueue", env)
		resp := bad.invoke(t, hookSample(t, "hook-delivery-membership.json"))
		if resp.StatusCode != http.StatusInternalServerError {
			t.Errorf("status %d, want 500 so that Okta retries", resp.StatusCode)
		}
		if strings.Contains(resp.Body, "no-such-queue") {
			t.Errorf("500 body %q exposes internals", resp.Body)
		}
		assertNoSecrets(t, bad.rt.Logs())
	})

	t.Run("logs", func(t *testing.T) {
		logs := e.rt.Logs()
		assertNoSecrets(t, logs, presented...)
		var requests int
		for _, line := range strings.Split(logs, "\n") {
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) != nil {
				continue
			}
			if rec["msg"] == "hook request" {
				requests++
				if id, _ := rec["aws_request_id"].(string); id == "" {
					t.Errorf("request log line without aws_request_id: %s", line)
				}
			}
		}
		if requests == 0 {
			t.Errorf("no \"hook request\" log lines in:\n%s", logs)
		}
		t.Logf("cold start (process start to first /next): %v", e.rt.ColdStart())
	})
}

// A rotated secret reaches a warm hook after SECRET_TTL, without a redeploy or restart.
func TestHookSecretRotation(t *testing.T) {
	t.Parallel()
	m := harness.MustStartMoto(t)
	const ttl = time.Second
	e := startHookE2E(t, m, "hook-rotation", map[string]string{"SECRET_TTL": ttl.String()})
	ctx := context.Background()

	deact := hookSample(t, "hook-delivery-user-deactivate.json")
	add := hookSample(t, "hook-delivery-base64.json")
	if resp := e.invoke(t, withAuth(deact, hookSampleToken)); resp.StatusCode != http.StatusOK {
		t.Fatalf("before rotation: %d %q", resp.StatusCode, resp.Body)
	}
	starts := e.rt.Starts()

	if err := m.PutSecretValue(ctx, e.secret, harness.SecretJSON(hookRotatedToken, hookSCIMKey, hookOktaToken)); err != nil {
		t.Fatal(err)
	}
	// Past the TTL every cached copy is stale; no timing is asserted, only waited for.
	time.Sleep(ttl + 500*time.Millisecond)

	if resp := e.invoke(t, withAuth(add, hookSampleToken)); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("old token after rotation: %d, want 401", resp.StatusCode)
	}
	if resp := e.invoke(t, withAuth(add, hookRotatedToken)); resp.StatusCode != http.StatusOK {
		t.Errorf("new token after rotation: %d %q, want 200", resp.StatusCode, resp.Body)
	}
	if e.rt.Starts() != starts {
		t.Errorf("the process was restarted (%d starts); rotation must reach a warm function", e.rt.Starts())
	}
	want := append(expectedChanges(t, hookBody(t, deact)), expectedChanges(t, hookBody(t, add))...)
	e.assertQueue(t, want)
	assertNoSecrets(t, e.rt.Logs())
}

// A hook without its configuration fails its init loudly, naming the variable, with no secret in
// the output.
func TestHookMisconfigured(t *testing.T) {
	t.Parallel()
	m := harness.MustStartMoto(t)
	arn := harness.MustCreateSecret(t, m, "okta-aws-sso-sync/misconfigured", harness.SecretJSON(hookSampleToken, hookSCIMKey, ""))
	rt := harness.MustStartRuntime(t, harness.MustBuildFunction(t, "hook"),
		harness.MergeEnv(m.Env(), map[string]string{"SECRET_ID": arn, "GROUP_REGEX": "AWS_(["}))
	_, err := rt.InvokeAPIGateway(context.Background(), hookSample(t, "hook-delivery-membership.json"))
	var exit *harness.ExitError
	var initErr *harness.InitError
	if !errors.As(err, &exit) && !errors.As(err, &initErr) {
		t.Fatalf("err = %v, want the init to fail", err)
	}
	for _, v := range []string{"QUEUE_URL", "GROUP_REGEX"} {
		if !strings.Contains(rt.Logs(), v) {
			t.Errorf("init failure output does not name %s:\n%s", v, rt.Logs())
		}
	}
	assertNoSecrets(t, rt.Logs())
}
