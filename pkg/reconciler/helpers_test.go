package reconciler

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/config"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/okta"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/okta/oktatest"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim/scimtest"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/telemetry"
)

const oktaToken = "00okta-test-token-must-never-be-logged"

// fixture is the Okta fake and the SCIM emulator in-process, with the real clients in front of
// them and a handler config over both.
type fixture struct {
	t       *testing.T
	okta    *oktatest.Server
	scim    *scimtest.Server
	client  *scim.Client
	reader  *okta.Reader
	logs    *syncBuffer
	metrics *syncBuffer
	cfg     Config

	oktaUser  map[string]string // login → Okta id
	oktaLogin map[string]string // Okta id → login
	oktaGroup map[string]string // name → Okta id
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func (s *syncBuffer) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf.Reset()
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureSCIM(t, scimtest.Options{Seed: 1, EmptyRemove: scimtest.EmptyRemoveEmptiesGroup})
}

// newFixtureSCIM is newFixture with the SCIM emulator built from opts.
func newFixtureSCIM(t *testing.T, opts scimtest.Options) *fixture {
	t.Helper()
	f := &fixture{
		t:         t,
		okta:      oktatest.New(oktatest.Options{Token: oktaToken}),
		scim:      scimtest.New(opts),
		logs:      &syncBuffer{},
		metrics:   &syncBuffer{},
		oktaUser:  map[string]string{},
		oktaLogin: map[string]string{},
		oktaGroup: map[string]string{},
	}
	osrv := httptest.NewServer(f.okta.Handler())
	t.Cleanup(osrv.Close)
	ss := httptest.NewServer(f.scim.Handler())
	t.Cleanup(ss.Close)
	var err error
	f.client, err = scim.New(ss.URL+f.scim.BasePath(), func(context.Context, bool) (string, error) { return scimtest.DefaultToken, nil },
		scim.WithBackoff(time.Millisecond, 5*time.Millisecond), scim.WithMaxRetries(2), scim.WithRandSeed(1))
	if err != nil {
		t.Fatal(err)
	}
	f.reader, err = okta.NewReader(context.Background(), osrv.URL, oktaToken, okta.WithMaxRetries(1), okta.WithMaxBackoff(0))
	if err != nil {
		t.Fatal(err)
	}
	f.cfg = Config{
		SCIM:         f.client,
		Okta:         func(context.Context, bool) (Okta, error) { return f.reader, nil },
		Selection:    config.Selection{Prefix: "AWS_"},
		CreateGroups: true,
		MaxRemovals:  100,
		Concurrency:  4,
		Log:          telemetry.NewLogger(f.logs, slog.LevelDebug),
		MetricsOut:   f.metrics,
		Namespace:    "Test",
	}
	return f
}

// user creates an Okta user and, when provisioned, its SCIM user (externalId = Okta id).
func (f *fixture) user(login string, provisioned bool) string {
	id := f.okta.AddUser(login)
	f.oktaUser[login], f.oktaLogin[id] = id, login
	if provisioned {
		f.scim.AddUser(login, id)
	}
	return id
}

// users creates n provisioned users named <prefix>NNNN@example.com and returns their logins.
func (f *fixture) users(prefix string, n int) []string {
	out := make([]string, n)
	for i := range n {
		out[i] = fmt.Sprintf("%s%04d@example.com", prefix, i)
		f.user(out[i], true)
	}
	return out
}

// oktaGroupOf creates an Okta group with the given members.
func (f *fixture) oktaGroupOf(name string, logins ...string) string {
	f.t.Helper()
	id := f.okta.AddGroup(name)
	f.oktaGroup[name] = id
	for _, l := range logins {
		if err := f.okta.AddMember(id, f.oktaUser[l]); err != nil {
			f.t.Fatal(err)
		}
	}
	return id
}

// scimGroupOf creates a SCIM group with the given members.
func (f *fixture) scimGroupOf(name, externalID string, logins ...string) string {
	f.t.Helper()
	id := f.scim.AddGroup(name, externalID)
	for _, l := range logins {
		uid, ok := f.scim.UserID(l)
		if !ok {
			f.t.Fatalf("no SCIM user %s", l)
		}
		f.scim.AddMember(id, uid)
	}
	return id
}

// oktaMembers returns the sorted logins of an Okta group's members.
func (f *fixture) oktaMembers(name string) []string {
	f.t.Helper()
	ids, err := f.okta.Members(f.oktaGroup[name])
	if err != nil {
		f.t.Fatal(err)
	}
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = f.oktaLogin[id]
	}
	slices.Sort(out)
	return out
}

// wantInSync fails unless each named SCIM group holds exactly the Okta group's members (of those
// provisioned in SCIM).
func (f *fixture) wantInSync(names ...string) {
	f.t.Helper()
	snap := f.scim.Snapshot()
	for _, name := range names {
		got, ok := snap[name]
		if !ok {
			f.t.Errorf("SCIM group %s missing", name)
			continue
		}
		var want []string
		for _, l := range f.oktaMembers(name) {
			if _, ok := f.scim.UserID(l); ok {
				want = append(want, l)
			}
		}
		if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
			f.t.Errorf("SCIM group %s: %d members, want %d (Okta)\n got %v\nwant %v", name, len(got), len(want), clip(got), clip(want))
		}
	}
}

func clip(s []string) []string {
	if len(s) > 12 {
		return append(s[:12:12], "…")
	}
	return s
}

// safeWire fails if the SCIM emulator saw a remove without values or a PATCH over 100 values.
func (f *fixture) safeWire() {
	f.t.Helper()
	if n := f.scim.EmptyRemoves(); n != 0 {
		f.t.Errorf("%d removes without values", n)
	}
	if n := f.scim.MaxPatchValues(); n > scimtest.MaxMemberValues {
		f.t.Errorf("a PATCH carried %d values", n)
	}
}

func (f *fixture) handler() *Handler { return NewHandler(f.cfg) }

// invoke sends payload through the real Lambda decode path.
func (f *fixture) invoke(ctx context.Context, payload string) (Summary, error) {
	f.t.Helper()
	out, err := lambda.NewHandler(f.handler()).Invoke(ctx, []byte(payload))
	if err != nil {
		return f.loggedSummary(), err
	}
	var s Summary
	if err := json.Unmarshal(out, &s); err != nil {
		f.t.Fatalf("response %s: %v", out, err)
	}
	return s, nil
}

// loggedSummary returns the last "reconcile summary" log line's summary.
func (f *fixture) loggedSummary() Summary {
	f.t.Helper()
	var s Summary
	found := false
	for _, l := range f.logLines() {
		if l["msg"] == "reconcile summary" {
			b, _ := json.Marshal(l["summary"])
			s = Summary{}
			if err := json.Unmarshal(b, &s); err != nil {
				f.t.Fatal(err)
			}
			found = true
		}
	}
	if !found {
		f.t.Fatal("no summary logged")
	}
	return s
}

func (f *fixture) logLines() []map[string]any {
	f.t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(f.logs.String()))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			f.t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// audits returns the audit records logged, by result.
func (f *fixture) audits() map[string][]map[string]any {
	out := map[string][]map[string]any{}
	for _, l := range f.logLines() {
		if l["msg"] == "audit" {
			r, _ := l["result"].(string)
			out[r] = append(out[r], l)
		}
	}
	return out
}

// metric sums the EMF values of name over all flushed lines.
func (f *fixture) metric(name string) (float64, bool) {
	f.t.Helper()
	var sum float64
	found := false
	sc := bufio.NewScanner(strings.NewReader(f.metrics.String()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			f.t.Fatalf("EMF line %q: %v", sc.Text(), err)
		}
		switch v := m[name].(type) {
		case float64:
			sum += v
			found = true
		case []any:
			for _, x := range v {
				sum += x.(float64)
			}
			found = true
		}
	}
	return sum, found
}

func (f *fixture) wantMetric(name string, want float64) {
	f.t.Helper()
	got, ok := f.metric(name)
	if !ok || got != want {
		f.t.Errorf("metric %s = %v (present %v), want %v", name, got, ok, want)
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// clock is a settable fake clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// slowOkta advances a fake clock by step on every group member read, to model a run that takes
// long without taking long.
type slowOkta struct {
	Okta
	clock *clock
	step  time.Duration
	read  []string
	mu    sync.Mutex
}

func (s *slowOkta) GroupMembers(ctx context.Context, id string) ([]okta.User, error) {
	s.clock.Advance(s.step)
	s.mu.Lock()
	s.read = append(s.read, id)
	s.mu.Unlock()
	return s.Okta.GroupMembers(ctx, id)
}
