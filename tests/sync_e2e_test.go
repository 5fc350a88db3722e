package tests

// End-to-end tests of the event path: Okta deliveries → the real hook bootstrap → SQS FIFO
// (moto_server) → the real sync bootstrap → the SCIM emulator. The test plays Lambda's event
// source mapping: it receives up to 10 messages, invokes sync, deletes what sync acknowledged and
// leaves the reported failures to reappear after the visibility timeout, until the redrive
// policy moves them to the DLQ.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
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
	e2eHookToken = "okta-hook-secret-e2e"
	e2eSCIMToken = "scim-bearer-e2e"
)

// syncWorld is one isolated pipeline: its own queue, state table, SCIM emulator and functions.
type syncWorld struct {
	t     testing.TB
	ctx   context.Context
	moto  *harness.Moto
	scim  *scimtest.Server
	queue harness.Queue
	hook  *harness.Runtime
	sync  *harness.Runtime
	seq   int
}

// newSyncWorld starts the hook and sync bootstraps on a queue with the template's settings; env
// adds environment variables to both (operator settings such as GROUP_REGEX or
// UNPROVISIONED_USER_WAIT; each function ignores what it does not read).
func newSyncWorld(t testing.TB, m *harness.Moto, name string, opts scimtest.Options, env ...map[string]string) *syncWorld {
	t.Helper()
	ctx := context.Background()
	opts.Token = e2eSCIMToken
	srv := scimtest.New(opts)
	scimURL, err := srv.Start("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })

	// The template's VisibilityTimeout (720 s) and MaxReceiveCount: a reported failure comes back
	// within the test only because the worker backs it off itself.
	q, _ := mustCreateProdQueue(t, m, "changes-"+name)
	table := "sync-state-" + name
	if err := ledger.CreateTable(ctx, dynamodb.NewFromConfig(m.AWSConfig()), table); err != nil {
		t.Fatal(err)
	}
	secret := harness.MustCreateSecret(t, m, "okta-aws-sso-sync-"+name, harness.SecretJSON(e2eHookToken, e2eSCIMToken, ""))

	hook := harness.MustStartRuntime(t, harness.MustBuildFunction(t, "hook"), harness.MergeEnv(m.Env(), map[string]string{
		"SECRET_ID": secret, "QUEUE_URL": q.URL, "LOG_LEVEL": "info",
	}, harness.MergeEnv(env...)), harness.WithFunctionName("hook-"+name))
	sync := harness.MustStartRuntime(t, harness.MustBuildFunction(t, "sync"), harness.MergeEnv(m.Env(), map[string]string{
		"SECRET_ID": secret, "SCIM_URL": scimURL, "STATE_TABLE": table, "QUEUE_URL": q.URL, "DLQ_URL": q.DLQURL, "LOG_LEVEL": "info",
	}, harness.MergeEnv(env...)), harness.WithFunctionName("sync-"+name), harness.WithTimeout(60*time.Second))
	return &syncWorld{t: t, ctx: ctx, moto: m, scim: srv, queue: q, hook: hook, sync: sync}
}

// oktaEvent is one System Log event of a delivery.
type oktaEvent = oktatest.Event

func memberEvent(typ string, uuid string, at time.Time, userID, login, groupID, group string) oktaEvent {
	return oktaEvent{UUID: uuid, Type: "group.user_membership." + typ, Published: at, UserID: userID, Login: login, GroupID: groupID, GroupName: group}
}

// deliver posts one Okta event hook delivery through the hook, as API Gateway would.
func (w *syncWorld) deliver(evs ...oktaEvent) {
	w.t.Helper()
	w.seq++
	w.post(oktaDeliveryRequest(w.t, fmt.Sprintf("e2e-delivery-%d", w.seq), evs))
}

// oktaDeliveryRequest is one Okta event hook delivery as API Gateway hands it to the hook.
// Posting the same value twice is Okta's retry: same eventId, same bytes.
func oktaDeliveryRequest(t testing.TB, eventID string, evs []oktaEvent) events.APIGatewayProxyRequest {
	t.Helper()
	logEvents := make([]map[string]any, 0, len(evs))
	for _, e := range evs {
		// Membership events name a group and a user; renames and group deletes only the group,
		// user lifecycle events only the user.
		var targets []map[string]any
		if e.GroupID != "" {
			targets = append(targets, map[string]any{"id": e.GroupID, "type": "UserGroup", "alternateId": "unknown", "displayName": e.GroupName, "detailEntry": nil})
		}
		if e.UserID != "" {
			targets = append(targets, map[string]any{"id": e.UserID, "type": "User", "alternateId": e.Login, "displayName": e.Login, "detailEntry": nil})
		}
		logEvents = append(logEvents, map[string]any{
			"uuid":           e.UUID,
			"published":      e.Published.UTC().Format("2006-01-02T15:04:05.000Z"),
			"eventType":      e.Type,
			"version":        "0",
			"severity":       "INFO",
			"displayMessage": "Add user to group membership",
			"actor":          map[string]any{"id": "00uADMIN", "type": "User", "alternateId": "admin@example.com", "displayName": "Admin"},
			"outcome":        map[string]any{"result": "SUCCESS", "reason": nil},
			"target":         targets,
		})
	}
	body, err := json.Marshal(map[string]any{
		"eventType": "com.okta.event_hook", "eventTypeVersion": "1.0", "cloudEventsVersion": "0.1",
		"source": "https://example.okta.com/api/v1/eventHooks/whoE2E", "eventId": eventID,
		"eventTime": time.Now().UTC().Format(time.RFC3339), "contentType": "application/json",
		"data": map[string]any{"events": logEvents},
	})
	if err != nil {
		t.Fatal(err)
	}
	return events.APIGatewayProxyRequest{
		Resource: "/okta/events", Path: "/okta/events", HTTPMethod: http.MethodPost,
		Headers: map[string]string{"Authorization": e2eHookToken, "Content-Type": "application/json", "User-Agent": "Okta-Integrations"},
		Body:    string(body),
	}
}

// post sends one delivery through the hook and requires a success answer.
func (w *syncWorld) post(req events.APIGatewayProxyRequest) {
	w.t.Helper()
	resp, err := w.hook.InvokeAPIGateway(w.ctx, req)
	if err != nil {
		w.t.Fatalf("hook: %v", err)
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		w.t.Fatalf("hook answered %d: %s", resp.StatusCode, resp.Body)
	}
}

// pump plays the event source mapping until the queue is empty (failures that exhausted their
// receives are in the DLQ then). It returns the number of sync invocations.
func (w *syncWorld) pump() int {
	w.t.Helper()
	invocations := 0
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		msgs, err := w.moto.Receive(w.ctx, w.queue.URL, 10)
		if err != nil {
			w.t.Fatal(err)
		}
		if len(msgs) == 0 {
			depth, err := w.moto.Depth(w.ctx, w.queue.URL)
			if err != nil {
				w.t.Fatal(err)
			}
			if depth == 0 {
				return invocations
			}
			time.Sleep(250 * time.Millisecond) // in flight: wait for the visibility timeout
			continue
		}
		ev := harness.SQSEvent(w.queue.ARN, msgs)
		var resp events.SQSEventResponse
		if err := w.sync.InvokeJSON(w.ctx, ev, &resp); err != nil {
			w.t.Fatalf("sync: %v", err)
		}
		invocations++
		if err := w.moto.Acknowledge(w.ctx, w.queue.URL, msgs, resp.BatchItemFailures); err != nil {
			w.t.Fatal(err)
		}
	}
	w.t.Fatal("queue not drained within 2 minutes")
	return invocations
}

// dlq returns the messages that ended in the dead-letter queue, each with its changes.
func (w *syncWorld) dlq() [][]membership.Change {
	w.t.Helper()
	msgs := harness.MustReceiveAll(w.t, w.moto, w.queue.DLQURL)
	var out [][]membership.Change
	for _, m := range msgs {
		cs, err := queue.Decode(m.Body)
		if err != nil {
			w.t.Fatalf("DLQ message %s: %v", m.ID, err)
		}
		out = append(out, cs)
	}
	return out
}

// dlqReasons returns the reason attribute of every dead-lettered message.
func (w *syncWorld) dlqReasons() []string {
	w.t.Helper()
	var out []string
	for _, m := range harness.MustReceiveAll(w.t, w.moto, w.queue.DLQURL) {
		out = append(out, m.MessageAttributes[queue.ReasonAttribute])
	}
	return out
}

// checkWire asserts the SCIM rules every scenario must keep.
func (w *syncWorld) checkWire() {
	w.t.Helper()
	if n := w.scim.MaxPatchValues(); n > scimtest.MaxMemberValues {
		w.t.Errorf("a PATCH carried %d member values", n)
	}
	if n := w.scim.EmptyRemoves(); n != 0 {
		w.t.Errorf("%d removes without values were sent", n)
	}
}

func (w *syncWorld) expect(want map[string][]string) {
	w.t.Helper()
	got := w.scim.Snapshot()
	for g := range want {
		slices.Sort(want[g])
	}
	if len(got) != len(want) {
		w.t.Fatalf("SCIM groups %v, want %v", keys(got), keys(want))
	}
	for g, members := range want {
		if !slices.Equal(got[g], members) {
			w.t.Fatalf("group %q: members %v, want %v", g, got[g], members)
		}
	}
}

func keys(m map[string][]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestSyncEndToEnd(t *testing.T) {
	t.Parallel()
	m := harness.MustStartMoto(t)
	base := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

	t.Run("250 adds to a group missing in SCIM", func(t *testing.T) {
		w := newSyncWorld(t, m, "burst", scimtest.Options{Seed: 1})
		var want []string
		var evs []oktaEvent
		for i := range 250 {
			login := fmt.Sprintf("user%03d@example.com", i)
			id := fmt.Sprintf("00uBURST%03d", i)
			w.scim.AddUser(login, id)
			want = append(want, login)
			evs = append(evs, memberEvent("add", fmt.Sprintf("burst-%03d", i), base.Add(time.Duration(i)*time.Millisecond), id, login, "00gBURST", "AWS_Burst"))
		}
		for start := 0; start < len(evs); start += 50 { // Okta amalgamates events into deliveries
			w.deliver(evs[start : start+50]...)
		}
		n := w.pump()
		w.expect(map[string][]string{"AWS_Burst": want})
		w.checkWire()
		if c := w.scim.Count("POST /Groups"); c != 1 {
			t.Fatalf("%d group creations", c)
		}
		t.Logf("250 changes: %d sync invocations, %d SCIM requests (%.3f per change)", n, w.scim.TotalRequests(), float64(w.scim.TotalRequests())/250)
		if got := len(w.dlq()); got != 0 {
			t.Fatalf("%d messages in the DLQ", got)
		}
	})

	t.Run("add and remove delivered newest first", func(t *testing.T) {
		w := newSyncWorld(t, m, "order", scimtest.Options{Seed: 2})
		w.scim.AddUser("ann@example.com", "00uANN")
		w.scim.AddUser("bob@example.com", "00uBOB")
		// Okta: Ann added then removed; Bob removed then added. Deliveries arrive newest first,
		// and each is processed before the older one arrives.
		w.deliver(memberEvent("remove", "ann-2", base.Add(2*time.Second), "00uANN", "ann@example.com", "00gORD", "AWS_Order"),
			memberEvent("add", "bob-2", base.Add(2*time.Second), "00uBOB", "bob@example.com", "00gORD", "AWS_Order"))
		w.pump()
		w.deliver(memberEvent("add", "ann-1", base.Add(time.Second), "00uANN", "ann@example.com", "00gORD", "AWS_Order"),
			memberEvent("remove", "bob-1", base.Add(time.Second), "00uBOB", "bob@example.com", "00gORD", "AWS_Order"))
		w.pump()
		w.expect(map[string][]string{"AWS_Order": {"bob@example.com"}})
		w.checkWire()
	})

	t.Run("same delivery twice", func(t *testing.T) {
		w := newSyncWorld(t, m, "twice", scimtest.Options{Seed: 3})
		w.scim.AddGroup("AWS_Twice", "")
		var evs []oktaEvent
		for i := range 12 {
			login := fmt.Sprintf("t%02d@example.com", i)
			w.scim.AddUser(login, fmt.Sprintf("00uTW%02d", i))
			evs = append(evs, memberEvent("add", fmt.Sprintf("twice-%02d", i), base, fmt.Sprintf("00uTW%02d", i), login, "00gTW", "AWS_Twice"))
		}
		w.deliver(evs...)
		w.deliver(evs...) // Okta's retry after a timeout, within the FIFO dedup window
		w.pump()
		first := w.scim.Count("PATCH /Groups/{id}")
		// Once more after the changes were applied (moto, unlike SQS, forgets a deleted message's
		// dedup id, so these reach the worker): the ledger knows them, no PATCH is sent.
		w.deliver(evs...)
		w.pump()
		if again := w.scim.Count("PATCH /Groups/{id}"); again != first {
			t.Fatalf("redelivery sent %d more PATCHes", again-first)
		}
		var want []string
		for _, e := range evs {
			want = append(want, e.Login)
		}
		w.expect(map[string][]string{"AWS_Twice": want})
		w.checkWire()
	})

	t.Run("unknown user ends in the DLQ, everything else applied", func(t *testing.T) {
		// The operator's wait, short here so the test sees the DLQ; the backoff is production's.
		w := newSyncWorld(t, m, "unknown", scimtest.Options{Seed: 4}, map[string]string{"UNPROVISIONED_USER_WAIT": "20s"})
		var evs []oktaEvent
		var want []string
		for i := range 6 {
			login := fmt.Sprintf("k%02d@example.com", i)
			w.scim.AddUser(login, fmt.Sprintf("00uK%02d", i))
			want = append(want, login)
			evs = append(evs, memberEvent("add", fmt.Sprintf("known-%02d", i), base.Add(time.Duration(i)*time.Second), fmt.Sprintf("00uK%02d", i), login, "00gUNK", "AWS_Unknown"))
		}
		ghost := memberEvent("add", "ghost-1", base.Add(3500*time.Millisecond), "00uGHOST", "ghost@example.com", "00gUNK", "AWS_Unknown")
		w.deliver(append(evs[:3:3], ghost)...)
		w.deliver(evs[3:]...)
		w.pump()
		w.expect(map[string][]string{"AWS_Unknown": want})
		// The ghost came in a pack with three known users; the worker isolated it, retried it
		// with backoff for UNPROVISIONED_USER_WAIT, then dead-lettered it alone, with the reason.
		msgs := harness.MustReceiveAll(t, w.moto, w.queue.DLQURL)
		if len(msgs) != 1 {
			t.Fatalf("DLQ holds %d messages, want only the ghost's add", len(msgs))
		}
		if cs, err := queue.Decode(msgs[0].Body); err != nil || len(cs) != 1 || cs[0].EventUUID != "ghost-1" {
			t.Fatalf("DLQ holds %q (%v), want only the ghost's add, alone in its message", msgs[0].Body, err)
		}
		if r := msgs[0].MessageAttributes[queue.ReasonAttribute]; !strings.Contains(r, "not provisioned") || !strings.Contains(r, "UNPROVISIONED_USER_WAIT=20s") {
			t.Fatalf("DLQ reason attribute %q", r)
		}
		if logs := w.sync.Logs(); !strings.Contains(logs, "user not provisioned in SCIM") || !strings.Contains(logs, "ghost@example.com") || !strings.Contains(logs, "AWS_Unknown") {
			t.Fatal("no log line names the unknown user and the group")
		}
		if logs := w.sync.Logs(); !strings.Contains(logs, "moved out of their group's way") {
			t.Fatal("the ghost was not isolated from its pack")
		}
		w.checkWire()
	})

	t.Run("GROUP_REGEX selects whole group names", func(t *testing.T) {
		w := newSyncWorld(t, m, "regex", scimtest.Options{Seed: 6}, map[string]string{"GROUP_REGEX": "AWS_(Admins|Dev)"})
		legacy := w.scim.AddGroup("LEGACY_AWS_Dev_x", "")
		var evs []oktaEvent
		for i, g := range []struct{ id, name string }{{"00gRXA", "AWS_Admins"}, {"00gRXD", "AWS_Dev"}, {"00gRXL", "LEGACY_AWS_Dev_x"}, {"00gRXE", "AWS_Admins_EU"}} {
			login := fmt.Sprintf("rx%d@example.com", i)
			w.scim.AddUser(login, fmt.Sprintf("00uRX%d", i))
			evs = append(evs, memberEvent("add", fmt.Sprintf("rx-%d", i), base, fmt.Sprintf("00uRX%d", i), login, g.id, g.name))
		}
		w.deliver(evs...)
		w.pump()
		// Only the two whole-name matches are synced: no member written to the legacy group, no
		// AWS_Admins_EU created.
		w.expect(map[string][]string{"AWS_Admins": {"rx0@example.com"}, "AWS_Dev": {"rx1@example.com"}, "LEGACY_AWS_Dev_x": {}})
		if got := w.scim.Members(legacy); len(got) != 0 {
			t.Fatalf("unselected LEGACY_AWS_Dev_x got members %v", got)
		}
		w.checkWire()
	})

	t.Run("userName differs from the Okta login", func(t *testing.T) {
		w := newSyncWorld(t, m, "extid", scimtest.Options{Seed: 5})
		w.scim.AddUser("jdoe@corp.example", "00uJANE") // provisioned before a login rename in Okta
		w.deliver(memberEvent("add", "jane-1", base, "00uJANE", "jane.doe@example.com", "00gEXT", "AWS_Ext"))
		w.pump()
		w.expect(map[string][]string{"AWS_Ext": {"jdoe@corp.example"}})
		if n := len(w.dlq()); n != 0 {
			t.Fatalf("%d messages in the DLQ", n)
		}
	})

	t.Run("quotes and unicode in names", func(t *testing.T) {
		w := newSyncWorld(t, m, "unicode", scimtest.Options{Seed: 6})
		group := `AWS_Ops "Prod" – Zürich ✓ \ back`
		w.scim.AddUser("zoë.o'brien@example.com", "00uZOE")
		w.scim.AddUser(`"quoted"@example.com`, "00uQUO")
		w.deliver(memberEvent("add", "uni-1", base, "00uZOE", "zoë.o'brien@example.com", "00gUNI", group),
			memberEvent("add", "uni-2", base, "00uQUO", `"quoted"@example.com`, "00gUNI", group))
		w.pump()
		w.expect(map[string][]string{group: {`"quoted"@example.com`, "zoë.o'brien@example.com"}})
		// A second burst finds the group by its displayName instead of creating another one.
		w.scim.AddUser("åsa@example.com", "00uASA")
		w.deliver(memberEvent("add", "uni-3", base.Add(time.Second), "00uASA", "åsa@example.com", "00gUNI", group))
		w.pump()
		w.expect(map[string][]string{group: {`"quoted"@example.com`, "zoë.o'brien@example.com", "åsa@example.com"}})
		w.checkWire()
	})

	t.Run("10% 429 and 5% 500 injected", func(t *testing.T) {
		w := newSyncWorld(t, m, "faults", scimtest.Options{Seed: 7, UnevenPages: true})
		want := map[string][]string{}
		var evs []oktaEvent
		for g := range 3 {
			group := "AWS_Faults" + strconv.Itoa(g)
			gid := fmt.Sprintf("00gF%d", g)
			want[group] = []string{}
			for i := range 40 {
				login := fmt.Sprintf("f%d-%02d@example.com", g, i)
				uid := fmt.Sprintf("00uF%d%02d", g, i)
				if g == 0 {
					w.scim.AddUser(login, uid)
				} else {
					w.scim.AddUser(login, uid)
				}
				at := base.Add(time.Duration(i) * time.Second)
				evs = append(evs, memberEvent("add", fmt.Sprintf("f-%d-%02d", g, i), at, uid, login, gid, group))
				if i%4 == 0 { // a quarter are removed again later
					evs = append(evs, memberEvent("remove", fmt.Sprintf("f-%d-%02d-r", g, i), at.Add(time.Hour), uid, login, gid, group))
				} else {
					want[group] = append(want[group], login)
				}
			}
		}
		w.scim.SetFaults(scimtest.Faults{ThrottleRate: 0.10, ErrorRate: 0.05})
		// Small deliveries: the hook packs a delivery's changes of a group into one message, so
		// large ones would make too few SCIM requests for the injected faults to show reliably.
		for start := 0; start < len(evs); start += 3 {
			w.deliver(evs[start:min(start+3, len(evs))]...)
		}
		w.pump()
		w.scim.SetFaults(scimtest.Faults{})
		w.expect(want)
		w.checkWire()
		if w.scim.Throttled() == 0 || w.scim.ServerErrors() == 0 {
			t.Fatalf("faults not injected: %d throttled, %d 5xx", w.scim.Throttled(), w.scim.ServerErrors())
		}
		if n := len(w.dlq()); n != 0 {
			t.Fatalf("%d messages in the DLQ under transient faults", n)
		}
	})
}
