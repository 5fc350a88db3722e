package tests

// End-to-end tests of the reconciler: the real functions/reconcile bootstrap under the fake
// Lambda Runtime API, the Okta fake and the SCIM emulator on localhost ports, moto_server for
// Secrets Manager and the DynamoDB ordering table.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/ledger"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/membership"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/okta/oktatest"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/queue"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim/scimtest"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/tests/harness"
)

const (
	recOktaToken = "okta-api-token-e2e-reconcile"
	recSCIMToken = "scim-bearer-e2e-reconcile"
	recUsers     = 2000
)

// recSelected are the selected groups of the scenario; Sales is not selected, AWS_Legacy exists
// only in SCIM.
var recSelected = []string{"AWS_Engineering", "AWS_Admins", "AWS_ReadOnly"}

// recWorld is one isolated reconcile setup with the drift scenario seeded:
//
//	group             Okta                    SCIM
//	AWS_Engineering   users 0-1199 (1,200)    the same minus every 30th (40), plus 1500-1514 (15)
//	AWS_Admins        users 1100-1399         the same minus 1100-1104 (5), plus 1600-1609 (10)
//	AWS_ReadOnly      users 1400-1999         missing (20 of its members are not in SCIM at all)
//	Sales             users 0-399             users 1000-1049 (not selected: must stay)
//	AWS_Legacy        —                       users 0-9 (no Okta group: must stay)
//
// A real run adds 40 + 5 + 580 members, removes 25 and creates AWS_ReadOnly.
type recWorld struct {
	t      *testing.T
	ctx    context.Context
	moto   *harness.Moto
	okta   *oktatest.Server
	scim   *scimtest.Server
	env    map[string]string
	table  string
	oktaID map[string]string // login → Okta user id
	groups map[string]string // Okta group name → id

	mu      sync.Mutex
	patched map[string]int // SCIM group id → PATCH requests
}

func recLogin(i int) string { return fmt.Sprintf("user%04d@example.com", i) }

func newRecWorld(t *testing.T, m *harness.Moto, name string) *recWorld {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	w := &recWorld{t: t, ctx: ctx, moto: m, oktaID: map[string]string{}, groups: map[string]string{}, patched: map[string]int{},
		okta: oktatest.New(oktatest.Options{Token: recOktaToken}),
		scim: scimtest.New(scimtest.Options{Token: recSCIMToken, Seed: 7})}
	oktaURL, err := w.okta.Start("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.okta.Close() })
	scimURL, err := w.scim.Start("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.scim.Close() })
	// A spy, not a fault: which groups were written to.
	w.scim.SetFaultFunc(func(route string, r *http.Request) *scimtest.Fault {
		if route == "PATCH /Groups/{id}" {
			id := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
			w.mu.Lock()
			w.patched[id]++
			w.mu.Unlock()
		}
		return nil
	})

	for i := range recUsers {
		l := recLogin(i)
		w.oktaID[l] = w.okta.AddUser(l)
		if i < 1980 {
			w.scim.AddUser(l, w.oktaID[l])
		}
	}
	okta := func(name string, from, to int) {
		id := w.okta.AddGroup(name)
		w.groups[name] = id
		for i := from; i < to; i++ {
			if err := w.okta.AddMember(id, w.oktaID[recLogin(i)]); err != nil {
				t.Fatal(err)
			}
		}
	}
	okta("AWS_Engineering", 0, 1200)
	okta("AWS_Admins", 1100, 1400)
	okta("AWS_ReadOnly", 1400, 2000)
	okta("Sales", 0, 400)

	scimGroup := func(name, externalID string, members []int) {
		gid := w.scim.AddGroup(name, externalID)
		for _, i := range members {
			uid, _ := w.scim.UserID(recLogin(i))
			w.scim.AddMember(gid, uid)
		}
	}
	var eng, adm []int
	for i := range 1200 {
		if i%30 != 29 {
			eng = append(eng, i)
		}
	}
	for i := 1500; i < 1515; i++ {
		eng = append(eng, i)
	}
	for i := 1105; i < 1400; i++ {
		adm = append(adm, i)
	}
	for i := 1600; i < 1610; i++ {
		adm = append(adm, i)
	}
	scimGroup("AWS_Engineering", w.groups["AWS_Engineering"], eng)
	scimGroup("AWS_Admins", w.groups["AWS_Admins"], adm)
	scimGroup("Sales", "", recRange(1000, 1050))
	scimGroup("AWS_Legacy", "", recRange(0, 10))

	w.table = "reconcile-state-" + name
	if err := ledger.CreateTable(ctx, dynamodb.NewFromConfig(m.AWSConfig()), w.table); err != nil {
		t.Fatal(err)
	}
	secret := harness.MustCreateSecret(t, m, "okta-aws-sso-sync-reconcile-"+name, harness.SecretJSON("", recSCIMToken, recOktaToken))
	w.env = harness.MergeEnv(m.Env(), map[string]string{
		"SECRET_ID": secret, "SCIM_URL": scimURL, "OKTA_ORG_URL": oktaURL, "STATE_TABLE": w.table, "LOG_LEVEL": "info",
	})
	return w
}

func recRange(from, to int) []int {
	out := make([]int, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

// start runs the reconcile bootstrap with the world's environment plus extra.
func (w *recWorld) start(extra map[string]string) *harness.Runtime {
	w.t.Helper()
	return harness.MustStartRuntime(w.t, harness.MustBuildFunction(w.t, "reconcile"), harness.MergeEnv(w.env, extra),
		harness.WithFunctionName("reconcile"), harness.WithTimeout(3*time.Minute))
}

// recSummary is the part of the summary the tests read (decoded independently of the function's
// own type, as an operator's tooling would).
type recSummary struct {
	DryRun           bool     `json:"dryRun"`
	GroupsSelected   int      `json:"groupsSelected"`
	GroupsChecked    int      `json:"groupsChecked"`
	GroupsCreated    int      `json:"groupsCreated"`
	Adds             int      `json:"adds"`
	Removes          int      `json:"removes"`
	Added            int      `json:"added"`
	Removed          int      `json:"removed"`
	Failed           int      `json:"failed"`
	Blocked          bool     `json:"blocked"`
	RemovalsBlocked  int      `json:"removalsBlocked"`
	SuspiciousGroups []string `json:"suspiciousGroups"`
	PartialGroups    []struct {
		Group                             string
		Listed, Counted, RemovalsWithheld int
	} `json:"partialGroups"`
	Skipped []struct {
		Group, Reason string
	} `json:"skipped"`
	Orphans      []orphan `json:"orphans"`
	NotReached   []string `json:"notReached"`
	UnknownUsers int      `json:"unknownUsers"`
	ScimRequests int64    `json:"scimRequests"`
	OktaRequests int64    `json:"oktaRequests"`
	DurationMs   int64    `json:"durationMs"`
	Errors       []string `json:"errors"`
}

// orphan is an AWS group of the summary's orphans.
type orphan struct{ Group, SCIMGroupID, ExternalID, Reason string }

// invoke runs one reconcile with payload; it returns the summary (from the response, or from the
// log when the function failed) and the function error.
func (w *recWorld) invoke(rt *harness.Runtime, payload string) (recSummary, error) {
	w.t.Helper()
	before := len(loggedSummaries(w.t, rt.Logs()))
	resp, err := rt.Invoke(w.ctx, []byte(payload))
	var fe *harness.FunctionError
	if err != nil && !errors.As(err, &fe) {
		w.t.Fatalf("invoke: %v", err)
	}
	var s recSummary
	if err == nil {
		if uerr := json.Unmarshal(resp, &s); uerr != nil {
			w.t.Fatalf("response %s: %v", resp, uerr)
		}
		return s, nil
	}
	// The function's stdout (the summary line) and its error report travel separately: the error
	// can reach the runtime before the harness has copied the last log lines, so wait for this
	// invocation's summary instead of reading whatever is there.
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if all := loggedSummaries(w.t, rt.Logs()); len(all) > before {
			return all[len(all)-1], err
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("no summary logged; function error %v", err)
		}
	}
}

// loggedSummaries returns the summaries of the "reconcile summary" log lines in logs, in order.
func loggedSummaries(t *testing.T, logs string) []recSummary {
	t.Helper()
	var out []recSummary
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var line struct {
			Msg     string          `json:"msg"`
			Summary json.RawMessage `json:"summary"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "reconcile summary" {
			var s recSummary
			if err := json.Unmarshal(line.Summary, &s); err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
	}
	return out
}

// oktaMembers returns the logins of an Okta group's members that exist in SCIM, sorted.
func (w *recWorld) oktaMembers(name string) []string {
	w.t.Helper()
	ids, err := w.okta.Members(w.groups[name])
	if err != nil {
		w.t.Fatal(err)
	}
	byID := map[string]string{}
	for l, id := range w.oktaID {
		byID[id] = l
	}
	var out []string
	for _, id := range ids {
		if l := byID[id]; l != "" {
			if _, ok := w.scim.UserID(l); ok {
				out = append(out, l)
			}
		}
	}
	slices.Sort(out)
	return out
}

func (w *recWorld) wantInSync(names ...string) {
	w.t.Helper()
	snap := w.scim.Snapshot()
	for _, n := range names {
		if got, want := snap[n], w.oktaMembers(n); !slices.Equal(got, want) {
			w.t.Errorf("SCIM %s has %d members, Okta %d", n, len(got), len(want))
		}
	}
}

func (w *recWorld) wantUnchanged(before map[string][]string, names ...string) {
	w.t.Helper()
	after := w.scim.Snapshot()
	for _, n := range names {
		if !slices.Equal(before[n], after[n]) {
			w.t.Errorf("SCIM %s changed: %d → %d members", n, len(before[n]), len(after[n]))
		}
	}
}

// checkWire asserts what no run may ever send: a remove without values, a PATCH over 100 values,
// a write to a group outside the selection, a request outside the reconciler's routes.
func (w *recWorld) checkWire(before map[string][]string) {
	w.t.Helper()
	if n := w.scim.EmptyRemoves(); n != 0 {
		w.t.Errorf("%d removes without values", n)
	}
	if n := w.scim.MaxPatchValues(); n > scimtest.MaxMemberValues {
		w.t.Errorf("a PATCH carried %d member values", n)
	}
	allowed := []string{"GET /Users", "GET /Groups", "POST /Groups", "PATCH /Groups/{id}"}
	for route, n := range w.scim.Requests() {
		if !slices.Contains(allowed, route) {
			w.t.Errorf("%d forbidden requests %s", n, route)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, name := range []string{"Sales", "AWS_Legacy"} {
		id, _ := w.scim.GroupID(name)
		if w.patched[id] > 0 {
			w.t.Errorf("%d PATCHes to %s, which the run must not touch", w.patched[id], name)
		}
	}
	w.wantUnchanged(before, "Sales", "AWS_Legacy")
}

func TestReconcileEndToEnd(t *testing.T) {
	t.Parallel()
	m := harness.MustStartMoto(t)

	t.Run("dry run changes nothing", func(t *testing.T) {
		w := newRecWorld(t, m, "dry")
		before := w.scim.Snapshot()
		s, err := w.invoke(w.start(map[string]string{"DRY_RUN": "true"}), recEvent(t, "reconcile-schedule.json"))
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(before) != fmt.Sprint(w.scim.Snapshot()) {
			t.Error("a dry run changed SCIM")
		}
		for route, n := range w.scim.Requests() {
			if !strings.HasPrefix(route, "GET ") {
				t.Errorf("dry run sent %d %s", n, route)
			}
		}
		if !s.DryRun || s.Adds != 625 || s.Removes != 25 || s.Added+s.Removed != 0 || s.GroupsCreated != 1 || s.UnknownUsers != 20 {
			t.Errorf("summary %+v", s)
		}
		w.checkWire(before)
	})

	t.Run("real run makes SCIM equal to Okta", func(t *testing.T) {
		w := newRecWorld(t, m, "real")
		before := w.scim.Snapshot()
		rt := w.start(nil)
		s, err := w.invoke(rt, recEvent(t, "reconcile-schedule.json"))
		if err != nil {
			t.Fatal(err)
		}
		w.wantInSync(recSelected...)
		w.checkWire(before)
		if s.GroupsSelected != 3 || s.GroupsChecked != 3 || s.GroupsCreated != 1 || s.Added != 625 || s.Removed != 25 ||
			s.Failed != 0 || s.Blocked || s.UnknownUsers != 20 || len(s.Skipped)+len(s.NotReached) != 0 {
			t.Errorf("summary %+v", s)
		}
		// Cost close to the pages the data needs: member listings (~25 pages), one listing of
		// SCIM users (20), a group listing, one create, PATCHes (~12) — a few dozen, not thousands.
		t.Logf("SCIM requests %d %v; Okta requests %d; %d ms", s.ScimRequests, w.scim.Requests(), s.OktaRequests, s.DurationMs)
		if s.ScimRequests != int64(w.scim.TotalRequests()) || s.ScimRequests > 80 {
			t.Errorf("%d SCIM requests (emulator saw %d), want a few dozen", s.ScimRequests, w.scim.TotalRequests())
		}
		if s.OktaRequests != w.okta.Stats().Requests || s.OktaRequests > 15 {
			t.Errorf("%d Okta requests (fake saw %d)", s.OktaRequests, w.okta.Stats().Requests)
		}
		for _, secret := range []string{recOktaToken, recSCIMToken} {
			if strings.Contains(rt.Logs(), secret) {
				t.Errorf("function output contains a secret value")
			}
		}

		// An Okta event published before the reconcile read, delivered late, must not undo the
		// repair; one published after it must win. The real sync worker decides against the
		// marks the reconciler wrote to STATE_TABLE.
		// The worker's own queue (QUEUE_URL, for backoff and isolated changes); this test invokes
		// it directly with single-change messages.
		q := harness.MustCreateFIFOQueue(t, w.moto, "reconcile-sync", 3)
		sync := harness.MustStartRuntime(t, harness.MustBuildFunction(t, "sync"), harness.MergeEnv(w.env, map[string]string{"QUEUE_URL": q.URL}),
			harness.WithFunctionName("sync"), harness.WithTimeout(time.Minute))
		added, removed, fresh := recLogin(29), recLogin(1500), recLogin(59) // reconcile added 29, removed 1500; 59 untouched
		eng := w.groups["AWS_Engineering"]
		oldRemove := membership.Change{EventUUID: "late-remove", Published: time.Now().Add(-10 * time.Minute), Kind: membership.KindRemove,
			UserID: w.oktaID[added], Login: added, GroupID: eng, GroupName: "AWS_Engineering"}
		oldAdd := membership.Change{EventUUID: "late-add", Published: time.Now().Add(-10 * time.Minute), Kind: membership.KindAdd,
			UserID: w.oktaID[removed], Login: removed, GroupID: eng, GroupName: "AWS_Engineering"}
		newRemove := membership.Change{EventUUID: "new-remove", Published: time.Now().Add(time.Second), Kind: membership.KindRemove,
			UserID: w.oktaID[fresh], Login: fresh, GroupID: eng, GroupName: "AWS_Engineering"}
		var resp events.SQSEventResponse
		if err := sync.InvokeJSON(w.ctx, recSQSEvent(t, oldRemove, oldAdd, newRemove), &resp); err != nil {
			t.Fatal(err)
		}
		if len(resp.BatchItemFailures) != 0 {
			t.Fatalf("sync failures %+v", resp.BatchItemFailures)
		}
		got := w.scim.Snapshot()["AWS_Engineering"]
		if !slices.Contains(got, added) || slices.Contains(got, removed) || slices.Contains(got, fresh) {
			t.Errorf("after late events: %s member %v (want true), %s member %v (want false), %s member %v (want false)",
				added, slices.Contains(got, added), removed, slices.Contains(got, removed), fresh, slices.Contains(got, fresh))
		}
	})

	t.Run("more removals than MAX_REMOVALS removes none", func(t *testing.T) {
		w := newRecWorld(t, m, "cap")
		before := w.scim.Snapshot()
		s, err := w.invoke(w.start(map[string]string{"MAX_REMOVALS": "10"}), "{}")
		if err == nil || !strings.Contains(err.Error(), "MAX_REMOVALS") {
			t.Fatalf("err = %v, want a failed invocation naming MAX_REMOVALS", err)
		}
		after := w.scim.Snapshot()
		for _, g := range recSelected {
			for _, u := range before[g] {
				if !slices.Contains(after[g], u) {
					t.Errorf("%s lost %s", g, u)
				}
			}
			for _, u := range w.oktaMembers(g) {
				if !slices.Contains(after[g], u) {
					t.Errorf("%s misses %s: adds must still be applied", g, u)
				}
			}
		}
		if !s.Blocked || s.RemovalsBlocked != 25 || s.Removed != 0 || s.Added != 625 {
			t.Errorf("summary %+v", s)
		}
		w.checkWire(before)
	})

	t.Run("Okta 500 on one group leaves it untouched", func(t *testing.T) {
		w := newRecWorld(t, m, "okta500")
		w.okta.FailGroupMembers(w.groups["AWS_Admins"], http.StatusInternalServerError, -1)
		before := w.scim.Snapshot()
		s, err := w.invoke(w.start(nil), "{}")
		if err != nil {
			t.Fatal(err)
		}
		w.wantUnchanged(before, "AWS_Admins")
		w.wantInSync("AWS_Engineering", "AWS_ReadOnly")
		if len(s.Skipped) != 1 || s.Skipped[0].Group != "AWS_Admins" || !strings.Contains(s.Skipped[0].Reason, "500") || s.GroupsChecked != 2 {
			t.Errorf("summary %+v", s)
		}
		id, _ := w.scim.GroupID("AWS_Admins")
		w.mu.Lock()
		if w.patched[id] != 0 {
			t.Errorf("%d PATCHes to the skipped group", w.patched[id])
		}
		w.mu.Unlock()
		w.checkWire(before)
	})

	t.Run("empty Okta answer for the large group removes nothing", func(t *testing.T) {
		w := newRecWorld(t, m, "empty")
		w.okta.EmptyGroupMembers(w.groups["AWS_Engineering"], -1)
		before := w.scim.Snapshot()
		s, err := w.invoke(w.start(nil), "{}")
		// 1,175 suspicious removals push the run over MAX_REMOVALS (100): the run fails loudly and
		// removes nobody anywhere, and still applies the adds.
		if err == nil || !strings.Contains(err.Error(), "MAX_REMOVALS") {
			t.Fatalf("err = %v", err)
		}
		w.wantUnchanged(before, "AWS_Engineering")
		after := w.scim.Snapshot()
		if len(after["AWS_ReadOnly"]) != 580 || len(after["AWS_Admins"]) != len(before["AWS_Admins"])+5 {
			t.Errorf("adds: ReadOnly %d (want 580), Admins %d (want %d)", len(after["AWS_ReadOnly"]), len(after["AWS_Admins"]), len(before["AWS_Admins"])+5)
		}
		if !slices.Equal(s.SuspiciousGroups, []string{"AWS_Engineering"}) || s.Removed != 0 || s.RemovalsBlocked != 1175+10 {
			t.Errorf("summary %+v", s)
		}
		w.checkWire(before)
	})
}

// recSQSEvent is the SQS FIFO event the sync function receives for changes.
func recSQSEvent(t *testing.T, cs ...membership.Change) events.SQSEvent {
	t.Helper()
	var ev events.SQSEvent
	for i, c := range cs {
		e, err := queue.Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		ev.Records = append(ev.Records, events.SQSMessage{
			MessageId: fmt.Sprintf("msg-%d", i), Body: e.Body, EventSource: "aws:sqs",
			Attributes: map[string]string{"MessageGroupId": e.GroupID, "MessageDeduplicationId": e.DedupID, "ApproximateReceiveCount": "1"},
		})
	}
	return ev
}

func recEvent(t *testing.T, name string) string {
	t.Helper()
	root, err := harness.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "events", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
