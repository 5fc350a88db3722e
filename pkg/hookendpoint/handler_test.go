package hookendpoint

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/config"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/membership"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/telemetry"
)

// sampleToken is the auth_token_for_okta the events/ samples carry (see events/README.md).
const sampleToken = "sample-okta-hook-token"

type fakeSender struct {
	mu    sync.Mutex
	calls [][]membership.Change
	err   error
}

func (f *fakeSender) Send(_ context.Context, changes []membership.Change) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, append([]membership.Change(nil), changes...))
	return f.err
}

func (f *fakeSender) sent() []membership.Change {
	f.mu.Lock()
	defer f.mu.Unlock()
	var all []membership.Change
	for _, c := range f.calls {
		all = append(all, c...)
	}
	return all
}

type fakeSecrets struct {
	s   config.Secrets
	err error
}

func (f fakeSecrets) Get(context.Context) (config.Secrets, error) { return f.s, f.err }

// fixture is a handler with fakes and captured output.
type fixture struct {
	h       *Handler
	sender  *fakeSender
	logs    bytes.Buffer
	metrics bytes.Buffer
}

func newFixture(t testing.TB, mod func(*config.Hook, *fakeSecrets)) *fixture {
	t.Helper()
	cfg := config.Hook{
		Common: config.Common{
			Selection:        config.Selection{Prefix: "AWS_"},
			MetricsNamespace: "OktaAwsSsoSync",
		},
		AuthHeader:   "Authorization",
		MaxBodyBytes: config.DefaultMaxBodyBytes,
	}
	sec := fakeSecrets{s: config.Secrets{AuthTokenForOkta: sampleToken, AWSSSOSCIMKey: "scim-key-not-used-here"}}
	if mod != nil {
		mod(&cfg, &sec)
	}
	f := &fixture{sender: &fakeSender{}}
	f.h = New(cfg, sec, f.sender, telemetry.NewLogger(&f.logs, slog.LevelDebug), &f.metrics)
	return f
}

// invoke pushes payload through aws-lambda-go's real decode path.
func (f *fixture) invoke(t testing.TB, payload []byte) events.APIGatewayProxyResponse {
	t.Helper()
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "test-request-1"})
	out, err := lambda.NewHandler(f.h.Handle).Invoke(ctx, payload)
	if err != nil {
		t.Fatalf("Invoke returned an error (API Gateway would answer 502): %v", err)
	}
	var resp events.APIGatewayProxyResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("response is not an API Gateway proxy response: %v: %s", err, out)
	}
	return resp
}

func readSample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "events", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// want describes a change by its essentials, so the tests read like the README table.
type want struct {
	kind  membership.Kind
	group string
	login string
}

func essentials(cs []membership.Change) []want {
	out := make([]want, 0, len(cs))
	for _, c := range cs {
		out = append(out, want{c.Kind, c.GroupName, c.Login})
	}
	return out
}

func TestSamples(t *testing.T) {
	tests := []struct {
		file    string
		status  int
		body    string // exact body, or a JSON error mentioning it for 4xx/5xx
		changes []want
	}{
		{"hook-verification.json", 200, `{"verification":"Me_rShK8JHsTnbyYrWXCEoMGbM_zsZ6k0hLPZ_Pg"}`, nil},
		{"hook-verification-wrong-auth.json", 401, "wrong Authorization header", nil},
		{"hook-delivery-membership.json", 200, "", []want{
			{membership.KindAdd, "AWS_Engineers", "jane.doe@example.com"},
			{membership.KindAdd, "AWS_Engineers", "bob.smith@example.com"},
			{membership.KindRemove, "AWS_ReadOnly", "bob.smith@example.com"},
			{membership.KindRemove, "AWS_ReadOnly", "jane.doe@example.com"},
		}},
		{"hook-delivery-failure.json", 200, "", nil},
		{"hook-delivery-rename.json", 200, "", []want{{membership.KindRename, "AWS_Engineers", ""}}},
		{"hook-delivery-group-delete.json", 200, "", []want{{membership.KindGroupDelete, "AWS_ReadOnly", ""}}},
		{"hook-delivery-user-deactivate.json", 200, "", []want{{membership.KindUserDeactivate, "", "carol.white@example.com"}}},
		{"hook-delivery-base64.json", 200, "", []want{{membership.KindAdd, "AWS_ReadOnly", "carol.white@example.com"}}},
		{"hook-malformed.json", 400, "malformed JSON", nil},
		{"hook-wrong-shape.json", 400, "wrong shape", nil},
		{"hook-wrong-auth.json", 401, "wrong Authorization header", nil},
		{"hook-missing-auth.json", 401, "missing Authorization header", nil},
		{"hook-wrong-content-type.json", 415, "want application/json", nil},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			f := newFixture(t, nil)
			resp := f.invoke(t, readSample(t, tt.file))
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d (body %s)", resp.StatusCode, tt.status, resp.Body)
			}
			switch {
			case tt.status == 200 && tt.body == "":
				if resp.Body != "" {
					t.Errorf("body = %q, want empty", resp.Body)
				}
			case tt.status == 200:
				if resp.Body != tt.body || resp.Headers["Content-Type"] != "application/json" {
					t.Errorf("body = %s (%v), want %s", resp.Body, resp.Headers, tt.body)
				}
			default:
				assertJSONError(t, resp, tt.body)
			}
			got := essentials(f.sender.sent())
			if len(got) != len(tt.changes) || (len(got) > 0 && !equalWants(got, tt.changes)) {
				t.Errorf("sent %v, want %v", got, tt.changes)
			}
			if tt.changes == nil && len(f.sender.calls) != 0 {
				t.Errorf("sender called %d times for a request that yields nothing", len(f.sender.calls))
			}
			assertNoSecret(t, f)
		})
	}
}

func equalWants(a, b []want) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// The membership sample is the full story: ids, published times and the summary line.
func TestMembershipSampleDetails(t *testing.T) {
	f := newFixture(t, nil)
	f.invoke(t, readSample(t, "hook-delivery-membership.json"))
	sent := f.sender.sent()
	if len(f.sender.calls) != 1 || len(sent) != 4 {
		t.Fatalf("calls %d, changes %d; want one call with 4 changes", len(f.sender.calls), len(sent))
	}
	first := sent[0]
	if first.UserID != "00u8f3kq2rTzGm4Wd5d7" || first.GroupID != "00g8f2aa1bEngR4Hs5d7" ||
		first.Published.Format("2006-01-02T15:04:05.000Z07:00") != "2026-11-25T10:15:30.123Z" || first.EventUUID == "" {
		t.Errorf("first change = %+v", first)
	}
	seen := map[string]bool{}
	for _, c := range sent {
		if seen[c.EventUUID] {
			t.Errorf("event %s yielded two changes", c.EventUUID)
		}
		seen[c.EventUUID] = true
	}

	line := logLine(t, f.logs.String(), "hook request")
	for k, v := range map[string]any{"kind": "delivery", "status": 200.0, "events": 5.0, "enqueued": 4.0, "dropped": 1.0, "aws_request_id": "test-request-1"} {
		if line[k] != v {
			t.Errorf("summary %s = %v, want %v", k, line[k], v)
		}
	}
	if by, _ := line["dropped_by_reason"].(map[string]any); by["not_selected"] != 1.0 {
		t.Errorf("dropped_by_reason = %v", line["dropped_by_reason"])
	}
	if line["okta_request_id"] == nil || line["okta_event_id"] == nil {
		t.Errorf("summary lacks Okta ids: %v", line)
	}
	if !strings.Contains(f.logs.String(), `"msg":"event dropped"`) {
		t.Errorf("no debug line for the dropped event:\n%s", f.logs.String())
	}

	m := emf(t, f.metrics.String())
	for k, v := range map[string]float64{"EventsReceived": 5, "ChangesEnqueued": 4, "EventsDropped": 1} {
		if m[k] != v {
			t.Errorf("metric %s = %v, want %v", k, m[k], v)
		}
	}
	if _, ok := m["HookAuthFailures"]; ok {
		t.Errorf("auth failure counted on a good delivery: %v", m)
	}
}

// request builds an API Gateway proxy event as JSON for the decode path.
func request(method string, headers map[string]string, body string, b64 bool) []byte {
	b, err := json.Marshal(events.APIGatewayProxyRequest{
		Resource: "/okta/events", Path: "/okta/events", HTTPMethod: method,
		Headers: headers, Body: body, IsBase64Encoded: b64,
		RequestContext: events.APIGatewayProxyRequestContext{Stage: "prod", RequestID: "r1"},
	})
	if err != nil {
		panic(err)
	}
	return b
}

const addEvent = `{"uuid":"u1","published":"2026-11-25T10:15:30.123Z","eventType":"group.user_membership.add","outcome":{"result":"SUCCESS"},` +
	`"target":[{"id":"00u1","type":"User","alternateId":"a@example.com"},{"id":"00g1","type":"UserGroup","alternateId":"unknown","displayName":"AWS_A"}]}`

func delivery(events ...string) string {
	return `{"eventType":"com.okta.event_hook","eventTypeVersion":"1.0","eventId":"e1","data":{"events":[` + strings.Join(events, ",") + `]}}`
}

func postHeaders(extra map[string]string) map[string]string {
	h := map[string]string{"Content-Type": "application/json", "Authorization": sampleToken}
	for k, v := range extra {
		if v == "" {
			delete(h, k)
			continue
		}
		h[k] = v
	}
	return h
}

func TestRequests(t *testing.T) {
	valid := delivery(addEvent)
	valid3 := valid + strings.Repeat(" ", (3-len(valid)%3)%3)
	smallLimit := func(n int64) func(*config.Hook, *fakeSecrets) {
		return func(c *config.Hook, _ *fakeSecrets) { c.MaxBodyBytes = n }
	}
	tests := []struct {
		name    string
		mod     func(*config.Hook, *fakeSecrets)
		sendErr error
		payload []byte
		status  int
		body    string // substring of the JSON error, or exact body for 200
		sent    int
		metric  string // counter expected to be 1
	}{
		// methods
		{name: "PUT", payload: request("PUT", postHeaders(nil), valid, false), status: 405, body: "method PUT not allowed", metric: "HookRejected"},
		{name: "DELETE", payload: request("DELETE", postHeaders(nil), "", false), status: 405, body: "not allowed", metric: "HookRejected"},
		{name: "HEAD", payload: request("HEAD", postHeaders(nil), "", false), status: 405, body: "not allowed", metric: "HookRejected"},
		{name: "no method", payload: request("", postHeaders(nil), valid, false), status: 405, body: "not allowed", metric: "HookRejected"},
		{name: "lower-case post", payload: request("post", postHeaders(nil), valid, false), status: 200, sent: 1},

		// verification
		{name: "challenge, lower-case header", payload: request("GET", map[string]string{"authorization": sampleToken, "x-okta-verification-challenge": `c"1`}, "", false), status: 200, body: `{"verification":"c\"1"}`},
		{name: "challenge without auth", payload: request("GET", map[string]string{"X-Okta-Verification-Challenge": "c1"}, "", false), status: 401, body: "missing Authorization", metric: "HookAuthFailures"},
		{name: "GET without challenge", payload: request("GET", map[string]string{"Authorization": sampleToken}, "", false), status: 400, body: "X-Okta-Verification-Challenge", metric: "HookRejected"},
		{name: "GET with empty challenge", payload: request("GET", map[string]string{"Authorization": sampleToken, "X-Okta-Verification-Challenge": ""}, "", false), status: 400, body: "X-Okta-Verification-Challenge", metric: "HookRejected"},

		// auth
		{name: "missing auth", payload: request("POST", postHeaders(map[string]string{"Authorization": ""}), valid, false), status: 401, body: "missing Authorization", metric: "HookAuthFailures"},
		{name: "wrong auth", payload: request("POST", postHeaders(map[string]string{"Authorization": "nope"}), valid, false), status: 401, body: "wrong Authorization", metric: "HookAuthFailures"},
		{name: "empty auth value", payload: request("POST", postHeaders(map[string]string{"Authorization": " "}), valid, false), status: 401, body: "wrong Authorization", metric: "HookAuthFailures"},
		{name: "token with Bearer scheme", payload: request("POST", postHeaders(map[string]string{"Authorization": "Bearer " + sampleToken}), valid, false), status: 401, body: "wrong", metric: "HookAuthFailures"},
		{name: "auth header in any case", payload: request("POST", map[string]string{"content-type": "application/json", "AUTHORIZATION": sampleToken}, valid, false), status: 200, sent: 1},
		{
			name:    "custom AUTH_HEADER",
			mod:     func(c *config.Hook, _ *fakeSecrets) { c.AuthHeader = "X-Okta-Hook-Secret" },
			payload: request("POST", map[string]string{"Content-Type": "application/json", "x-okta-hook-secret": sampleToken}, valid, false), status: 200, sent: 1,
		},
		{
			name:    "custom AUTH_HEADER ignores Authorization",
			mod:     func(c *config.Hook, _ *fakeSecrets) { c.AuthHeader = "X-Okta-Hook-Secret" },
			payload: request("POST", postHeaders(nil), valid, false), status: 401, body: "missing X-Okta-Hook-Secret", metric: "HookAuthFailures",
		},
		{
			name: "secret unreadable",
			mod: func(_ *config.Hook, s *fakeSecrets) {
				s.err = errors.New("read secret okta-sync: AccessDeniedException")
			},
			payload: request("POST", postHeaders(nil), valid, false), status: 500, body: "read secret",
		},
		{
			name:    "secret without auth token never matches",
			mod:     func(_ *config.Hook, s *fakeSecrets) { s.s.AuthTokenForOkta = "" },
			payload: request("POST", postHeaders(map[string]string{"Authorization": " "}), valid, false), status: 500, body: "secret unusable",
		},

		// content type
		{name: "no content type", payload: request("POST", postHeaders(map[string]string{"Content-Type": ""}), valid, false), status: 415, body: "want application/json", metric: "HookRejected"},
		{name: "text/plain", payload: request("POST", postHeaders(map[string]string{"Content-Type": "text/plain"}), valid, false), status: 415, body: "text/plain", metric: "HookRejected"},
		{name: "latin-1 charset", payload: request("POST", postHeaders(map[string]string{"Content-Type": "application/json; charset=ISO-8859-1"}), valid, false), status: 415, body: "want application/json", metric: "HookRejected"},
		{name: "utf-8 charset, odd case", payload: request("POST", postHeaders(map[string]string{"Content-Type": "Application/JSON; Charset=utf-8"}), valid, false), status: 200, sent: 1},

		// size
		{name: "body at the limit", mod: smallLimit(int64(len(valid))), payload: request("POST", postHeaders(nil), valid, false), status: 200, sent: 1},
		{name: "body one byte over", mod: smallLimit(int64(len(valid) - 1)), payload: request("POST", postHeaders(nil), valid, false), status: 413, body: "MAX_BODY_BYTES", metric: "HookRejected"},
		{name: "base64 body whose decoded size fits", mod: smallLimit(int64(len(valid))), payload: request("POST", postHeaders(nil), base64.StdEncoding.EncodeToString([]byte(valid)), true), status: 200, sent: 1},
		// len(valid3) is a multiple of 3, so its base64 form is exactly as long as the encoded
		// limit and only the check on the decoded length can refuse it.
		{name: "base64 body decoding one byte over", mod: smallLimit(int64(len(valid3) - 1)), payload: request("POST", postHeaders(nil), base64.StdEncoding.EncodeToString([]byte(valid3)), true), status: 413, body: "MAX_BODY_BYTES", metric: "HookRejected"},
		{name: "base64 body decoding to the limit", mod: smallLimit(int64(len(valid3))), payload: request("POST", postHeaders(nil), base64.StdEncoding.EncodeToString([]byte(valid3)), true), status: 200, sent: 1},
		{name: "base64 body far over the limit", mod: smallLimit(10), payload: request("POST", postHeaders(nil), base64.StdEncoding.EncodeToString([]byte(valid)), true), status: 413, body: "MAX_BODY_BYTES", metric: "HookRejected"},
		{name: "invalid base64", payload: request("POST", postHeaders(nil), "eyJldmVudFR5cGUi***", true), status: 400, body: "base64", metric: "HookRejected"},
		{name: "base64 flag on a plain body", payload: request("POST", postHeaders(nil), valid, true), status: 400, body: "base64", metric: "HookRejected"},

		// body
		{name: "empty body", payload: request("POST", postHeaders(nil), "", false), status: 400, body: "malformed JSON: empty body", metric: "HookRejected"},
		{name: "truncated JSON", payload: request("POST", postHeaders(nil), valid[:40], false), status: 400, body: "malformed JSON", metric: "HookRejected"},
		{name: "invalid UTF-8", payload: request("POST", postHeaders(nil), base64.StdEncoding.EncodeToString([]byte("{\"eventType\":\"com.okta.event_hook\",\"x\":\"\xc3\x28\",\"data\":{\"events\":[]}}")), true), status: 400, body: "UTF-8", metric: "HookRejected"},
		{name: "wrong envelope eventType", payload: request("POST", postHeaders(nil), strings.Replace(valid, "com.okta.event_hook", "com.okta.import.transform", 1), false), status: 400, body: "wrong shape: eventType", metric: "HookRejected"},
		{name: "no data.events", payload: request("POST", postHeaders(nil), `{"eventType":"com.okta.event_hook","data":{}}`, false), status: 400, body: "data.events missing", metric: "HookRejected"},
		{name: "events not an array", payload: request("POST", postHeaders(nil), `{"eventType":"com.okta.event_hook","data":{"events":{}}}`, false), status: 400, body: "wrong shape", metric: "HookRejected"},
		{name: "event without uuid", payload: request("POST", postHeaders(nil), delivery(addEvent, strings.Replace(addEvent, `"uuid":"u1",`, "", 1)), false), status: 400, body: "data.events[1]: uuid missing", metric: "HookRejected"},
		{name: "event without published", payload: request("POST", postHeaders(nil), delivery(strings.Replace(addEvent, `"published":"2026-11-25T10:15:30.123Z",`, "", 1)), false), status: 400, body: "published missing", metric: "HookRejected"},

		// deliveries
		{name: "empty events array", payload: request("POST", postHeaders(nil), delivery(), false), status: 200},
		{name: "only dropped events: sender not called", payload: request("POST", postHeaders(nil), delivery(strings.Replace(addEvent, "AWS_A", "Sales", 1)), false), status: 200},
		{name: "enqueue failure", sendErr: errors.New("send to queue: 1 of 1 entries failed"), payload: request("POST", postHeaders(nil), valid, false), status: 500, body: "enqueue failed", sent: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.mod)
			f.sender.err = tt.sendErr
			resp := f.invoke(t, tt.payload)
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d (body %s)", resp.StatusCode, tt.status, resp.Body)
			}
			switch {
			case tt.status == 200 && tt.body != "":
				if resp.Body != tt.body {
					t.Errorf("body = %s, want %s", resp.Body, tt.body)
				}
			case tt.status == 200:
				if resp.Body != "" {
					t.Errorf("body = %q, want empty", resp.Body)
				}
			default:
				assertJSONError(t, resp, tt.body)
			}
			if tt.status == 405 && resp.Headers["Allow"] != "GET, POST" {
				t.Errorf("405 without Allow header: %v", resp.Headers)
			}
			if n := len(f.sender.sent()); n != tt.sent {
				t.Errorf("sent %d changes, want %d", n, tt.sent)
			}
			if tt.status != 200 && tt.status != 500 && len(f.sender.calls) != 0 {
				t.Errorf("sender called on a rejected request")
			}
			if tt.metric != "" {
				if m := emf(t, f.metrics.String()); m[tt.metric] != 1 {
					t.Errorf("metric %s = %v, want 1 (metrics %s)", tt.metric, m[tt.metric], f.metrics.String())
				}
			}
			line := logLine(t, f.logs.String(), "hook request")
			if line["status"] != float64(tt.status) {
				t.Errorf("summary status = %v", line["status"])
			}
			if tt.status == 500 && line["error"] == nil {
				t.Errorf("500 without the cause in the log: %v", line)
			}
			assertNoSecret(t, f)
		})
	}
}

// The summary and every other line are written once per request, never with header values.
func TestOneSummaryLinePerRequest(t *testing.T) {
	f := newFixture(t, nil)
	for _, name := range []string{"hook-verification.json", "hook-wrong-auth.json", "hook-delivery-membership.json"} {
		f.invoke(t, readSample(t, name))
	}
	if n := strings.Count(f.logs.String(), `"msg":"hook request"`); n != 3 {
		t.Errorf("%d summary lines for 3 requests:\n%s", n, f.logs.String())
	}
	if n := strings.Count(f.metrics.String(), "\n"); n != 2 {
		// The verification has no metric; the rejection and the delivery one line each.
		t.Errorf("%d EMF lines, want 2:\n%s", n, f.metrics.String())
	}
}

func assertJSONError(t *testing.T, resp events.APIGatewayProxyResponse, mention string) {
	t.Helper()
	var e struct{ Error string }
	if err := json.Unmarshal([]byte(resp.Body), &e); err != nil || e.Error == "" {
		t.Fatalf("error body %q is not {\"error\":…}", resp.Body)
	}
	if !strings.Contains(e.Error, mention) {
		t.Errorf("error %q does not mention %q", e.Error, mention)
	}
	if resp.Headers["Content-Type"] != "application/json" {
		t.Errorf("Content-Type = %q", resp.Headers["Content-Type"])
	}
	if len(resp.Body) > 300 {
		t.Errorf("error body is %d bytes; keep it short", len(resp.Body))
	}
}

// assertNoSecret checks that neither the configured token nor a presented wrong one leaks.
func assertNoSecret(t *testing.T, f *fixture) {
	t.Helper()
	for _, s := range []string{sampleToken, "not-the-token", "scim-key-not-used-here"} {
		if strings.Contains(f.logs.String(), s) || strings.Contains(f.metrics.String(), s) {
			t.Errorf("%q appears in logs or metrics", s)
		}
	}
}

func logLine(t *testing.T, logs, msg string) map[string]any {
	t.Helper()
	for _, l := range strings.Split(strings.TrimSpace(logs), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line not JSON: %s", l)
		}
		if m["msg"] == msg {
			return m
		}
	}
	t.Fatalf("no %q line in:\n%s", msg, logs)
	return nil
}

var emfNS = regexp.MustCompile(`"Namespace":"OktaAwsSsoSync"`)

// emf decodes the single EMF line of one request into metric values.
func emf(t *testing.T, out string) map[string]float64 {
	t.Helper()
	out = strings.TrimSpace(out)
	if out == "" || strings.Contains(out, "\n") {
		t.Fatalf("want one EMF line, got %q", out)
	}
	if !emfNS.MatchString(out) {
		t.Errorf("EMF line without namespace: %s", out)
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatal(err)
	}
	m := map[string]float64{}
	for k, v := range raw {
		if f, ok := v.(float64); ok {
			m[k] = f
		}
	}
	return m
}
