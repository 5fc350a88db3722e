package hookendpoint

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/config"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/membership"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/queue"
)

// fuzzMaxBody is the MAX_BODY_BYTES of the fuzzed handler: small, so that the size checks are
// reached by inputs the fuzzer can afford to mutate.
const fuzzMaxBody = 16 << 10

// encodingSender records changes after encoding them the way queue.Sender does, failing the
// whole call on the first change the queue would refuse (as the real sender does).
type encodingSender struct {
	mu    sync.Mutex
	calls int
	sent  []membership.Change
}

func (s *encodingSender) Send(_ context.Context, changes []membership.Change) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	for _, c := range changes {
		if _, err := queue.Encode(c); err != nil {
			return fmt.Errorf("change %s not encodable: %w", c.EventUUID, err)
		}
	}
	s.sent = append(s.sent, changes...)
	return nil
}

// fuzzHeaders turns the fuzzer's header text into API Gateway's two header maps: a line
// "Name: value" sets headers[Name] (the last one wins, as in API Gateway), a line "+Name: value"
// appends to multiValueHeaders[Name]. Values keep their '\r' and other bytes.
func fuzzHeaders(text string) (map[string]string, map[string][]string) {
	single := map[string]string{}
	var multi map[string][]string
	for _, line := range strings.Split(text, "\n") {
		name, value, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		if rest, isMulti := strings.CutPrefix(name, "+"); isMulti {
			if multi == nil {
				multi = map[string][]string{}
			}
			multi[rest] = append(multi[rest], value)
			continue
		}
		single[name] = value
	}
	return single, multi
}

// headerText is the inverse of fuzzHeaders for the samples (sorted, so seeds are stable).
func headerText(single map[string]string, multi map[string][]string) string {
	var lines []string
	for k, v := range single {
		lines = append(lines, k+": "+v)
	}
	for k, vs := range multi {
		for _, v := range vs {
			lines = append(lines, "+"+k+": "+v)
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// Body modes of FuzzHandler.
const (
	bodyPlain      = 0 // body as it is, isBase64Encoded false
	bodyBase64     = 1 // base64 of body, isBase64Encoded true (as API Gateway sends binary media)
	bodyRawFlagged = 2 // body as it is, but isBase64Encoded true
)

// authValues returns every value presented under the auth header name, in any spelling.
func authValues(single map[string]string, multi map[string][]string, name string) []string {
	var out []string
	for k, v := range single {
		if strings.EqualFold(k, name) {
			out = append(out, v)
		}
	}
	for k, vs := range multi {
		if strings.EqualFold(k, name) {
			out = append(out, vs...)
		}
	}
	return out
}

// documented are the statuses the hook documents (README, events/README.md). 500 is
// documented too, but only for secret and queue failures, which these fakes never produce.
var documented = map[int]bool{200: true, 204: true, 400: true, 401: true, 405: true, 413: true, 415: true}

// FuzzHandler pushes arbitrary methods, headers and bodies through aws-lambda-go's decode path
// into the real handler: it never fails the invocation, answers only documented statuses,
// enqueues only on a 200/204 POST carrying the token, and never enqueues when every presented
// auth value is wrong.
func FuzzHandler(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("..", "..", "events", "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no samples in events/: %v", err)
	}
	slices.Sort(files)
	for _, name := range files {
		raw, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		var req events.APIGatewayProxyRequest
		if err := json.Unmarshal(raw, &req); err != nil {
			f.Fatalf("%s: %v", name, err)
		}
		hdr := headerText(req.Headers, req.MultiValueHeaders)
		if req.IsBase64Encoded {
			body, err := base64.StdEncoding.DecodeString(req.Body)
			if err != nil {
				f.Fatalf("%s: %v", name, err)
			}
			f.Add(req.HTTPMethod, hdr, body, uint8(bodyBase64))
			continue
		}
		body := []byte(req.Body)
		if len(body) > fuzzMaxBody {
			body = body[:fuzzMaxBody+1] // a large sample: just over this handler's limit
		}
		f.Add(req.HTTPMethod, hdr, body, uint8(bodyPlain))
	}
	ok := "Content-Type: application/json\nAuthorization: " + sampleToken
	valid := []byte(delivery(addEvent))
	for _, s := range []struct {
		method, headers, body string
		mode                  uint8
	}{
		{"POST", ok + "\nX-Okta-Verification-Challenge: forged", string(valid), bodyPlain},
		{"POST", ok + "\nX-Okta-Verification-Challenge: forged", "", bodyPlain},
		{"GET", "authorization: " + sampleToken + "\nx-okta-verification-challenge: c\r\nSet-Cookie: x=1", "", bodyPlain},
		{"POST", "Content-Type: application/json\n+Authorization: " + sampleToken, string(valid), bodyPlain},
		{"POST", "Content-Type: application/json\nAuthorization: nope\n+Authorization: " + sampleToken, string(valid), bodyPlain},
		{"POST", "Content-Type: application/json\nAuthorization: " + sampleToken + " ", string(valid), bodyPlain},
		{"POST", "Content-Type: application/json\nAuthorization: " + sampleToken[:5], string(valid), bodyPlain},
		{"POST", "Content-Type: application/json\nAuthorization: " + sampleToken + "\r\nX-Injected: 1", string(valid), bodyPlain},
		{"POST", "Content-Type: text/plain\nAuthorization: " + sampleToken, string(valid), bodyPlain},
		{"POST", "Content-Type: application/json; charset=utf-16\nAuthorization: " + sampleToken, string(valid), bodyPlain},
		{"POST", ok, string(valid), bodyBase64},
		{"POST", ok, string(valid), bodyRawFlagged},
		{"POST", ok, "{\"eventType\":\"com.okta.event_hook\",\"data\":{\"events\":[{\"uuid\":\"\xff\"}]}}", bodyBase64},
		{"POST", ok, `{"eventType":"com.okta.event_hook","data":{"events":[` + strings.Repeat(`{},`, 100) + `{}]}}`, bodyPlain},
		{"POST", ok, `{"eventType":"com.okta.event_hook","x":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `,"data":{"events":[]}}`, bodyPlain},
		{"POST", ok, strings.Replace(string(valid), "2026-11-25T10:15:30.123Z", "0000-01-01T00:00:00+01:00", 1), bodyPlain},
		{"PUT", ok, string(valid), bodyPlain},
		{"post", ok, string(valid), bodyPlain},
		{"GET", ok, "", bodyPlain},
	} {
		f.Add(s.method, s.headers, []byte(s.body), s.mode)
	}

	f.Fuzz(func(t *testing.T, method, headers string, body []byte, mode uint8) {
		single, multi := fuzzHeaders(headers)
		req := events.APIGatewayProxyRequest{
			Resource: "/okta/events", Path: "/okta/events", HTTPMethod: method,
			Headers: single, MultiValueHeaders: multi,
			RequestContext: events.APIGatewayProxyRequestContext{Stage: "prod", RequestID: "fuzz"},
		}
		switch mode % 3 {
		case bodyPlain:
			req.Body = string(body)
		case bodyBase64:
			req.Body, req.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
		case bodyRawFlagged:
			req.Body, req.IsBase64Encoded = string(body), true
		}
		payload, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}

		fx := newFixture(t, func(c *config.Hook, _ *fakeSecrets) { c.MaxBodyBytes = fuzzMaxBody })
		snd := &encodingSender{}
		fx.h.sender = snd
		out, err := lambda.NewHandler(fx.h.Handle).Invoke(context.Background(), payload)
		if err != nil {
			t.Fatalf("Invoke failed (API Gateway would answer 502): %v", err)
		}
		var resp events.APIGatewayProxyResponse
		if err := json.Unmarshal(out, &resp); err != nil {
			t.Fatalf("not a proxy response: %v: %s", err, out)
		}

		if !documented[resp.StatusCode] {
			t.Fatalf("status %d (body %s)", resp.StatusCode, resp.Body)
		}
		presented := authValues(single, multi, "Authorization")
		authOK := slices.Contains(presented, sampleToken)
		isPost := strings.EqualFold(method, "POST")
		if len(snd.sent) > 0 || snd.calls > 0 {
			if resp.StatusCode != 200 && resp.StatusCode != 204 {
				t.Fatalf("sender called, yet status %d", resp.StatusCode)
			}
			if !isPost || !authOK {
				t.Fatalf("sender called for method %q with auth %q", method, presented)
			}
		}
		if !authOK {
			if resp.StatusCode != 401 && resp.StatusCode != 405 {
				t.Fatalf("every auth value wrong (%q), yet status %d", presented, resp.StatusCode)
			}
		}
		for _, c := range snd.sent {
			if err := membership.Validate(c); err != nil {
				t.Fatalf("enqueued invalid change: %v", err)
			}
		}

		switch {
		case resp.StatusCode == 200 && !isPost:
			var v map[string]string
			if err := json.Unmarshal([]byte(resp.Body), &v); err != nil || len(v) != 1 || v["verification"] == "" {
				t.Fatalf("verification answer %q", resp.Body)
			}
		case resp.StatusCode == 200 || resp.StatusCode == 204:
			if resp.Body != "" {
				t.Fatalf("delivery answered with body %q", resp.Body)
			}
		default:
			var e struct{ Error string }
			if err := json.Unmarshal([]byte(resp.Body), &e); err != nil || e.Error == "" || len(resp.Body) > 300 {
				t.Fatalf("error body %q", resp.Body)
			}
		}

		if n := strings.Count(fx.logs.String(), `"msg":"hook request"`); n != 1 {
			t.Fatalf("%d summary lines", n)
		}
		// The token may be echoed only if the caller put it somewhere other than the auth header
		// (a challenge, the body): then it is the caller's data, not our secret leaking.
		if !strings.Contains(method+string(body)+headersWithout(single, multi, "Authorization"), sampleToken) {
			for what, s := range map[string]string{"logs": fx.logs.String(), "metrics": fx.metrics.String(), "response": string(out)} {
				if strings.Contains(s, sampleToken) {
					t.Fatalf("token in %s", what)
				}
			}
		}
	})
}

// headersWithout concatenates every header name and value except those of the named header.
func headersWithout(single map[string]string, multi map[string][]string, name string) string {
	var b strings.Builder
	for k, v := range single {
		if !strings.EqualFold(k, name) {
			b.WriteString(k + v)
		}
	}
	for k, vs := range multi {
		if !strings.EqualFold(k, name) {
			b.WriteString(k + strings.Join(vs, ""))
		}
	}
	return b.String()
}
