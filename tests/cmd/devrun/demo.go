package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/queue"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/tests/harness"
)

// delivery is one events/ sample the demo sends to the hook, with the admin's action in Okta
// that produced it (applied to the Okta fake first, so Okta's API agrees with the event).
type delivery struct {
	file  string
	story string
	okta  func(w *world) error
}

// demoPlan is the replay: Okta's verification, the deliveries in the order their events were
// published, then the requests the hook must refuse.
func demoPlan() []delivery {
	return []delivery{
		{file: "hook-verification.json", story: "Okta verifies the new event hook (one-time GET)"},
		{file: "hook-verification-wrong-auth.json", story: "the same GET with a wrong secret"},
		{file: "hook-delivery-membership.json", story: "10:15 Jane and Bob added to AWS_Engineers, Jane to Marketing; Bob and Jane removed from AWS_ReadOnly",
			okta: func(w *world) error {
				return firstErr(w.oktaAdd(engineersID, janeID), w.oktaAdd(engineersID, bobID), w.oktaAdd(marketingID, janeID),
					w.oktaRemove(readOnlyID, bobID), w.oktaRemove(readOnlyID, janeID))
			}},
		{file: "hook-delivery-failure.json", story: "10:16 adding Carol to AWS_Engineers failed in Okta"},
		{file: "hook-delivery-rename.json", story: "10:17 AWS_Engineers renamed to " + engineering + " (the event does not carry the new name)",
			okta: func(w *world) error { return w.oktaRename(engineersID, engineering) }},
		{file: "hook-delivery-group-delete.json", story: "10:18 AWS_ReadOnly deleted in Okta",
			okta: func(w *world) error { return w.oktaDelete(readOnlyID) }},
		{file: "hook-delivery-user-deactivate.json", story: "10:19 Carol deactivated",
			okta: func(w *world) error { return w.oktaDeactivate(carolID) }},
		{file: "hook-delivery-base64.json", story: "10:20 Carol, deactivated, added to AWS_ReadOnly (base64-encoded body; a deactivated user gets no AWS membership)"},
		{file: "hook-delivery-user-suspend.json", story: "10:21 Bob suspended (he keeps his groups: Okta blocks his sign-in)",
			okta: func(w *world) error { return w.oktaStatus(bobID, "SUSPENDED") }},
		{file: "hook-delivery-user-unsuspend.json", story: "10:22 Bob unsuspended",
			okta: func(w *world) error { return w.oktaStatus(bobID, "ACTIVE") }},
		{file: "hook-delivery-user-reactivate.json", story: "10:23 Carol reactivated (the groups Okta still lists are restored)",
			okta: func(w *world) error { return w.oktaStatus(carolID, "ACTIVE") }},
		{file: "hook-wrong-auth.json", story: "a delivery with the wrong secret"},
		{file: "hook-missing-auth.json", story: "a delivery without the auth header"},
		{file: "hook-malformed.json", story: "a delivery cut off halfway"},
		{file: "hook-wrong-shape.json", story: "an Okta inline hook request sent to the event hook"},
		{file: "hook-wrong-content-type.json", story: "a form post"},
	}
}

// The reconcile payloads the demo replays: a manual dry run, then the scheduled event.
const (
	reconcileDryRunFile   = "reconcile-manual-dry-run.json"
	reconcileScheduleFile = "reconcile-schedule.json"
)

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// demoOptions configure runDemo.
type demoOptions struct {
	eventsDir string
	verbose   io.Writer // nil: function logs are not streamed
	moto      *harness.Moto
}

// arrival is what the hook did with one request.
type arrival struct {
	file             string
	method           string
	status           int
	body             string
	events, enqueued int
	dropped          map[string]int
	batches          []batch
	hookLog          logLine
	invokeErr        error
}

// reconcileRun is one reconcile invocation.
type reconcileRun struct {
	file    string
	summary reconcileSummary
	err     error
	audits  []logLine
}

// reconcileSummary is the part of the reconciler's summary the demo prints.
type reconcileSummary struct {
	DryRun         bool `json:"dryRun"`
	GroupsSelected int  `json:"groupsSelected"`
	GroupsChecked  int  `json:"groupsChecked"`
	GroupsInSync   int  `json:"groupsInSync"`
	GroupsCreated  int  `json:"groupsCreated"`
	Adds           int  `json:"adds"`
	Removes        int  `json:"removes"`
	Added          int  `json:"added"`
	Removed        int  `json:"removed"`
	Failed         int  `json:"failed"`
	Blocked        bool `json:"blocked"`
	UnknownUsers   int  `json:"unknownUsers"`
	Skipped        []struct {
		Group, Reason string
	} `json:"skipped"`
	ScimRequests int64 `json:"scimRequests"`
	OktaRequests int64 `json:"oktaRequests"`
}

// deadLetter is one message in the DLQ, with the reason the sync logged for it.
type deadLetter struct {
	change string
	reason string
}

// demoResult is what the demo found, for its summary and its test.
type demoResult struct {
	arrivals   []arrival
	reconciles []reconcileRun
	membership []groupMembers
	dlq        []deadLetter
	scimRoutes map[string]int
	scim       struct{ emptyRemoves, maxPatchValues int }
	elapsed    time.Duration
}

// runDemo replays the events/ samples through the real functions against the local world and
// writes the summary to out.
func runDemo(ctx context.Context, opts demoOptions, out io.Writer) (*demoResult, error) {
	start := time.Now()
	p := &printer{w: out}
	p.line("okta-aws-sso-sync demo: Okta event hook → SQS FIFO → AWS IAM Identity Center (SCIM), all on this machine.")
	p.line("No AWS account, no network: moto_server plays SQS, Secrets Manager and DynamoDB, an emulator plays")
	p.line("the AWS SSO SCIM endpoint, a fake plays the Okta API. The functions are the real bootstraps under a")
	p.line("local Lambda Runtime API.")
	p.line("")

	if opts.eventsDir == "" {
		root, err := harness.ModuleRoot()
		if err != nil {
			return nil, err
		}
		opts.eventsDir = filepath.Join(root, "events")
	}
	prebuild("hook", "sync", "reconcile")
	w, err := startWorld(ctx, opts.moto, "demo")
	if err != nil {
		return nil, err
	}
	defer w.close()
	if opts.verbose != nil {
		w.logs, w.prefix = opts.verbose, true
	}
	fns := map[string]*harness.Runtime{}
	for _, fn := range []string{"hook", "sync", "reconcile"} {
		if fns[fn], err = w.start(fn); err != nil {
			return nil, err
		}
	}
	p.line("Setup (%.1fs)", time.Since(start).Seconds())
	p.table([][]string{
		{"  moto_server", w.moto.Endpoint, "queue " + filepath.Base(w.queue.URL) + " (template settings: visibility " + fmt.Sprint(visibilitySec) + " s, DLQ after " + fmt.Sprint(maxReceive) + " receives), secret, state table"},
		{"  AWS SSO SCIM", w.scimURL, "bearer token = the secret's aws_sso_scim_key"},
		{"  Okta API", w.oktaURL, "SSWS token = the secret's okta_api_token"},
		{"  functions", "hook, sync, reconcile", "built once, each running under its own Lambda runtime"},
	})
	p.line("")
	printBefore(p)

	res := &demoResult{}
	hookLogs := logCursor{rt: fns["hook"]}
	m := newMapping(w, fns["sync"])
	p.line("1. Okta calls the hook (events/*.json, API Gateway proxy events); sync drains the FIFO queue")
	p.line("   (batches of up to %d; failures backed off by the worker, unknown users waited for %s, then the DLQ)", batchSize, userWait)
	for _, d := range demoPlan() {
		if d.okta != nil {
			if err := d.okta(w); err != nil {
				return nil, fmt.Errorf("okta fake: %s: %w", d.file, err)
			}
		}
		a, err := deliver(ctx, fns["hook"], &hookLogs, filepath.Join(opts.eventsDir, d.file))
		if err != nil {
			return nil, err
		}
		p.line("")
		p.line("   %s — %s", d.file, d.story)
		p.line("     hook: %s", a.describe())
		if a.enqueued > 0 {
			a.batches, err = m.drain(ctx, nil)
			for _, b := range a.batches {
				printBatch(p, b, "       ")
			}
			if err != nil {
				return nil, err
			}
		}
		res.arrivals = append(res.arrivals, a)
	}
	p.line("")

	p.line("2. The reconciler compares Okta (API) with AWS (SCIM) for the AWS_ groups and repairs the drift")
	recLogs := logCursor{rt: fns["reconcile"]}
	for _, f := range []string{reconcileDryRunFile, reconcileScheduleFile} {
		r := reconcile(ctx, fns["reconcile"], &recLogs, filepath.Join(opts.eventsDir, f))
		res.reconciles = append(res.reconciles, r)
		p.line("")
		p.line("   %s: %s", f, r.describe())
		for _, a := range r.audits {
			printAudit(p, "         ", a)
		}
	}
	p.line("")

	res.membership = w.membership()
	p.line("3. Result: AWS group membership (the SCIM emulator's state)")
	var rows [][]string
	for _, g := range res.membership {
		rows = append(rows, []string{"   " + g.group, formatMembers(g.members)})
	}
	p.table(rows)
	p.line("   sync renamed %s to %s (the event lacks the new name: read from Okta's API).", engineers, engineering)
	p.line("   %s was deleted in Okta; AWS keeps it and its permission sets (DELETE_GROUPS=false).", readOnly)
	p.line("   The reconciler added Dave and created %s (events lost) and removed Eve (added by hand in AWS).", admins)
	p.line("")

	dead, err := w.dlq(ctx)
	if err != nil {
		return nil, err
	}
	syncLogs := parseLogs(fns["sync"].Output().Lines())
	for _, x := range dead {
		res.dlq = append(res.dlq, deadLetterOf(x, syncLogs))
	}
	res.scimRoutes = w.scim.Requests()
	res.scim.emptyRemoves, res.scim.maxPatchValues = w.scim.EmptyRemoves(), w.scim.MaxPatchValues()
	printRequests(p, w, res)
	res.elapsed = time.Since(start)
	p.line("")
	p.line("Done in %.1fs. `make demo V=1` streams the functions' JSON logs; `make invoke FN=… EVENT=…` runs one", res.elapsed.Seconds())
	p.line("function once; `make local` serves the hook on http://127.0.0.1:3000 like `sam local start-api`.")
	return res, p.error()
}

// deliver sends one events/ sample through the hook and reads what the hook logged about it.
func deliver(ctx context.Context, hook *harness.Runtime, logs *logCursor, path string) (arrival, error) {
	a := arrival{file: filepath.Base(path)}
	raw, err := os.ReadFile(path)
	if err != nil {
		return a, err
	}
	var req events.APIGatewayProxyRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		return a, fmt.Errorf("%s: %w", path, err)
	}
	a.method = req.HTTPMethod
	resp, err := hook.InvokeAPIGateway(ctx, req)
	if err != nil {
		a.invokeErr = err
		logs.next("")
		return a, nil
	}
	a.status, a.body = resp.StatusCode, resp.Body
	for _, l := range logs.next("hook request") {
		if l.msg() == "hook request" {
			a.hookLog = l
			a.events, a.enqueued = l.num("events"), l.num("enqueued")
			if d, ok := l["dropped_by_reason"].(map[string]any); ok {
				a.dropped = map[string]int{}
				for k, v := range d {
					n, _ := v.(float64)
					a.dropped[k] = int(n)
				}
			}
		}
	}
	return a, nil
}

func (a arrival) describe() string {
	if a.invokeErr != nil {
		return "invocation failed: " + a.invokeErr.Error()
	}
	return a.method + " → " + a.result()
}

// result is the status and what the hook did with the request.
func (a arrival) result() string {
	s := fmt.Sprint(a.status)
	if a.hookLog == nil || a.hookLog.str("kind") != "delivery" {
		if a.body != "" {
			s += " " + a.body
		}
		return s
	}
	s += fmt.Sprintf(", %s: %s enqueued", plural(a.events, "event"), plural(a.enqueued, "change"))
	if len(a.dropped) > 0 {
		var parts []string
		for _, r := range sortedKeys(a.dropped) {
			parts = append(parts, fmt.Sprintf("%d %s", a.dropped[r], r))
		}
		s += ", dropped " + strings.Join(parts, ", ")
	}
	return s
}

// reconcile runs one reconcile with the payload in path.
func reconcile(ctx context.Context, rt *harness.Runtime, logs *logCursor, path string) reconcileRun {
	r := reconcileRun{file: filepath.Base(path)}
	payload, err := os.ReadFile(path)
	if err != nil {
		r.err = err
		return r
	}
	resp, err := rt.Invoke(ctx, payload)
	for _, l := range logs.next("reconcile summary") {
		if l.msg() == "audit" {
			r.audits = append(r.audits, l)
		}
	}
	if err != nil {
		r.err = err
		return r
	}
	if err := json.Unmarshal(resp, &r.summary); err != nil {
		r.err = fmt.Errorf("reconcile response %s: %w", resp, err)
	}
	return r
}

func (r reconcileRun) describe() string {
	if r.err != nil {
		return "failed: " + r.err.Error()
	}
	s := r.summary
	mode := "applied"
	if s.DryRun {
		mode = "dry run, nothing changed"
	}
	out := fmt.Sprintf("%s; %s selected, %d checked, %d in sync; drift: %d to add, %d to remove",
		mode, plural(s.GroupsSelected, "group"), s.GroupsChecked, s.GroupsInSync, s.Adds, s.Removes)
	if s.GroupsCreated > 0 {
		if s.DryRun {
			out += fmt.Sprintf("; %s to create", plural(s.GroupsCreated, "group"))
		} else {
			out += fmt.Sprintf("; %s created", plural(s.GroupsCreated, "group"))
		}
	}
	if !s.DryRun {
		out += fmt.Sprintf("; added %d, removed %d, failed %d", s.Added, s.Removed, s.Failed)
	}
	if s.Blocked {
		out += "; removals BLOCKED"
	}
	for _, sk := range s.Skipped {
		out += fmt.Sprintf("; skipped %s (%s)", sk.Group, sk.Reason)
	}
	return out
}

func printBefore(p *printer) {
	p.line("Before (the samples' users and groups; events/README.md)")
	var rows [][]string
	for i, g := range seedOktaGroups() {
		var ms []string
		for _, id := range g.members {
			for _, u := range seedOktaUsers() {
				if u.id == id {
					ms = append(ms, u.login)
				}
			}
		}
		sort.Strings(ms)
		label := ""
		if i == 0 {
			label = "  Okta"
		}
		note := ""
		if !strings.HasPrefix(g.name, "AWS_") {
			note = "not synced: no AWS_ prefix"
		}
		switch g.id {
		case engineersID:
			note = "Dave's add never reached the hook"
		case adminsID:
			note = "created while the hook was down: not in AWS yet"
		}
		rows = append(rows, []string{label, g.name, formatMembers(ms), note})
	}
	for i, g := range seedSCIMGroups() {
		label := ""
		if i == 0 {
			label = "  AWS"
		}
		note := ""
		if g.name == engineers {
			note = "Eve was added by hand in the AWS console"
		}
		rows = append(rows, []string{label, g.name, formatMembers(g.members), note})
	}
	p.table(rows)
	p.line("  AWS user %s is Okta's %s: linked by externalId, not by userName.", bobSCIMName, bobLogin)
	p.line("")
}

func printBatch(p *printer, b batch, indent string) {
	acked := len(b.messages) - len(b.failed)
	s := fmt.Sprintf("%ssync: batch of %d: %d acknowledged", indent, len(b.messages), acked)
	if len(b.failed) > 0 {
		s += fmt.Sprintf(", %d reported for retry", len(b.failed))
	}
	if n := b.retries(); n > 0 {
		s += fmt.Sprintf(" (%d redelivered)", n)
	}
	if b.err != nil {
		s += " — invocation failed: " + b.err.Error()
	}
	p.line("%s", s)
	for _, l := range b.logs {
		switch {
		case l.msg() == "audit":
			printAudit(p, indent+"  ", l)
		case l.msg() == "batch done" || l.msg() == "users resolved":
		case l.str("level") == "INFO" || l.str("level") == "WARN" || l.str("level") == "ERROR":
			p.line("%s  %-5s %s", indent, strings.ToLower(l.str("level")), l.msg())
		}
	}
}

func printAudit(p *printer, indent string, l logLine) {
	user := l.str("user")
	if user == "" && l.str("reason") != "" {
		user = l.str("reason")
	}
	p.line("%saudit %-13s %-16s %-26s %s", indent, l.str("op"), l.str("group"), user, l.str("result"))
}

func printRequests(p *printer, w *world, res *demoResult) {
	p.line("4. Requests made")
	var routes []string
	total := 0
	for _, r := range sortedKeys(res.scimRoutes) {
		routes = append(routes, fmt.Sprintf("%s %d", r, res.scimRoutes[r]))
		total += res.scimRoutes[r]
	}
	p.line("   SCIM  %d: %s", total, strings.Join(routes, ", "))
	p.line("         %d throttled, %d 5xx, most member values in one PATCH %d (limit 100), removes without values %d",
		w.scim.Throttled(), w.scim.ServerErrors(), w.scim.MaxPatchValues(), w.scim.EmptyRemoves())
	st := w.okta.Stats()
	p.line("   Okta  %d: %s, %s, %s", st.Requests, plural(int(st.ListGroups), "group search"), plural(int(st.GetGroup), "group read"),
		plural(int(st.GroupUsers), "member listing"))
	enq, batches, msgs, acked, retried := 0, 0, 0, 0, 0
	for _, a := range res.arrivals {
		enq += a.enqueued
		for _, b := range a.batches {
			batches++
			msgs += len(b.messages)
			acked += len(b.messages) - len(b.failed)
			retried += b.retries()
		}
	}
	p.line("   SQS   %d changes enqueued by the hook (one message per group and delivery); %d sync invocations received %d messages, acknowledged %d, redelivered %d",
		enq, batches, msgs, acked, retried)
	if len(res.dlq) == 0 {
		p.line("   DLQ   empty: every change was applied or was a verified no-op")
		return
	}
	p.line("   DLQ   %d messages (replay them after fixing the cause; see README):", len(res.dlq))
	for _, d := range res.dlq {
		p.line("         %s: %s", d.change, d.reason)
	}
}

// deadLetterOf describes a DLQ message (one change, or a pack all of whose changes failed) with
// the last reason the sync logged for its events.
func deadLetterOf(m harness.Message, syncLogs []logLine) deadLetter {
	cs, err := queue.Decode(m.Body)
	if err != nil {
		return deadLetter{change: "message " + m.ID, reason: "undecodable: " + err.Error()}
	}
	var parts []string
	uuids := map[string]bool{}
	for _, c := range cs {
		parts = append(parts, fmt.Sprintf("%s %s %s (event %s)", c.Kind, c.Login, c.GroupName, c.EventUUID))
		uuids[c.EventUUID] = true
	}
	d := deadLetter{
		change: strings.Join(parts, "; "),
		reason: "reported as failed by sync (make demo V=1 shows its logs)",
	}
	if r := m.MessageAttributes[queue.ReasonAttribute]; r != "" {
		// The worker dead-lettered it itself and said why.
		d.reason = r
		return d
	}
	for _, l := range syncLogs {
		if !uuids[l.str("event_uuid")] || (l.str("level") != "ERROR" && l.str("level") != "WARN") {
			continue
		}
		d.reason = l.msg()
		if e := l.str("error"); e != "" {
			d.reason += ": " + e
		}
	}
	return d
}

func plural(n int, noun string) string {
	switch {
	case n == 1:
		return "1 " + noun
	case strings.HasSuffix(noun, "h"):
		return fmt.Sprintf("%d %ses", n, noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// printer writes the summary and keeps the first write error. It is safe for concurrent use
// (make local prints from the HTTP handler and the queue consumer).
type printer struct {
	mu  sync.Mutex
	w   io.Writer
	err error
}

func (p *printer) line(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return
	}
	_, p.err = fmt.Fprintf(p.w, format+"\n", args...)
}

func (p *printer) table(rows [][]string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return
	}
	tw := tabwriter.NewWriter(p.w, 0, 0, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	p.err = tw.Flush()
}

func (p *printer) error() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}
