package syncer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/config"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/ledger"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/membership"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/okta"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/queue"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scimapply"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/telemetry"
)

// SCIM is what the worker needs from the SCIM client: the apply path (renames included) plus
// group deletes and a user's groups, and the client's counters for the ScimRequests/ScimThrottles metrics.
type SCIM interface {
	scimapply.SCIM
	DeleteGroup(ctx context.Context, id string) error
	// ListUserGroups lists the AWS groups a SCIM user is in (a revoke: users.go).
	ListUserGroups(ctx context.Context, userID string) ([]scim.Group, error)
	Stats() scim.Stats
}

// Requeuer sends single-change messages to the worker's own queue (pkg/queue's Sender): the
// failed changes of a packed message, so they alone are retried and dead-lettered.
type Requeuer interface {
	SendEntries(ctx context.Context, entries []queue.Entry) error
}

// OktaGroups reads a group's current name (renames: the hook payload lacks it).
type OktaGroups interface {
	Group(ctx context.Context, id string) (okta.Group, error)
}

// ErrOktaUnconfigured is what an [OktaGroups] returns when OKTA_ORG_URL is set but the secret has
// no okta_api_token: renames are then acknowledged, not applied.
var ErrOktaUnconfigured = errors.New("okta_api_token missing from the secret")

// DefaultSafetyMargin is kept free before the Lambda deadline: no new SCIM work starts after it,
// leaving time to write the ledger and return the batch item failures.
const DefaultSafetyMargin = 2 * time.Second

// Config wires a Handler. Dir must be built once per container and kept across invocations.
type Config struct {
	SCIM   SCIM
	Dir    *scimapply.Directory
	Ledger ledger.Ledger
	Okta   OktaGroups // nil: renames are logged and acknowledged, not applied
	// Requeue (the worker's own queue) takes the changes that fail on their own, isolated in a
	// message group per (group, user) so they never hold their group; nil: they stay in their
	// message, which is then retried whole (what was applied is skipped by the ledger).
	Requeue Requeuer
	// Visibility sets how long a message reported failed stays in flight, i.e. its backoff
	// (pkg/queue's Visibility on the worker's queue); nil: it waits out the queue's
	// VisibilityTimeout (720 s in the template), holding its FIFO group all that time.
	Visibility Visibility
	// DeadLetter (the DLQ) takes the changes the worker gives up on, with the reason as a message
	// attribute; nil: they are reported failed until SQS moves them after MaxReceiveCount.
	DeadLetter Requeuer
	// Backoff is the in-flight time of a failed message on its n-th receive; nil: DefaultBackoff.
	Backoff func(receiveCount int) time.Duration
	// UnprovisionedUserWait is how long an add for a user not in AWS yet is retried before it is
	// dead-lettered; 0: config.DefaultUnprovisionedUserWait.
	UnprovisionedUserWait time.Duration

	Selected                           func(name string) bool
	DryRun, CreateGroups, DeleteGroups bool

	Log          *slog.Logger
	MetricsOut   io.Writer // EMF lines (stdout in Lambda)
	Namespace    string
	SafetyMargin time.Duration
	Now          func() time.Time
}

// Handler applies the queued changes of one SQS batch.
type Handler struct{ cfg Config }

// NewHandler returns a Handler; zero SafetyMargin and Now get defaults.
func NewHandler(cfg Config) *Handler {
	if cfg.SafetyMargin == 0 {
		cfg.SafetyMargin = DefaultSafetyMargin
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Selected == nil {
		cfg.Selected = func(string) bool { return true }
	}
	if cfg.Backoff == nil {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.UnprovisionedUserWait <= 0 {
		cfg.UnprovisionedUserWait = config.DefaultUnprovisionedUserWait
	}
	if cfg.DryRun {
		// DRY_RUN by construction: every SCIM write of this handler, and of its directory
		// (adoption), goes through a client that refuses it. Paths that plan ("would …") check
		// DryRun first; one that forgets fails with scim.ErrReadOnly instead of writing.
		full, ok := cfg.SCIM.(scim.API)
		if !ok {
			panic(fmt.Sprintf("syncer: DryRun needs a SCIM client that can be made read-only (scim.API), got %T", cfg.SCIM))
		}
		ro := scim.ReadOnlyOf(full)
		cfg.SCIM = ro
		if cfg.Dir != nil {
			cfg.Dir.UseSCIM(ro)
		}
	}
	if cfg.Okta != nil && cfg.Dir != nil {
		// The identity rule asks Okta whether a group is gone and how it is named now.
		cfg.Dir.UseOktaGroups(identityLookup(cfg.Okta))
	}
	return &Handler{cfg: cfg}
}

// item is one change of an SQS message and what became of it.
type item struct {
	change membership.Change
	fail   *failure // nil: acknowledged (applied, verified, skipped on purpose)
}

// failure is why a change was not acknowledged and how it is retried.
type failure struct {
	class  failClass
	reason string
}

// ok reports whether the change is acknowledged so far.
func (it *item) ok() bool { return it.fail == nil }

// record is one SQS message: one change (v1, or a v2 pack of one) or a pack of several.
type record struct {
	msg         queue.Record
	items       []*item
	undecodable string // reason; the message has no items
}

// run is the state of one invocation.
type run struct {
	h       *Handler
	log     *slog.Logger
	met     *telemetry.Metrics
	work    context.Context // ends SafetyMargin before the Lambda deadline
	records []*record
	items   []*item                    // the changes of every record, in order
	deleted map[string]time.Time       // Okta group id → published of a group delete applied in this batch
	status  map[string]membership.Mark // Okta user id → status mark claimed in this batch (users.go)
	unauth  bool
	// started (wall clock) is the epoch of the group cache: a group read from AWS during this
	// invocation is not read again, one read before it is (the selection is decided on what AWS
	// holds now, not on a name cached by an earlier invocation).
	started time.Time
}

// Handle is the Lambda entry point: it returns the messages to retry as batch item failures
// (ReportBatchItemFailures) and never an error, so one bad message cannot make SQS redeliver the
// whole batch.
func (h *Handler) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	r := &run{
		h:       h,
		log:     telemetry.WithLambda(ctx, h.cfg.Log),
		met:     telemetry.NewMetrics(h.cfg.Namespace),
		deleted: map[string]time.Time{},
		status:  map[string]membership.Mark{},
		started: time.Now(),
	}
	work, cancel := context.WithCancel(ctx)
	if dl, ok := ctx.Deadline(); ok {
		work, cancel = context.WithDeadline(ctx, dl.Add(-h.cfg.SafetyMargin))
	}
	defer cancel()
	r.work = work
	before := h.cfg.SCIM.Stats()
	var refusedBefore int64
	if ro, ok := h.cfg.SCIM.(*scim.ReadOnly); ok {
		refusedBefore = ro.RefusedTotal()
	}

	for _, rec := range queue.DecodeEvent(ev) {
		rc := &record{msg: rec}
		if rec.Err != nil {
			// It goes to the DLQ after the redrive count; the reason is here in the logs.
			rc.undecodable = "undecodable message: " + rec.Err.Error()
			r.log.ErrorContext(ctx, "undecodable message", "message_id", rec.MessageID, "reason", rec.Err.Error())
			r.met.Count(telemetry.MetricChangesFailed, 1)
		}
		for _, c := range rec.Changes {
			it := &item{change: c}
			rc.items = append(rc.items, it)
			r.items = append(r.items, it)
		}
		r.records = append(r.records, rc)
	}
	r.met.Count(telemetry.MetricEventsReceived, float64(len(r.items)))
	r.others(ctx)
	r.members(ctx)

	resp, st := r.settle(ctx)
	after := h.cfg.SCIM.Stats()
	r.met.Count(telemetry.MetricScimRequests, float64(after.TotalRequests()-before.TotalRequests()))
	r.met.Count(telemetry.MetricScimThrottles, float64(after.Throttles-before.Throttles))
	r.met.Count(telemetry.MetricScimRetries, float64(after.Retries-before.Retries))
	if r.unauth {
		r.met.Count(telemetry.MetricScimUnauthorized, 1)
	}
	r.log.InfoContext(ctx, "batch done", "messages", len(r.records), "changes", len(r.items), "failed", st.failed,
		"isolated", st.isolated, "dead_lettered", st.deadLettered, "scim_requests", after.TotalRequests()-before.TotalRequests(),
		"scim_rate", after.Rate, "dry_run", h.cfg.DryRun)
	if ro, ok := h.cfg.SCIM.(*scim.ReadOnly); ok {
		if n := ro.RefusedTotal(); n > refusedBefore {
			// A path wrote without asking whether this is a dry run: a bug, stopped by the client.
			r.log.ErrorContext(ctx, "dry run: SCIM writes refused by the read-only client (a path did not plan its write)",
				"refused", n-refusedBefore, "by_op", ro.Refused())
		}
	}
	r.met.Flush(h.cfg.MetricsOut)
	return resp, nil
}

// failWhere fails every pending change that match selects, with class and reason.
func (r *run) failWhere(match func(c membership.Change) bool, class failClass, reason string) {
	for _, m := range r.items {
		if m.ok() && match(m.change) {
			m.fail = &failure{class: class, reason: reason}
		}
	}
}

// noteErr records what an error means for the whole invocation (401: alarm).
func (r *run) noteErr(ctx context.Context, err error) {
	if errors.Is(err, scim.ErrUnauthorized) && !r.unauth {
		r.unauth = true
		// pkg/scim already re-read the secret once and retried: the token is expired or revoked.
		r.log.ErrorContext(ctx, "SCIM rejected the bearer token after a secret refresh: rotate aws_sso_scim_key",
			"error", err.Error())
	}
}

// members applies the add/remove changes of the batch.
func (r *run) members(ctx context.Context) {
	var changes []membership.Change
	for _, m := range r.items {
		if m.ok() && m.change.Kind.Member() {
			changes = append(changes, m.change)
		}
	}
	if len(changes) == 0 {
		return
	}
	col := membership.Collapse(changes)
	for _, c := range col.Invalid {
		reason := "invalid change: " + membership.Validate(c).Error()
		r.failWhere(func(x membership.Change) bool { return membership.Compare(x, c) == 0 }, failPermanent, reason)
	}
	// Older changes of a (group, user) lost to the batch's winner: acknowledge them. The winner
	// decides, and if it fails, it is retried with everything newer.
	superseded := 0
	for _, m := range r.items {
		if m.ok() && col.Superseded(m.change) {
			superseded++
		}
	}
	r.met.Count(telemetry.MetricChangesSkipped, float64(superseded))

	keys := col.Keys()
	// The same read fetches the status marks of the users of the add winners: an add of a user
	// whose newest Okta status is not granted is not applied (users.go, the user-status rule).
	read := slices.Clone(keys)
	for _, k := range keys {
		if col.Members[k].Kind == membership.KindAdd {
			read = append(read, ledger.StatusKey(k.UserID))
		}
	}
	marks, err := r.h.cfg.Ledger.Get(r.work, read)
	if err != nil {
		r.log.ErrorContext(ctx, "ledger read failed: retrying the batch's membership changes", "error", err.Error())
		r.failKeys(keys, col, failTransient, "ledger read failed: "+err.Error())
		return
	}

	var toWrite []ledger.Record
	var work []groupWork
	for _, gc := range col.ByGroup() {
		var pending []membership.Change
		for _, c := range gc.Changes {
			if at, ok := r.deleted[c.GroupID]; ok && !c.Published.After(at) {
				r.skip(ctx, c, "group deleted in this batch")
				continue
			}
			mark := marks[membership.KeyOf(c)]
			switch v := membership.Decide(c, mark); v {
			case membership.DecisionStale, membership.DecisionApplied:
				r.skip(ctx, c, string(v))
			default:
				if c.Kind == membership.KindAdd {
					if st, found := r.statusOf(marks, c.UserID); !membership.StatusPermits(st, found) {
						r.notGranted(ctx, c, st)
						continue
					}
				}
				pending = append(pending, c)
			}
		}
		if len(pending) == 0 {
			continue
		}
		if err := r.work.Err(); err != nil {
			r.failChanges(pending, col, failTransient, "deadline: not started before the Lambda timeout")
			continue
		}
		gw, records := r.group(ctx, pending, col)
		toWrite = append(toWrite, records...)
		if len(gw.pending) > 0 {
			work = append(work, gw)
		}
	}
	if len(work) > 0 {
		// One resolution for the whole batch, so the adaptive choice sees every unknown user.
		var refs []scimapply.UserRef
		for _, gw := range work {
			for _, c := range gw.pending {
				refs = append(refs, scimapply.UserRef{ID: c.UserID, Login: c.Login})
			}
		}
		res := r.h.cfg.Dir.ResolveUsers(r.work, refs)
		r.log.DebugContext(ctx, "users resolved", "strategy", string(res.Strategy), "unknown", res.Unknown,
			"requests", res.Requests, "missing", len(res.Missing))
		for _, gw := range work {
			if err := r.work.Err(); err != nil {
				r.failChanges(gw.pending, col, failTransient, "deadline: not started before the Lambda timeout")
				continue
			}
			toWrite = append(toWrite, r.apply(ctx, gw, res, col)...)
		}
	}
	if r.h.cfg.DryRun || len(toWrite) == 0 {
		return
	}
	// The verified no-ops' marks (nothing was sent: a loser of a race with them converges, as
	// with any applied mark). The invocation's own context: the safety margin exists for it.
	if err := r.h.cfg.Ledger.Put(ctx, toWrite); err != nil {
		// Without the mark an older change arriving later could undo them: retry until the
		// mark is written.
		r.log.ErrorContext(ctx, "ledger write failed: retrying the verified no-ops", "error", err.Error())
		for _, rec := range toWrite {
			r.failKeys([]membership.Key{rec.Key}, col, failTransient, "ledger write failed: "+err.Error())
		}
	}
}

// skip acknowledges a winner that needs no SCIM request.
func (r *run) skip(ctx context.Context, c membership.Change, reason string) {
	r.met.Count(telemetry.MetricChangesSkipped, 1)
	r.log.DebugContext(ctx, "change skipped", "event_uuid", c.EventUUID, "op", string(c.Kind),
		"group_id", c.GroupID, "user_id", c.UserID, "reason", reason)
}

// notGranted acknowledges an add of a user whose recorded status is not granted AWS group
// membership, without a SCIM request and without a membership mark (the status mark decides; a
// reactivation's restore adds the user back).
func (r *run) notGranted(ctx context.Context, c membership.Change, status membership.Mark) {
	l, _ := membership.LifecycleOf(status.Kind)
	reason := fmt.Sprintf("user %s in Okta at %s: not granted AWS group membership", strings.ToLower(l.To),
		status.Published.UTC().Format(time.RFC3339Nano))
	if l.To == membership.StatusDeprovisioned {
		reason = fmt.Sprintf("user deprovisioned in Okta at %s: not granted AWS group membership", status.Published.UTC().Format(time.RFC3339Nano))
	}
	r.met.Count(telemetry.MetricChangesSkipped, 1)
	r.log.InfoContext(ctx, "membership add not applied: the user's Okta status grants no AWS group membership",
		"event_uuid", c.EventUUID, "group", c.GroupName, "group_id", c.GroupID, "user", c.Login, "user_id", c.UserID,
		"status_event_uuid", status.EventUUID, "reason", reason)
	telemetry.Audit(r.log, telemetry.AuditRecord{Time: r.h.cfg.Now(), EventUUID: c.EventUUID, Group: c.GroupName, GroupID: c.GroupID,
		User: c.Login, UserID: c.UserID, Op: string(membership.KindAdd), Result: telemetry.ResultNotApplied, Reason: reason})
}

// failKeys fails, for each key, the winner's messages and every message of the key at least as
// new (duplicates and equal-time losers); older ones stay acknowledged as superseded.
func (r *run) failKeys(keys []membership.Key, col membership.Collapsed, class failClass, reason string) {
	for _, k := range keys {
		w, ok := col.Members[k]
		if !ok {
			continue
		}
		r.failWhere(func(c membership.Change) bool {
			return c.Kind.Member() && membership.KeyOf(c) == k && !c.Published.Before(w.Published)
		}, class, reason)
	}
}

func (r *run) failChanges(cs []membership.Change, col membership.Collapsed, class failClass, reason string) {
	r.met.Count(telemetry.MetricChangesFailed, float64(len(cs)))
	keys := make([]membership.Key, len(cs))
	for i, c := range cs {
		keys[i] = membership.KeyOf(c)
	}
	r.failKeys(keys, col, class, reason)
}

// groupWork is one group's changes that need SCIM, with its resolved SCIM group.
type groupWork struct {
	ref     scimapply.GroupRef
	scim    scim.Group
	pending []membership.Change
}

// group resolves one group for its pending winners. It settles what needs no user (group not
// selected, missing, deleted in Okta) and returns the rest as work, with the ledger records of
// the verified no-ops.
func (r *run) group(ctx context.Context, pending []membership.Change, col membership.Collapsed) (groupWork, []ledger.Record) {
	newest := slices.MaxFunc(pending, membership.Compare)
	ref := scimapply.GroupRef{ID: newest.GroupID, Name: newest.GroupName}
	hasAdds := slices.ContainsFunc(pending, func(c membership.Change) bool { return c.Kind == membership.KindAdd })

	create := hasAdds && r.h.cfg.CreateGroups && !r.h.cfg.DryRun
	resolved, err := r.h.cfg.Dir.Resolve(r.work, ref, scimapply.GroupQuery{Create: create, FreshSince: r.started})
	g := resolved.Group
	var records []ledger.Record
	noop := func(c membership.Change, why string) {
		r.skip(ctx, c, why)
		records = append(records, ledger.RecordOf(c))
	}
	// removesTrue acknowledges the removes as verified no-ops (the group has no AWS group of
	// its own, so nobody is in it) and returns the adds.
	removesTrue := func(why string) []membership.Change {
		var adds []membership.Change
		for _, c := range pending {
			if c.Kind == membership.KindRemove {
				noop(c, why)
			} else {
				adds = append(adds, c)
			}
		}
		return adds
	}
	switch {
	case errors.Is(err, scimapply.ErrDeletedInOkta):
		r.log.InfoContext(ctx, "group no longer exists in Okta: its changes are acknowledged and no SCIM group is created",
			"group", ref.Name, "group_id", ref.ID)
		for _, c := range pending {
			r.skip(ctx, c, "group deleted in Okta")
		}
		return groupWork{}, nil
	case errors.Is(err, scimapply.ErrNotSelected):
		r.log.WarnContext(ctx, "group not selected: its changes are acknowledged, the SCIM group is left alone",
			"group", ref.Name, "group_id", ref.ID, "reason", err.Error())
		for _, c := range pending {
			r.skip(ctx, c, "group not selected")
		}
		return groupWork{}, nil
	case errors.Is(err, scimapply.ErrDuplicateExternalID):
		r.duplicateExternalID(ctx, ref, pending, col, err)
		return groupWork{}, nil
	case errors.Is(err, scimapply.ErrIdentityConflict):
		// No AWS group carries this Okta group's id, and the one with its name is another's.
		// Removes are true already (this group has no AWS group); adds are never written to
		// the other group's: they go to the DLQ with the reason, and the alarm fires.
		r.met.Count(telemetry.MetricGroupIdentityConflicts, 1)
		r.log.ErrorContext(ctx, "group identity conflict: the AWS group with this name belongs to another Okta group; adds dead-lettered, nothing written",
			"group", ref.Name, "group_id", ref.ID, "error", err.Error())
		adds := removesTrue("no AWS group carries this Okta group's id")
		r.failChanges(adds, col, failPermanent, "group identity: "+err.Error())
		return groupWork{}, records
	case errors.Is(err, scimapply.ErrGroupNotFound):
		// Removes are true already: nobody is a member of a group that does not exist.
		adds := removesTrue("group not in SCIM")
		if len(adds) == 0 {
			return groupWork{}, records
		}
		if r.h.cfg.DryRun {
			r.log.InfoContext(ctx, "dry run: group would be created", "group", ref.Name, "group_id", ref.ID, "adds", len(adds))
			for _, c := range adds {
				r.skip(ctx, c, "dry run")
			}
			return groupWork{}, records
		}
		r.log.ErrorContext(ctx, "group not in SCIM and CREATE_GROUPS=false: adds retried until it exists",
			"group", ref.Name, "group_id", ref.ID, "adds", len(adds))
		r.failChanges(adds, col, failTransient, fmt.Sprintf("group %q not in SCIM (CREATE_GROUPS=false)", ref.Name))
		return groupWork{}, records
	case err != nil:
		r.noteErr(ctx, err)
		r.log.ErrorContext(ctx, "group resolution failed", "group", ref.Name, "group_id", ref.ID, "error", err.Error())
		r.failChanges(pending, col, failTransient, "group resolution: "+err.Error())
		return groupWork{}, nil
	}
	if resolved.Created {
		telemetry.Audit(r.log, telemetry.AuditRecord{Time: r.h.cfg.Now(), Group: g.DisplayName, GroupID: ref.ID,
			Op: telemetry.OpCreateGroup, Result: telemetry.ResultApplied, Reason: "membership add for a group missing in SCIM"})
		r.nameApplied(ctx, ref.ID, g.DisplayName, newest.Published, newest.EventUUID)
	}
	if resolved.Adopted {
		r.auditAdoption(ref.ID, g.DisplayName, resolved.DryRun, newest.EventUUID)
	}
	// The event carries the group's name when it was published: a newer name than the one
	// applied renames the AWS group (a rename event lost, or not followed without Okta access).
	if g, err = r.converge(ctx, ref, g, newest); err != nil {
		r.noteErr(ctx, err)
		r.log.ErrorContext(ctx, "group rename failed: the group's changes are retried", "group", g.DisplayName,
			"new_name", ref.Name, "group_id", ref.ID, "error", err.Error())
		r.failChanges(pending, col, failTransient, "group rename: "+err.Error())
		return groupWork{}, records
	}
	return groupWork{ref: ref, scim: g, pending: pending}, records
}

// apply plans and applies one group's work with the batch's user resolution and returns the
// ledger records of the verified no-ops; the changes it PATCHes record their own marks (claim,
// finalize: the single-writer rule).
func (r *run) apply(ctx context.Context, gw groupWork, res scimapply.Resolution, col membership.Collapsed) []ledger.Record {
	ref, g, pending := gw.ref, gw.scim, gw.pending
	var records []ledger.Record
	noop := func(c membership.Change, why string) {
		r.skip(ctx, c, why)
		records = append(records, ledger.RecordOf(c))
	}
	resolved := make(map[string]string, len(pending))
	for _, c := range pending {
		if u, ok := res.Users[c.UserID]; ok {
			resolved[c.UserID] = u.ID
		}
	}
	_, outcomes, err := membership.PlanChanges(pending, resolved, nil)
	if err != nil { // the collapse already validated them; a bug, not bad input
		r.log.ErrorContext(ctx, "plan failed", "group", g.DisplayName, "error", err.Error())
		r.failChanges(pending, col, failPermanent, "plan: "+err.Error())
		return nil
	}
	var plan scimapply.Plan
	byUser := map[string]membership.Change{}
	for _, o := range outcomes {
		c := o.Change
		member := scimapply.Member{SCIMID: o.SCIMUserID, UserID: c.UserID, Login: c.Login, EventUUID: c.EventUUID, Published: c.Published}
		switch o.Action {
		case membership.ActionAdd:
			plan.Adds = append(plan.Adds, member)
			byUser[c.UserID] = c
		case membership.ActionRemove:
			plan.Removes = append(plan.Removes, member)
			byUser[c.UserID] = c
		case membership.ActionSuperseded:
			r.skip(ctx, c, "another Okta user linked to the same SCIM user wins")
		case membership.ActionSkip:
			noop(c, "already true")
		case membership.ActionUnresolved:
			if err, ok := res.Errors[c.UserID]; ok {
				r.noteErr(ctx, err)
				r.failChanges([]membership.Change{c}, col, classOf(err), "user lookup: "+err.Error())
				continue
			}
			if c.Kind == membership.KindRemove {
				noop(c, "user not in SCIM")
				continue
			}
			r.met.Count(telemetry.MetricUnknownUsers, 1)
			r.log.WarnContext(ctx, "user not provisioned in SCIM yet: the add waits apart from its group, retried with backoff, dead-lettered after UNPROVISIONED_USER_WAIT",
				"user", c.Login, "user_id", c.UserID, "group", g.DisplayName, "group_id", c.GroupID, "event_uuid", c.EventUUID)
			r.failChanges([]membership.Change{c}, col, failUnprovisioned, fmt.Sprintf("user %s (%s) not provisioned in SCIM", c.Login, c.UserID))
		}
	}
	if plan.Len() == 0 {
		return records
	}
	applier := scimapply.NewApplier(r.h.cfg.SCIM, r.h.cfg.Dir, r.log, r.met, scimapply.DryRun(r.h.cfg.DryRun), scimapply.WithClock(r.h.cfg.Now))
	target := scimapply.Target{Okta: ref, SCIM: g}
	if r.h.cfg.DryRun {
		// A dry run claims nothing: the read-only applier only logs the plan.
		applier.Apply(r.work, target, plan)
		return records
	}
	// The single-writer rule (docs/SYNC.md): each change claims its mark before its PATCH, and
	// reads the marks after it, converging to the newest decision (scimapply.ApplyClaimed).
	var ws []scimapply.Write
	for _, op := range []struct {
		kind    membership.Kind
		members []scimapply.Member
	}{{membership.KindRemove, plan.Removes}, {membership.KindAdd, plan.Adds}} {
		for _, m := range op.members {
			ws = append(ws, scimapply.Write{Target: target, Member: m, Op: op.kind, Mark: ledger.RecordOf(byUser[m.UserID])})
		}
	}
	for _, res := range applier.ApplyClaimed(r.work, ctx, r.h.cfg.Ledger, ws) {
		c := byUser[res.Member.UserID]
		switch {
		case res.Stale:
			r.skip(ctx, c, "stale: a newer change of the membership was claimed meanwhile")
		case res.Err != nil:
			r.noteErr(ctx, res.Err)
			if !errors.Is(res.Err, scim.ErrUnauthorized) {
				r.log.ErrorContext(ctx, "change not applied", "user", c.Login, "user_id", c.UserID,
					"group", g.DisplayName, "group_id", c.GroupID, "op", string(c.Kind), "error", res.Err.Error())
			}
			// The Applier counted a failed PATCH in ChangesFailed.
			r.failKeys([]membership.Key{membership.KeyOf(c)}, col, classOf(res.Err), res.Err.Error())
		}
	}
	return records
}
