package syncer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/ledger"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/membership"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/okta"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/queue"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim/scimtest"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scimapply"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/telemetry"
)

var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func selected(name string) bool { return strings.HasPrefix(name, "AWS_") }

// fixture is a worker in front of the SCIM emulator with an in-memory ledger.
type fixture struct {
	t      *testing.T
	srv    *scimtest.Server
	client *scim.Client
	ledger *ledger.Memory
	okta   *fakeOkta
	logs   *lockedBuffer
	emf    *lockedBuffer
	cfg    Config
	seq    int
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type fakeOkta struct{ groups map[string]okta.Group }

func (f *fakeOkta) Group(_ context.Context, id string) (okta.Group, error) {
	g, ok := f.groups[id]
	if !ok {
		return okta.Group{}, &okta.ReadError{Op: "get group", GroupID: id, Status: 404, Err: okta.ErrNotFound}
	}
	return g, nil
}

func newFixture(t *testing.T, mut func(*Config)) *fixture {
	t.Helper()
	srv := scimtest.New(scimtest.Options{})
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	client, err := scim.New(hs.URL+srv.BasePath(), func(context.Context, bool) (string, error) { return scimtest.DefaultToken, nil },
		scim.WithBackoff(time.Millisecond, 5*time.Millisecond), scim.WithMaxRetries(3), scim.WithRandSeed(7))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, srv: srv, client: client, ledger: ledger.NewMemory(), okta: &fakeOkta{groups: map[string]okta.Group{
		"00gA": {ID: "00gA", Name: "AWS_Admins"}, "00gB": {ID: "00gB", Name: "AWS_Dev"}}},
		logs: &lockedBuffer{}, emf: &lockedBuffer{}}
	f.cfg = Config{
		SCIM:         client,
		Dir:          scimapply.NewDirectory(client, scimapply.WithSelection(selected)),
		Ledger:       f.ledger,
		Okta:         f.okta,
		Selected:     selected,
		CreateGroups: true,
		Log:          telemetry.NewLogger(f.logs, slog.LevelDebug),
		MetricsOut:   f.emf,
		Namespace:    "Test",
		Now:          func() time.Time { return t0.Add(time.Hour) },
	}
	if mut != nil {
		mut(&f.cfg)
	}
	return f
}

// event builds the SQS event Lambda's FIFO event source mapping delivers, from queue.Encode bodies.
func (f *fixture) event(changes ...membership.Change) []byte {
	f.t.Helper()
	var ev events.SQSEvent
	for _, c := range changes {
		e, err := queue.Encode(c)
		if err != nil {
			f.t.Fatal(err)
		}
		f.seq++
		ev.Records = append(ev.Records, sqsMessage(fmt.Sprintf("msg-%03d", f.seq), e.Body, e.GroupID, e.DedupID, f.seq))
	}
	b, err := json.Marshal(ev)
	if err != nil {
		f.t.Fatal(err)
	}
	return b
}

func sqsMessage(id, body, group, dedup string, seq int) events.SQSMessage {
	return events.SQSMessage{
		MessageId:     id,
		ReceiptHandle: "AQEB" + id,
		Body:          body,
		Md5OfBody:     "",
		Attributes: map[string]string{
			"ApproximateReceiveCount":          "1",
			"SentTimestamp":                    "1714564800000",
			"SequenceNumber":                   fmt.Sprintf("1862706046760744%04d", seq),
			"MessageGroupId":                   group,
			"SenderId":                         "AROAEXAMPLE:okta-aws-sso-sync-hook",
			"MessageDeduplicationId":           dedup,
			"ApproximateFirstReceiveTimestamp": "1714564800010",
		},
		MessageAttributes: map[string]events.SQSMessageAttribute{},
		EventSourceARN:    "arn:aws:sqs:us-east-1:123456789012:okta-aws-sso-sync.fifo",
		EventSource:       "aws:sqs",
		AWSRegion:         "us-east-1",
	}
}

// invoke pushes the payload through the Lambda library's own decoding, as the runtime does.
func (f *fixture) invoke(ctx context.Context, payload []byte) (failed []string) {
	f.t.Helper()
	h := NewHandler(f.cfg)
	out, err := lambda.NewHandler(h.Handle).Invoke(ctx, payload)
	if err != nil {
		f.t.Fatalf("invoke: %v", err)
	}
	var resp events.SQSEventResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		f.t.Fatalf("response %s: %v", out, err)
	}
	for _, item := range resp.BatchItemFailures {
		failed = append(failed, item.ItemIdentifier)
	}
	return failed
}

func (f *fixture) user(login, oktaID string) string { return f.srv.AddUser(login, oktaID) }

func change(kind membership.Kind, uuid string, at time.Time, userID, login, groupID, group string) membership.Change {
	return membership.Change{EventUUID: uuid, Published: at, Kind: kind, UserID: userID, Login: login, GroupID: groupID, GroupName: group}
}

func add(uuid string, at time.Time, userID, login string) membership.Change {
	return change(membership.KindAdd, uuid, at, userID, login, "00gA", "AWS_Admins")
}

func remove(uuid string, at time.Time, userID, login string) membership.Change {
	return change(membership.KindRemove, uuid, at, userID, login, "00gA", "AWS_Admins")
}

func (f *fixture) members(group string) []string { return f.srv.Snapshot()[group] }

func (f *fixture) metric(name string) float64 {
	var total float64
	for _, line := range strings.Split(strings.TrimSpace(f.emf.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		if v, ok := m[name].(float64); ok {
			total += v
		}
	}
	return total
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestFixtureDecodesThroughTheLambdaLibrary(t *testing.T) {
	f := newFixture(t, nil)
	f.user("ann@example.com", "00uAnn")
	payload, err := os.ReadFile("testdata/sqs-batch.json")
	if err != nil {
		t.Fatal(err)
	}
	if failed := f.invoke(context.Background(), payload); len(failed) != 0 {
		t.Fatalf("failed %v", failed)
	}
	if got := f.members("AWS_Admins"); !equal(got, []string{"ann@example.com"}) {
		t.Fatalf("members %v", got)
	}
}

func TestBatchCreatesGroupAppliesAndRecords(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	f.user("ann@example.com", "00uAnn")
	f.user("bob@example.com", "00uBob")
	f.user("cat@example.com", "00uCat")
	failed := f.invoke(ctx, f.event(
		add("e1", t0, "00uAnn", "ann@example.com"),
		add("e2", t0, "00uBob", "bob@example.com"),
		add("e3", t0, "00uCat", "cat@example.com"),
		remove("e4", t0.Add(time.Second), "00uCat", "cat@example.com"),
	))
	if len(failed) != 0 {
		t.Fatalf("failed %v", failed)
	}
	if got := f.members("AWS_Admins"); !equal(got, []string{"ann@example.com", "bob@example.com"}) {
		t.Fatalf("members %v", got)
	}
	gid, _ := f.srv.GroupID("AWS_Admins")
	if _, ok := f.srv.GroupID("AWS_Admins"); !ok || gid == "" {
		t.Fatal("group not created")
	}
	// 3 winners: 2 adds in one PATCH; Cat's remove is a PATCH of one value (the worker does not
	// read membership first: the ledger tells what is already true).
	if n := f.srv.Count("PATCH /Groups/{id}"); n != 2 {
		t.Fatalf("%d PATCHes, want 2", n)
	}
	// 3 membership marks and the created group's name mark.
	if f.ledger.Len() != 4 {
		t.Fatalf("ledger has %d marks, want 4", f.ledger.Len())
	}
	if f.metric("ChangesApplied") != 3 || f.metric("ChangesSkipped") != 1 || f.metric("ScimRequests") == 0 {
		t.Fatalf("metrics: %s", f.emf.String())
	}
	logs := f.logs.String()
	for _, want := range []string{`"msg":"audit"`, `"event_uuid":"e1"`, `"op":"create_group"`, `"scim_request_id"`} {
		if !strings.Contains(logs, want) {
			t.Fatalf("logs lack %s:\n%s", want, logs)
		}
	}
}

func TestNewestFirstDeliveryKeepsTheNewest(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	f.user("ann@example.com", "00uAnn")
	// Okta: add at t0, remove at t0+1s; delivered remove first, in separate batches.
	if failed := f.invoke(ctx, f.event(remove("e2", t0.Add(time.Second), "00uAnn", "ann@example.com"))); len(failed) != 0 {
		t.Fatalf("failed %v", failed)
	}
	f.srv.ResetCounters()
	if failed := f.invoke(ctx, f.event(add("e1", t0, "00uAnn", "ann@example.com"))); len(failed) != 0 {
		t.Fatalf("failed %v", failed)
	}
	if got := f.members("AWS_Admins"); len(got) != 0 {
		t.Fatalf("members %v: the late add undid the newer remove", got)
	}
	if n := f.srv.Count("PATCH /Groups/{id}"); n != 0 {
		t.Fatalf("%d PATCHes for a stale change", n)
	}
}

func TestRedeliveryCostsNoSCIMRequest(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	f.user("ann@example.com", "00uAnn")
	f.user("bob@example.com", "00uBob")
	batch := []membership.Change{add("e1", t0, "00uAnn", "ann@example.com"), add("e2", t0, "00uBob", "bob@example.com")}
	if failed := f.invoke(ctx, f.event(batch...)); len(failed) != 0 {
		t.Fatalf("failed %v", failed)
	}
	f.srv.ResetCounters()
	// Twice more: as two deliveries and duplicated within one batch.
	if failed := f.invoke(ctx, f.event(append(batch, batch...)...)); len(failed) != 0 {
		t.Fatalf("failed %v", failed)
	}
	if n := f.srv.TotalRequests(); n != 0 {
		t.Fatalf("%d SCIM requests for a redelivery", n)
	}
	if got := f.members("AWS_Admins"); !equal(got, []string{"ann@example.com", "bob@example.com"}) {
		t.Fatalf("members %v", got)
	}
}

func TestUnknownUserFailsOnlyItsNewerMessages(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	f.user("ann@example.com", "00uAnn")
	f.user("bob@example.com", "00uBob")
	failed := f.invoke(ctx, f.event(
		add("e1", t0, "00uAnn", "ann@example.com"),                                           // msg-001
		remove("e2", t0, "00uGhost", "ghost@example.com"),                                    // msg-002 older: superseded
		add("e3", t0.Add(time.Second), "00uGhost", "ghost@example.com"),                      // msg-003 fails
		add("e3", t0.Add(time.Second), "00uGhost", "ghost@example.com"),                      // msg-004 duplicate: fails
		add("e4", t0.Add(2*time.Second), "00uBob", "bob@example.com"),                        // msg-005 same FIFO group: applied
		change(membership.KindAdd, "e5", t0, "00uBob", "bob@example.com", "00gB", "AWS_Dev"), // msg-006
	))
	if !equal(failed, []string{"msg-003", "msg-004"}) {
		t.Fatalf("failed %v, want msg-003 and msg-004", failed)
	}
	snap := f.srv.Snapshot()
	if !equal(snap["AWS_Admins"], []string{"ann@example.com", "bob@example.com"}) || !equal(snap["AWS_Dev"], []string{"bob@example.com"}) {
		t.Fatalf("snapshot %v", snap)
	}
	logs := f.logs.String()
	if !strings.Contains(logs, "user not provisioned in SCIM") || !strings.Contains(logs, `"user":"ghost@example.com"`) || !strings.Contains(logs, `"user_id":"00uGhost"`) {
		t.Fatalf("no readable log line for the unknown user:\n%s", logs)
	}
	if f.metric("UnknownUsers") != 1 {
		t.Fatalf("UnknownUsers metric: %s", f.emf.String())
	}
	// The unknown user's failed change is not in the ledger; the others are.
	marks, _ := f.ledger.Get(ctx, []membership.Key{{GroupID: "00gA", UserID: "00uGhost"}, {GroupID: "00gA", UserID: "00uBob"}})
	if _, ok := marks[membership.Key{GroupID: "00gA", UserID: "00uGhost"}]; ok || len(marks) != 1 {
		t.Fatalf("marks %v", marks)
	}

	// Provisioned meanwhile: the redelivery (SQS after the visibility timeout) succeeds.
	f.user("ghost@example.com", "00uGhost")
	if failed := f.invoke(ctx, f.event(add("e3", t0.Add(time.Second), "00uGhost", "ghost@example.com"))); len(failed) != 0 {
		t.Fatalf("retry failed %v", failed)
	}
	if got := f.members("AWS_Admins"); len(got) != 3 {
		t.Fatalf("members %v", got)
	}
}

func TestUndecodableMessageIsReportedNotDropped(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	f.user("ann@example.com", "00uAnn")
	var ev events.SQSEvent
	if err := json.Unmarshal(f.event(add("e1", t0, "00uAnn", "ann@example.com")), &ev); err != nil {
		t.Fatal(err)
	}
	ev.Records = append(ev.Records,
		sqsMessage("bad-json", "{not json", "00gA", "d1", 90),
		sqsMessage("bad-version", `{"v":99,"change":{}}`, "00gA", "d2", 91))
	payload, _ := json.Marshal(ev)
	failed := f.invoke(ctx, payload)
	if !equal(failed, []string{"bad-json", "bad-version"}) {
		t.Fatalf("failed %v", failed)
	}
	if got := f.members("AWS_Admins"); !equal(got, []string{"ann@example.com"}) {
		t.Fatalf("members %v", got)
	}
	logs := f.logs.String()
	if !strings.Contains(logs, `"message_id":"bad-json"`) || !strings.Contains(logs, `"message_id":"bad-version"`) || !strings.Contains(logs, "unsupported") {
		t.Fatalf("logs:\n%s", logs)
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, func(c *Config) { c.DryRun = true })
	f.user("ann@example.com", "00uAnn")
	gid := f.srv.AddGroup("AWS_Dev", "00gB")
	bob := f.user("bob@example.com", "00uBob")
	f.srv.AddMember(gid, bob)
	failed := f.invoke(ctx, f.event(
		add("e1", t0, "00uAnn", "ann@example.com"),
		change(membership.KindRemove, "e2", t0, "00uBob", "bob@example.com", "00gB", "AWS_Dev"),
		change(membership.KindAdd, "e3", t0, "00uAnn", "ann@example.com", "00gB", "AWS_Dev"),
	))
	if len(failed) != 0 {
		t.Fatalf("failed %v", failed)
	}
	snap := f.srv.Snapshot()
	if _, ok := snap["AWS_Admins"]; ok || !equal(snap["AWS_Dev"], []string{"bob@example.com"}) {
		t.Fatalf("dry run changed SCIM: %v", snap)
	}
	if f.srv.Writes() != 0 || f.ledger.Len() != 0 {
		t.Fatalf("dry run wrote something: %v", f.srv.Requests())
	}
	if !strings.Contains(f.logs.String(), `"result":"dry_run"`) {
		t.Fatalf("plan not logged:\n%s", f.logs.String())
	}
}

// A dry run with a hand-made AWS group to adopt (no externalId), a rename event and a membership
// event carrying a newer name: the plan is logged (adoption, renames, adds, removes as dry_run
// audit records) and the emulator sees no write at all, externalId included.
func TestDryRunAdoptionAndRenameWriteNothing(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, func(c *Config) { c.DryRun = true })
	f.user("ann@example.com", "00uAnn")
	bob := f.user("bob@example.com", "00uBob")
	hand := f.srv.AddGroup("AWS_Dev", "") // made by hand in AWS: adoptable by name
	f.srv.AddMember(hand, bob)
	f.srv.AddGroup("AWS_Old", "00gA") // renamed in Okta to AWS_Admins
	f.srv.AddGroup("AWS_Stale", "00gC")
	f.okta.groups["00gC"] = okta.Group{ID: "00gC", Name: "AWS_Fresh"}
	failed := f.invoke(ctx, f.event(
		change(membership.KindRename, "e1", t0, "", "", "00gA", "AWS_Old"),
		change(membership.KindAdd, "e2", t0.Add(time.Second), "00uAnn", "ann@example.com", "00gB", "AWS_Dev"),
		change(membership.KindRemove, "e3", t0.Add(time.Second), "00uBob", "bob@example.com", "00gB", "AWS_Dev"),
		// No rename event for 00gC: the membership event's name is newer than the AWS name.
		change(membership.KindAdd, "e4", t0.Add(time.Second), "00uAnn", "ann@example.com", "00gC", "AWS_Fresh"),
	))
	if len(failed) != 0 {
		t.Fatalf("failed %v\n%s", failed, f.logs.String())
	}
	if n := f.srv.Writes(); n != 0 {
		t.Fatalf("dry run sent %d SCIM writes: %v", n, f.srv.Requests())
	}
	if f.ledger.Len() != 0 {
		t.Fatalf("dry run wrote %d marks", f.ledger.Len())
	}
	for _, g := range f.srv.Groups() {
		if g.DisplayName == "AWS_Dev" && g.ExternalID != "" {
			t.Fatalf("hand-made group got externalId %q in a dry run", g.ExternalID)
		}
	}
	logs := f.logs.String()
	for _, want := range []string{
		`"op":"adopt_group","result":"dry_run"`,
		`"op":"rename","result":"dry_run","group":"AWS_Admins","group_id":"00gA","reason":"was AWS_Old"`,
		`"op":"rename","result":"dry_run","group":"AWS_Fresh","group_id":"00gC","reason":"was AWS_Stale"`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("plan lacks %s", want)
		}
	}
	audits := 0
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, `"result":"dry_run"`) && (strings.Contains(l, `"op":"add"`) || strings.Contains(l, `"op":"remove"`)) {
			audits++
		}
	}
	if audits != 3 {
		t.Errorf("%d dry_run member audit records, want 3 (ann to AWS_Dev and AWS_Fresh, bob out of AWS_Dev)\n%s", audits, logs)
	}
	if strings.Contains(logs, "refused") {
		t.Errorf("a path wrote without planning (refused by the read-only client):\n%s", logs)
	}
}

func TestDeadlineReportsEverythingUnapplied(t *testing.T) {
	f := newFixture(t, nil)
	f.user("ann@example.com", "00uAnn")
	ctx, cancel := context.WithTimeout(context.Background(), time.Second) // less than the 2 s margin
	defer cancel()
	failed := f.invoke(ctx, f.event(add("e1", t0, "00uAnn", "ann@example.com"),
		change(membership.KindRename, "e2", t0, "", "", "00gA", "AWS_Admins")))
	if len(failed) != 2 {
		t.Fatalf("failed %v, want both", failed)
	}
	if n := f.srv.TotalRequests(); n != 0 {
		t.Fatalf("%d SCIM requests after the soft deadline", n)
	}
}

func TestUnauthorizedIsLoudAndFailsTheChanges(t *testing.T) {
	f := newFixture(t, nil)
	f.user("ann@example.com", "00uAnn")
	f.srv.AddGroup("AWS_Admins", "00gA")
	f.srv.ExpireToken(true)
	failed := f.invoke(context.Background(), f.event(add("e1", t0, "00uAnn", "ann@example.com")))
	if !equal(failed, []string{"msg-001"}) {
		t.Fatalf("failed %v", failed)
	}
	if f.metric("ScimUnauthorized") != 1 {
		t.Fatalf("no ScimUnauthorized metric: %s", f.emf.String())
	}
	if !strings.Contains(f.logs.String(), "SCIM rejected the bearer token") || strings.Contains(f.logs.String(), scimtest.DefaultToken) {
		t.Fatalf("logs:\n%s", f.logs.String())
	}
}

func TestCreateGroupsDisabled(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.CreateGroups = false })
	f.user("ann@example.com", "00uAnn")
	failed := f.invoke(context.Background(), f.event(
		add("e1", t0, "00uAnn", "ann@example.com"),
		change(membership.KindRemove, "e2", t0, "00uAnn", "ann@example.com", "00gB", "AWS_Dev"),
	))
	if !equal(failed, []string{"msg-001"}) {
		t.Fatalf("failed %v: the add must wait for the group, the remove is already true", failed)
	}
	if len(f.srv.Snapshot()) != 0 {
		t.Fatal("a group was created")
	}
}

func TestRenameFollowsOkta(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	f.user("ann@example.com", "00uAnn")
	f.srv.AddGroup("AWS_Old", "00gA")
	f.srv.AddGroup("AWS_Keep", "")
	f.okta.groups["00gA"] = okta.Group{ID: "00gA", Name: `AWS_New "prod" ✓`}
	f.okta.groups["00gK"] = okta.Group{ID: "00gK", Name: "Finance"}
	failed := f.invoke(ctx, f.event(
		change(membership.KindRename, "e1", t0, "", "", "00gA", "AWS_Old"),
		change(membership.KindAdd, "e2", t0.Add(time.Second), "00uAnn", "ann@example.com", "00gA", `AWS_New "prod" ✓`),
		change(membership.KindRename, "e3", t0, "", "", "00gK", "AWS_Keep"),
	))
	if len(failed) != 0 {
		t.Fatalf("failed %v", failed)
	}
	snap := f.srv.Snapshot()
	want := map[string][]string{`AWS_New "prod" ✓`: {"ann@example.com"}, "AWS_Keep": {}}
	if len(snap) != len(want) || !equal(snap[`AWS_New "prod" ✓`], want[`AWS_New "prod" ✓`]) || snap["AWS_Keep"] == nil {
		t.Fatalf("snapshot %v, want %v (renamed out of the selection: left alone)", snap, want)
	}
}

func TestRenameWithoutOktaIsAcknowledged(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Okta = nil })
	f.srv.AddGroup("AWS_Old", "00gA")
	if failed := f.invoke(context.Background(), f.event(change(membership.KindRename, "e1", t0, "", "", "00gA", "AWS_Old"))); len(failed) != 0 {
		t.Fatalf("failed %v", failed)
	}
	if !strings.Contains(f.logs.String(), "new name is applied with the group's next membership event") {
		t.Fatalf("logs:\n%s", f.logs.String())
	}
}

func TestGroupDelete(t *testing.T) {
	for _, del := range []bool{false, true} {
		t.Run(fmt.Sprint("DELETE_GROUPS=", del), func(t *testing.T) {
			f := newFixture(t, func(c *Config) { c.DeleteGroups = del })
			f.user("ann@example.com", "00uAnn")
			f.srv.AddGroup("AWS_Admins", "00gA")
			f.srv.AddGroup("Other", "00gO")
			failed := f.invoke(context.Background(), f.event(
				add("e1", t0, "00uAnn", "ann@example.com"),
				change(membership.KindGroupDelete, "e2", t0.Add(time.Second), "", "", "00gA", "AWS_Admins"),
				change(membership.KindGroupDelete, "e3", t0, "", "", "00gO", "Other"),
			))
			if len(failed) != 0 {
				t.Fatalf("failed %v", failed)
			}
			_, exists := f.srv.GroupID("AWS_Admins")
			if exists == del {
				t.Fatalf("AWS_Admins exists=%v with DELETE_GROUPS=%v", exists, del)
			}
			if _, ok := f.srv.GroupID("Other"); !ok {
				t.Fatal("an unselected group was deleted")
			}
		})
	}
}

// DELETE_GROUPS=true: a batch's older removes of a group being deleted are acknowledged only
// once the delete succeeded. While the delete fails they are retried with it, so the member is
// never left in an AWS group that stays, with its remove acknowledged.
func TestGroupDeleteFailureRetriesTheOlderRemoves(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.DeleteGroups = true })
	ann := f.user("ann@example.com", "00uAnn")
	admins := f.srv.AddGroup("AWS_Admins", "00gA")
	f.srv.AddMember(admins, ann)
	var deleteFails atomic.Bool
	deleteFails.Store(true)
	f.srv.SetFaultFunc(func(route string, _ *http.Request) *scimtest.Fault {
		if route == "DELETE /Groups/{id}" && deleteFails.Load() {
			return &scimtest.Fault{Status: http.StatusInternalServerError}
		}
		return nil
	})
	rm := remove("r1", t0, "00uAnn", "ann@example.com")
	del := change(membership.KindGroupDelete, "d1", t0.Add(time.Second), "", "", "00gA", "AWS_Admins")
	failed := f.invoke(context.Background(), f.event(rm, del))
	if len(failed) != 2 {
		t.Fatalf("failed %v: want the delete and the older remove retried while the delete fails", failed)
	}
	if got := f.members("AWS_Admins"); !equal(got, []string{"ann@example.com"}) {
		t.Fatalf("members %v: nothing is applied before the delete", got)
	}
	deleteFails.Store(false)
	if failed := f.invoke(context.Background(), f.event(rm, del)); len(failed) != 0 {
		t.Fatalf("retry failed %v", failed)
	}
	if _, ok := f.srv.GroupID("AWS_Admins"); ok {
		t.Fatal("the group was not deleted on the retry")
	}
}

// A deactivation of a user AWS does not have is acknowledged without a PATCH (users_test.go covers
// the removals of a provisioned user).
func TestUserDeactivateOfAnUnknownUserIsAcknowledged(t *testing.T) {
	f := newFixture(t, nil)
	c := membership.Change{EventUUID: "e1", Published: t0, Kind: membership.KindUserDeactivate, UserID: "00uAnn", Login: "ann@example.com"}
	if failed := f.invoke(context.Background(), f.event(c)); len(failed) != 0 {
		t.Fatalf("failed %v", failed)
	}
	if n := f.srv.Count("PATCH /Groups/{id}"); n != 0 {
		t.Fatalf("%d PATCHes for a user not in SCIM", n)
	}
}

func TestGroupDeletedInOktaIsNotCreated(t *testing.T) {
	f := newFixture(t, nil)
	f.user("ann@example.com", "00uAnn")
	delete(f.okta.groups, "00gA")
	if failed := f.invoke(context.Background(), f.event(add("e1", t0, "00uAnn", "ann@example.com"))); len(failed) != 0 {
		t.Fatalf("failed %v", failed)
	}
	if len(f.srv.Snapshot()) != 0 {
		t.Fatal("a group deleted in Okta was created in SCIM")
	}
}

// flakyLedger fails reads or writes (Put and PutReport; Claim; Finalize).
type flakyLedger struct {
	ledger.Ledger
	failGet, failPut, failClaim, failFinalize bool
}

func (f *flakyLedger) Claim(ctx context.Context, recs []ledger.Record) ([]bool, error) {
	if f.failClaim {
		return make([]bool, len(recs)), errors.New("ProvisionedThroughputExceededException")
	}
	return f.Ledger.Claim(ctx, recs)
}

func (f *flakyLedger) Finalize(ctx context.Context, recs []ledger.Record) ([]bool, error) {
	if f.failFinalize {
		return make([]bool, len(recs)), errors.New("ProvisionedThroughputExceededException")
	}
	return f.Ledger.Finalize(ctx, recs)
}

func (f *flakyLedger) Get(ctx context.Context, keys []membership.Key) (map[membership.Key]membership.Mark, error) {
	if f.failGet {
		return nil, errors.New("ProvisionedThroughputExceededException")
	}
	return f.Ledger.Get(ctx, keys)
}

func (f *flakyLedger) Put(ctx context.Context, recs []ledger.Record) error {
	if f.failPut {
		return errors.New("ProvisionedThroughputExceededException")
	}
	return f.Ledger.Put(ctx, recs)
}

func (f *flakyLedger) PutReport(ctx context.Context, recs []ledger.Record) ([]bool, error) {
	if f.failPut {
		return make([]bool, len(recs)), errors.New("ProvisionedThroughputExceededException")
	}
	return f.Ledger.PutReport(ctx, recs)
}

func TestLedgerFailuresRetryTheChanges(t *testing.T) {
	for _, tc := range []struct {
		name                             string
		failGet, failClaim, failFinalize bool
		wantMembers                      int
	}{
		{"read", true, false, false, 0},     // no ordering memory: nothing is applied
		{"claim", false, true, false, 0},    // no claim, no PATCH (the single-writer rule)
		{"finalize", false, false, true, 1}, // applied, but retried until the mark is final
	} {
		t.Run(tc.name, func(t *testing.T) {
			var fl *flakyLedger
			f := newFixture(t, func(c *Config) {
				fl = &flakyLedger{Ledger: c.Ledger, failGet: tc.failGet, failClaim: tc.failClaim, failFinalize: tc.failFinalize}
				c.Ledger = fl
			})
			f.user("ann@example.com", "00uAnn")
			failed := f.invoke(context.Background(), f.event(add("e1", t0, "00uAnn", "ann@example.com"), add("e1", t0, "00uAnn", "ann@example.com")))
			if len(failed) != 2 {
				t.Fatalf("failed %v, want both copies of the change", failed)
			}
			if got := len(f.members("AWS_Admins")); got != tc.wantMembers {
				t.Fatalf("%d members, want %d", got, tc.wantMembers)
			}
			// The redelivery after the ledger recovered succeeds (the PATCH is idempotent).
			fl.failGet, fl.failClaim, fl.failFinalize = false, false, false
			if failed := f.invoke(context.Background(), f.event(add("e1", t0, "00uAnn", "ann@example.com"))); len(failed) != 0 {
				t.Fatalf("retry failed %v", failed)
			}
			if got := f.members("AWS_Admins"); !equal(got, []string{"ann@example.com"}) {
				t.Fatalf("members %v", got)
			}
		})
	}
}
