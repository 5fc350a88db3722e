package eventhooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/okta/oktatest"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/oktahook"
)

const (
	testOktaToken = "okta-ssws-unit-Qm7Tz4"
	testAuthValue = "hook-secret-unit-Vb9Kw2"
	testAPIKey    = "api-key-unit-Hn3Ls8"
)

// hookEndpoint answers Okta's verification GET like pkg/hookendpoint: 401 without the auth header
// value or the API key (API Gateway's check), else the echoed challenge.
type hookEndpoint struct {
	mu         sync.Mutex
	authHeader string
	auth       string
	apiKey     string
	gets       int
}

func (e *hookEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	e.gets++
	auth, key, hdr := e.auth, e.apiKey, e.authHeader
	e.mu.Unlock()
	if key != "" && r.Header.Get("x-api-key") != key {
		http.Error(w, `{"message":"Forbidden"}`, http.StatusForbidden)
		return
	}
	if !oktahook.Authorized(r.Header.Get(hdr), auth) {
		http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(oktahook.VerificationBody(r.Header.Get(oktahook.ChallengeHeader)))
}

type fixture struct {
	okta   *oktatest.Server
	hook   *hookEndpoint
	url    string
	client *Client
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{okta: oktatest.New(oktatest.Options{Token: testOktaToken})}
	f.hook = &hookEndpoint{authHeader: "Authorization", auth: testAuthValue, apiKey: testAPIKey}
	hs := httptest.NewServer(f.hook)
	t.Cleanup(hs.Close)
	f.url = hs.URL + "/prod/okta/events"
	os := httptest.NewServer(f.okta.Handler())
	t.Cleanup(os.Close)
	c, err := NewClient(os.URL, testOktaToken, nil, testAuthValue, testAPIKey)
	if err != nil {
		t.Fatal(err)
	}
	f.client = c
	return f
}

func (f *fixture) desired() Desired {
	return Desired{
		Name: "okta-aws-sso-sync", URL: f.url, AuthHeader: "Authorization", AuthValue: testAuthValue,
		Headers:    []Header{{Key: "x-api-key", Value: testAPIKey}},
		EventTypes: oktahook.HandledEventTypes(),
	}
}

// writes counts requests that are not GETs since the last ResetStats.
func (f *fixture) writes() []string {
	var out []string
	for _, r := range f.okta.RequestLog() {
		if r.Method != http.MethodGet {
			out = append(out, r.Method+" "+r.Path)
		}
	}
	return out
}

func collect(lines *[]string) func(string) { return func(s string) { *lines = append(*lines, s) } }

func TestApplyCreatesVerifiedActiveHookWithExactlyTheHandledTypes(t *testing.T) {
	f := newFixture(t)
	var log []string
	res, err := Apply(context.Background(), f.client, f.desired(), Options{Log: collect(&log)})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Created || !res.Verified || res.Updated || res.Activated {
		t.Errorf("result = %+v, want created and verified only", res)
	}
	hooks := f.okta.EventHooks()
	if len(hooks) != 1 {
		t.Fatalf("%d hooks in Okta, want 1", len(hooks))
	}
	h := hooks[0]
	want := oktahook.HandledEventTypes()
	got := slices.Sorted(slices.Values(h.Events))
	if !slices.Equal(got, want) {
		t.Errorf("subscribed to %v, want %v", got, want)
	}
	if !slices.Contains(got, "user.lifecycle.deactivate") {
		t.Error("user.lifecycle.deactivate is not subscribed")
	}
	if h.URI != f.url || h.AuthType != "HEADER" || h.AuthKey != "Authorization" || h.AuthValue != testAuthValue {
		t.Errorf("channel = %s %s %s, want %s HEADER Authorization with the secret", h.URI, h.AuthType, h.AuthKey, f.url)
	}
	if !slices.Equal(h.Headers, []oktatest.EventHookHeader{{Key: "x-api-key", Value: testAPIKey}}) {
		t.Errorf("headers = %v", h.Headers)
	}
	if h.Status != "ACTIVE" || h.VerificationStatus != "VERIFIED" || h.Verifications != 1 {
		t.Errorf("status %s %s after %d verification GETs, want ACTIVE VERIFIED after 1", h.Status, h.VerificationStatus, h.Verifications)
	}
	if got, want := f.writes(), []string{"POST /api/v1/eventHooks", "POST /api/v1/eventHooks/" + h.ID + "/lifecycle/verify"}; !slices.Equal(got, want) {
		t.Errorf("writes = %v, want %v", got, want)
	}
	if len(log) != 2 || !strings.Contains(log[0], "created event hook") || !strings.Contains(log[1], "verified") {
		t.Errorf("log = %q", log)
	}
}

func TestApplyTwiceChangesNothingTheSecondTime(t *testing.T) {
	f := newFixture(t)
	if _, err := Apply(context.Background(), f.client, f.desired(), Options{}); err != nil {
		t.Fatal(err)
	}
	before := f.okta.EventHooks()[0]
	f.okta.ResetStats()
	var log []string
	res, err := Apply(context.Background(), f.client, f.desired(), Options{Log: collect(&log)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Changed() {
		t.Errorf("second run changed something: %+v", res)
	}
	if w := f.writes(); len(w) != 0 {
		t.Errorf("second run wrote %v, want nothing", w)
	}
	if after := f.okta.EventHooks()[0]; !after.LastUpdated.Equal(before.LastUpdated) || after.Verifications != before.Verifications {
		t.Errorf("hook touched: lastUpdated %v → %v, verifications %d → %d", before.LastUpdated, after.LastUpdated, before.Verifications, after.Verifications)
	}
	if len(log) != 1 || !strings.Contains(log[0], "nothing changed") {
		t.Errorf("log = %q, want one line saying nothing changed", log)
	}
}

// A hook made by hand in the admin console: another name, the deactivate event forgotten, an
// extra type, the wrong auth header name, no API key, deactivated. Found by URL, fixed by one PUT,
// activated and verified; afterwards Check finds nothing.
func TestApplyRepairsAHandMadeHook(t *testing.T) {
	f := newFixture(t)
	d := f.desired()
	handMade := d.hook()
	handMade.Name = "AWS SSO sync"
	handMade.Events.Items = []string{"group.user_membership.add", "group.user_membership.remove", "user.session.start"}
	handMade.Channel.Config.AuthScheme.Key = "X-Auth"
	handMade.Channel.Config.Headers = nil
	ctx := context.Background()
	h, err := f.client.Create(ctx, handMade)
	if err != nil {
		t.Fatal(err)
	}
	if err := deactivate(t, f, h.ID); err != nil {
		t.Fatal(err)
	}
	_, problems, err := Check(ctx, f.client, d)
	if err != nil {
		t.Fatal(err)
	}
	texts := make([]string, len(problems))
	for i, p := range problems {
		texts[i] = p.Text
	}
	all := strings.Join(texts, "\n")
	for _, want := range []string{
		`name is "AWS SSO sync"`, "missing event type user.lifecycle.deactivate", "missing event type group.profile.update",
		"extra event type user.session.start", "wrong auth header name: X-Auth, want Authorization",
		"missing header x-api-key", "not ACTIVE (status INACTIVE)", "not VERIFIED (verificationStatus UNVERIFIED)",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("check lacks %q in:\n%s", want, all)
		}
	}
	if strings.Contains(all, "wrong URL") {
		t.Errorf("URL reported although equal:\n%s", all)
	}
	f.okta.ResetStats()
	res, err := Apply(ctx, f.client, d, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Created || !res.Updated || !res.Activated || !res.Verified {
		t.Errorf("result = %+v, want updated, activated, verified", res)
	}
	want := []string{"PUT /api/v1/eventHooks/" + h.ID, "POST /api/v1/eventHooks/" + h.ID + "/lifecycle/activate", "POST /api/v1/eventHooks/" + h.ID + "/lifecycle/verify"}
	if got := f.writes(); !slices.Equal(got, want) {
		t.Errorf("writes = %v, want %v", got, want)
	}
	if _, problems, err := Check(ctx, f.client, d); err != nil || len(problems) != 0 {
		t.Errorf("after apply: check = %v, %v; want nothing lacking", problems, err)
	}
	if n := len(f.okta.EventHooks()); n != 1 {
		t.Errorf("%d hooks, want the one repaired", n)
	}
}

func deactivate(t *testing.T, f *fixture, id string) error {
	t.Helper()
	return f.client.do(context.Background(), "deactivate", http.MethodPost, "/api/v1/eventHooks/"+id+"/lifecycle/deactivate", nil, nil)
}

func TestCheckCompleteAndMissing(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, _, err := Check(ctx, f.client, f.desired()); !errors.Is(err, ErrNoHook) {
		t.Errorf("check on an empty org: %v, want ErrNoHook", err)
	}
	if _, err := Apply(ctx, f.client, f.desired(), Options{}); err != nil {
		t.Fatal(err)
	}
	f.okta.ResetStats()
	h, problems, err := Check(ctx, f.client, f.desired())
	if err != nil || len(problems) != 0 || h == nil {
		t.Errorf("check = %v, %v, %v; want the hook and nothing lacking", h, problems, err)
	}
	if w := f.writes(); len(w) != 0 {
		t.Errorf("check wrote %v", w)
	}
	// The stack moved (a new API id): the hook points at the old URL and is found by name.
	moved := f.desired()
	moved.URL = strings.Replace(f.url, "/prod/", "/prod2/", 1)
	_, problems, err = Check(ctx, f.client, moved)
	if err != nil || len(problems) != 1 || problems[0].Text != "wrong URL: "+f.url+", want "+moved.URL {
		t.Errorf("moved URL: check = %v, %v", problems, err)
	}
}

// Okta never returns the auth value, so a rotated secret is invisible to Diff: a plain run leaves
// the hook alone, -rotate sends the new value and verifies with it.
func TestApplyRotateSendsTheNewSecret(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := Apply(ctx, f.client, f.desired(), Options{}); err != nil {
		t.Fatal(err)
	}
	const rotated = "hook-secret-rotated-Pp4Xa1"
	f.hook.mu.Lock()
	f.hook.auth = rotated
	f.hook.mu.Unlock()
	d := f.desired()
	d.AuthValue = rotated
	res, err := Apply(ctx, f.client, d, Options{})
	if err != nil || res.Changed() {
		t.Fatalf("plain run after rotation: %+v, %v; want no change (Okta hides the value)", res, err)
	}
	res, err = Apply(ctx, f.client, d, Options{Rotate: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Updated || !res.Verified {
		t.Errorf("rotate: %+v, want updated and verified", res)
	}
	if h := f.okta.EventHooks()[0]; h.AuthValue != rotated || h.VerificationStatus != "VERIFIED" {
		t.Errorf("after rotate Okta holds the old value or is %s", h.VerificationStatus)
	}
}

// A hook that refuses the secret fails verification; the error says why and carries no secret.
func TestApplyVerificationFailureIsAnErrorWithoutSecrets(t *testing.T) {
	f := newFixture(t)
	f.hook.mu.Lock()
	f.hook.auth = "a-different-secret"
	f.hook.mu.Unlock()
	_, err := Apply(context.Background(), f.client, f.desired(), Options{})
	if err == nil {
		t.Fatal("apply succeeded against a hook that refuses the secret")
	}
	msg := err.Error()
	if !strings.Contains(msg, "HTTP 400") || !strings.Contains(msg, "401") || !strings.Contains(msg, "verification") {
		t.Errorf("error does not say the verification failed with 401: %s", msg)
	}
	assertNoSecrets(t, msg)
	h := f.okta.EventHooks()[0]
	if h.VerificationStatus != "UNVERIFIED" || h.Verifications != 2 {
		t.Errorf("%s after %d verification GETs, want UNVERIFIED after 2 (Okta retries once)", h.VerificationStatus, h.Verifications)
	}
}

func TestBadTokenIsUnauthorizedWithoutTheToken(t *testing.T) {
	f := newFixture(t)
	okta := httptest.NewServer(f.okta.Handler())
	defer okta.Close()
	const wrong = "okta-ssws-wrong-Jd8Rc5"
	c, err := NewClient(okta.URL, wrong, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Apply(context.Background(), c, f.desired(), Options{})
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("err = %v, want ErrUnauthorized", err)
	}
	if strings.Contains(err.Error(), wrong) || !strings.Contains(err.Error(), "E0000011") {
		t.Errorf("error = %s", err)
	}
	if n := len(f.okta.EventHooks()); n != 0 {
		t.Errorf("%d hooks created with a bad token", n)
	}
}

func TestUnknownEventTypeIs400(t *testing.T) {
	f := newFixture(t)
	d := f.desired()
	d.EventTypes = append(d.EventTypes, "group.user_membership.added")
	_, err := Apply(context.Background(), f.client, d, Options{})
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 400 || !strings.Contains(err.Error(), "group.user_membership.added") {
		t.Fatalf("err = %v, want a 400 naming the type", err)
	}
	assertNoSecrets(t, err.Error())
}

func TestSeveralHooksWithOurNameIsAnError(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for range 2 {
		if _, err := f.client.Create(ctx, f.desired().hook()); err != nil {
			t.Fatal(err)
		}
	}
	f.okta.ResetStats()
	_, err := Apply(ctx, f.client, f.desired(), Options{})
	if err == nil || !strings.Contains(err.Error(), "2 event hooks are named") {
		t.Fatalf("err = %v", err)
	}
	if w := f.writes(); len(w) != 0 {
		t.Errorf("wrote %v despite the ambiguity", w)
	}
}

// An error answer that echoes secrets (a proxy, a misbehaving server) is scrubbed, and printing
// a Desired or a Hook shows no value.
func TestRedaction(t *testing.T) {
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"errorCode": "E0000001", "errorSummary": "bad header " + r.Header.Get("Authorization"),
			"errorCauses": []map[string]string{{"errorSummary": "value " + testAuthValue + " key " + testAPIKey}},
		})
	}))
	defer echo.Close()
	c, err := NewClient(echo.URL, testOktaToken, nil, testAuthValue, testAPIKey)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Create(context.Background(), Hook{Name: "x"})
	if err == nil {
		t.Fatal("want an error")
	}
	assertNoSecrets(t, err.Error())
	if !strings.Contains(err.Error(), "[redacted]") {
		t.Errorf("error = %s, want the echoed values replaced", err)
	}
	text := echo.URL
	echo.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte("<html>upstream said " + r.Header.Get("Authorization") + "</html>"))
	})
	if _, err := c.List(context.Background()); err == nil {
		t.Fatal("want an error")
	} else {
		assertNoSecrets(t, err.Error())
	}
	fx := &fixture{url: text}
	d := fx.desired()
	for _, s := range []string{fmt.Sprintf("%v", d), fmt.Sprintf("%+v", d), fmt.Sprintf("%#v", d), fmt.Sprintf("%v", d.hook()), fmt.Sprintf("%+v", c)} {
		assertNoSecrets(t, s)
	}
}

func assertNoSecrets(t *testing.T, s string) {
	t.Helper()
	for _, secret := range []string{testOktaToken, testAuthValue, testAPIKey} {
		if strings.Contains(s, secret) {
			t.Errorf("text contains a secret: %s", s)
		}
	}
}
