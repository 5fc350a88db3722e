package scim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim/scimtest"
)

func TestNewAPIError(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	mk := func(status int, hdr map[string]string, body string) *APIError {
		resp := &http.Response{StatusCode: status, Header: http.Header{}}
		for k, v := range hdr {
			resp.Header.Set(k, v)
		}
		return newAPIError(resp, []byte(body), "tok-123", now)
	}
	aws := `{"schema":["urn:ietf:params:scim:api:messages:2.0:Error"],"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"detail":"Request is unparsable, syntactically incorrect, or violates schema.","status":"400","exceptionRequestId":"977d19cb","timeStamp":"2023-01-03 11:50:22.856"}`
	for _, tc := range []struct {
		name string
		got  *APIError
		want APIError
	}{
		{"aws body, id from body", mk(400, nil, aws), APIError{Status: 400, Detail: "Request is unparsable, syntactically incorrect, or violates schema.", RequestID: "977d19cb"}},
		{"header id wins", mk(400, map[string]string{"x-amzn-RequestId": "hdr-1"}, aws), APIError{Status: 400, Detail: "Request is unparsable, syntactically incorrect, or violates schema.", RequestID: "hdr-1"}},
		{"numeric status", mk(404, nil, `{"detail":"gone","status":404}`), APIError{Status: 404, Detail: "gone"}},
		{"not json", mk(502, nil, "<html>bad gateway</html>"), APIError{Status: 502, Detail: "<html>bad gateway</html>"}},
		{"empty", mk(503, nil, ""), APIError{Status: 503, Detail: "Service Unavailable"}},
		{"retry-after seconds", mk(429, map[string]string{"Retry-After": "7"}, `{"detail":"Rate exceeded","status":"429"}`), APIError{Status: 429, Detail: "Rate exceeded", RetryAfter: 7 * time.Second}},
		{"retry-after date", mk(429, map[string]string{"Retry-After": now.Add(90 * time.Second).Format(http.TimeFormat)}, ""), APIError{Status: 429, Detail: "Too Many Requests", RetryAfter: 90 * time.Second}},
		{"token in detail", mk(400, nil, `{"detail":"bad header Bearer tok-123","status":"400"}`), APIError{Status: 400, Detail: "bad header Bearer [redacted]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if *tc.got != tc.want {
				t.Errorf("got %+v\nwant %+v", *tc.got, tc.want)
			}
		})
	}
	e := mk(404, map[string]string{"x-amzn-RequestId": "r1"}, `{"detail":"User x not found.","status":"404"}`)
	if !errors.Is(e, ErrNotFound) || errors.Is(e, ErrConflict) || !errors.Is(mk(409, nil, ""), ErrConflict) || !errors.Is(mk(401, nil, ""), ErrUnauthorized) {
		t.Error("Is mapping")
	}
	if got := e.Error(); got != "scim: HTTP 404: User x not found. (request id r1)" {
		t.Errorf("Error() = %q", got)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"0": 0, "1": time.Second, " 120 ": 2 * time.Minute, "99999999999": 24 * time.Hour,
		now.Add(-time.Minute).Format(http.TimeFormat):    0,
		now.Add(3 * time.Second).Format(http.TimeFormat): 3 * time.Second,
	} {
		if got, ok := parseRetryAfter(in, now); !ok || got != want {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "-1", "soon", "1.5"} {
		if _, ok := parseRetryAfter(in, now); ok {
			t.Errorf("parseRetryAfter(%q) accepted", in)
		}
	}
}

// schedule with an injected clock: an HTTP-date Retry-After is measured from the client's
// clock, is a floor for the backoff, and a wait past the deadline gives up.
func TestScheduleUsesClock(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	c, err := New("https://x/t/scim/v2", (&tokens{}).get, WithBackoff(10*time.Millisecond, 10*time.Second), withClock(func() time.Time { return now }), WithRandSeed(5))
	if err != nil {
		t.Fatal(err)
	}
	resp := &http.Response{StatusCode: 429, Header: http.Header{"Retry-After": {now.Add(4 * time.Second).Format(http.TimeFormat)}}}
	a := &attempt{c: c, op: OpGetUser}
	if retry, err := a.schedule(context.Background(), resp); !retry || err != nil || a.wait != 4*time.Second {
		t.Errorf("retry %v err %v wait %v, want 4s", retry, err, a.wait)
	}
	// The same wait against a deadline 3s after the client's now: give up.
	ctx, cancel := context.WithDeadline(context.Background(), now.Add(3*time.Second))
	defer cancel()
	a = &attempt{c: c, op: OpGetUser}
	if retry, _ := a.schedule(ctx, resp); retry {
		t.Error("scheduled a retry past the deadline")
	}
	// Without Retry-After: exponential with jitter within [min, min·2ⁿ], capped.
	for n := range 15 {
		hi := min(10*time.Millisecond<<n, 10*time.Second)
		if d := c.backoff(n); d < 10*time.Millisecond || d > hi {
			t.Errorf("backoff(%d) = %v outside [10ms, %v]", n, d, hi)
		}
	}
}

// The bearer token must not appear in any error or log line, whatever fails.
func TestTokenNeverLeaks(t *testing.T) {
	const secret = "SCIM-SECRET-7f3c9a1e5b"
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	// A hostile server that echoes the Authorization header into its error details.
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "0")
		status := 400
		if strings.Contains(r.URL.RawQuery, "throttle") {
			status = 429
		}
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"detail":"bad auth %s","status":"%d"}`, r.Header.Get("Authorization"), status)
	}))
	defer echo.Close()

	f := newFixture(t, scimtest.Options{Token: secret, Faults: scimtest.Faults{RetryAfter: "0"}}, WithLogger(logger), WithMaxRetries(2))
	ctx := context.Background()
	var errs []error
	collect := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	f.srv.FailNext(5, 429)
	_, err := f.c.GetUser(ctx, "x")
	collect(err)
	f.srv.FailNext(5, 500)
	_, err = f.c.AddMembers(ctx, "g", []string{"u"})
	collect(err)
	_, err = f.c.GetUser(ctx, "missing")
	collect(err)
	f.srv.ExpireToken(true)
	_, err = f.c.FindUserByUserName(ctx, "a")
	collect(err)

	hostile, _ := New(echo.URL+"/t/scim/v2", func(context.Context, bool) (string, error) { return secret, nil }, fastRetry, WithLogger(logger), WithMaxRetries(1))
	_, err = hostile.GetUser(ctx, "x")
	collect(err)
	_, err = hostile.FindUserByUserName(ctx, "throttle")
	collect(err)
	dead, _ := New("http://127.0.0.1:1/t/scim/v2", func(context.Context, bool) (string, error) { return secret, nil }, fastRetry, WithLogger(logger), WithMaxRetries(1))
	_, err = dead.GetUser(ctx, "x")
	collect(err)

	if len(errs) != 7 {
		t.Fatalf("%d errors, want 7: %v", len(errs), errs)
	}
	for _, err := range errs {
		if strings.Contains(err.Error(), secret) || strings.Contains(fmt.Sprintf("%+v", err), secret) {
			t.Errorf("token in error: %v", err)
		}
	}
	if logs.Len() == 0 {
		t.Fatal("nothing logged; the test would prove nothing")
	}
	if strings.Contains(logs.String(), secret) {
		t.Errorf("token in logs:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "Authorization") {
		t.Error("a header name leaked into logs")
	}
}

// Error bodies AWS has been seen to send keep their typed errors, and the message carries AWS's
// detail and request id, which is what an operator quotes to AWS support.
func TestAWSErrorBodiesSeen(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		status int
		body   string // as quoted in the source
		is     error
		want   string // Error()
	}{
		// github.com/slashdevops/idp-scim-sync/issues/57 (POST /Users; the same text on POST /Groups
		// in that project's testdata/CreateGroupResponse_Conflict.json).
		{"409 duplicate", 409, `{"schema":["urn:ietf:params:scim:api:messages:2.0:Error"],"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"detail":"Refused to create a new, duplicate resource.","status":"409","exceptionRequestId":"1f0de3fa-8bce-49ed-ae22-8604172fcb80","timeStamp":"2022-03-22 01:39:54.152"}`,
			ErrConflict, "scim: HTTP 409: Refused to create a new, duplicate resource. (request id 1f0de3fa-8bce-49ed-ae22-8604172fcb80)"},
		// idp-scim-sync issue 42: a wrong tenant id, with only the misspelt "schema" key.
		{"404 wrong tenant", 404, `{"schema":["urn:ietf:params:scim:api:messages:2.0:Error"],"detail":"TENANT does not exist.","status":"404","exceptionRequestId":"93529112-dfce-4fef-82ed-ddd588a90e6b","timeStamp":"2022-02-11 06:10:54.937"}`,
			ErrNotFound, "scim: HTTP 404: TENANT does not exist. (request id 93529112-dfce-4fef-82ed-ddd588a90e6b)"},
		// github.com/goauthentik/authentik/issues/12321: escaped quotes in the detail.
		{"400 path-less", 400, `{"schema":["urn:ietf:params:scim:api:messages:2.0:Error"],"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"detail":"Current PATCH support allows omitting \"path\" attribute only for Add and Replace operations modifying a single attribute.","status":"400","exceptionRequestId":"r-400","timeStamp":"2024-12-10 19:50:00.531"}`,
			nil, `scim: HTTP 400: Current PATCH support allows omitting "path" attribute only for Add and Replace operations modifying a single attribute. (request id r-400)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newAPIError(&http.Response{StatusCode: tc.status, Header: http.Header{}}, []byte(tc.body), "tok", now)
			if got := e.Error(); got != tc.want {
				t.Errorf("Error() = %q\nwant      %q", got, tc.want)
			}
			for _, s := range []error{ErrConflict, ErrNotFound, ErrUnauthorized} {
				if errors.Is(e, s) != (s == tc.is) {
					t.Errorf("errors.Is(%v) = %v", s, errors.Is(e, s))
				}
			}
		})
	}
}

// The emulator answers with those texts; through the client they arrive typed and readable.
func TestEmulatorErrorTextsThroughClient(t *testing.T) {
	f := newFixture(t, scimtest.Options{})
	ctx := context.Background()
	f.srv.AddGroup("AWS_Dev", "00gDEV")
	_, err := f.c.CreateGroup(ctx, Group{DisplayName: "AWS_Dev", ExternalID: "00gDEV"}, nil)
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), `create group "AWS_Dev": scim: HTTP 409: Refused to create a new, duplicate resource. (request id `) {
		t.Errorf("duplicate group: %v", err)
	}
	var ae *APIError
	if !errors.As(err, &ae) || ae.RequestID == "" {
		t.Errorf("no request id: %#v", err)
	}
	gid, _ := f.srv.GroupID("AWS_Dev")
	ids := make([]string, 0, MaxMembersPerRequest+1)
	for i := range MaxMembersPerRequest + 1 {
		ids = append(ids, fmt.Sprintf("u%d", i))
	}
	// The client never sends more than 100 values; a raw PATCH shows AWS's answer to one that does.
	body := patchBody{Schemas: []string{schemaPatch}, Operations: []patchOperation{{Op: "add", Path: "members", Value: refs(ids)}}}
	_, err = f.c.do(ctx, call{op: OpAddMembers, method: http.MethodPatch, path: groupPath(gid), body: body})
	if !errors.As(err, &ae) || ae.Status != 400 || ae.Detail != "Request is unparsable, syntactically incorrect, or violates schema." {
		t.Errorf("101 values: %v", err)
	}
}
