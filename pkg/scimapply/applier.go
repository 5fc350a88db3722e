package scimapply

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/membership"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/telemetry"
)

// Target is the group a plan applies to.
type Target struct {
	Okta GroupRef   // Okta group (id, name) for audit records
	SCIM scim.Group // the SCIM group the PATCHes go to
}

// Member is one user of a plan, with what the audit record needs.
type Member struct {
	SCIMID    string    // SCIM user id, the PATCH value
	UserID    string    // Okta user id
	Login     string    // Okta login
	EventUUID string    // Okta event that asked for the change ("" for the reconciler)
	Published time.Time // event time, for the lag metric (zero: no lag recorded)
}

// Plan is the membership work for one group.
type Plan struct {
	Adds    []Member
	Removes []Member
}

// Len returns the number of changes in p.
func (p Plan) Len() int { return len(p.Adds) + len(p.Removes) }

// Result is the outcome of one member change.
type Result struct {
	Member    Member
	Op        membership.Kind // KindAdd or KindRemove
	RequestID string          // SCIM request id of the PATCH that applied it
	DryRun    bool            // nothing was sent
	Err       error           // nil when SCIM confirmed the change (or in dry run)
}

// Applier applies plans to SCIM.
type Applier struct {
	api     SCIM
	dir     *Directory
	log     *slog.Logger
	metrics Metrics
	dryRun  bool
	now     func() time.Time
}

// ApplierOption configures an Applier.
type ApplierOption func(*Applier)

// DryRun makes Apply log the plan and send nothing.
func DryRun(on bool) ApplierOption { return func(a *Applier) { a.dryRun = on } }

// WithClock sets the clock for audit records and the lag metric (tests).
func WithClock(now func() time.Time) ApplierOption { return func(a *Applier) { a.now = now } }

// NewApplier returns an Applier. dir may be nil; when set, a user or group that SCIM rejects is
// dropped from its cache so that a retry resolves it afresh.
func NewApplier(api SCIM, dir *Directory, log *slog.Logger, metrics Metrics, opts ...ApplierOption) *Applier {
	a := &Applier{api: api, dir: dir, log: log, metrics: metrics, now: time.Now}
	for _, o := range opts {
		o(a)
	}
	return a
}

// Apply sends p to the SCIM group of t: removes first (least privilege while a plan is half
// applied), then adds, as PATCHes of at most [membership.MaxPatchValues] values; an empty list
// sends nothing (never a remove without values: AWS once emptied whole groups on that). When a
// chunk fails with a 4xx other than 401/429 (a user deleted meanwhile, say) its users are applied
// one by one, so one bad id does not fail 99 good ones. A fatal error (401, deadline) or a
// persistent 429/5xx stops the plan: the changes not sent fail with that error.
//
// It returns one Result per member in plan order, emits one audit record per change (applied,
// failed or dry run) and the metrics ChangesApplied, ChangesFailed and LagMs.
func (a *Applier) Apply(ctx context.Context, t Target, p Plan) []Result {
	results := make([]Result, 0, p.Len())
	if a.dryRun {
		a.log.InfoContext(ctx, "dry run: plan not applied", "group", t.SCIM.DisplayName, "groupId", t.Okta.ID,
			"scimGroupId", t.SCIM.ID, "adds", len(p.Adds), "removes", len(p.Removes))
		for _, op := range []struct {
			kind    membership.Kind
			members []Member
		}{{membership.KindRemove, p.Removes}, {membership.KindAdd, p.Adds}} {
			for _, m := range op.members {
				r := Result{Member: m, Op: op.kind, DryRun: true}
				a.audit(t, r)
				results = append(results, r)
			}
		}
		return results
	}
	var stop error
	for _, op := range []struct {
		kind    membership.Kind
		members []Member
		send    func(context.Context, string, []string) ([]string, error)
	}{
		{membership.KindRemove, p.Removes, a.api.RemoveMembers},
		{membership.KindAdd, p.Adds, a.api.AddMembers},
	} {
		for start := 0; start < len(op.members); start += membership.MaxPatchValues {
			chunk := op.members[start:min(start+membership.MaxPatchValues, len(op.members))]
			if stop == nil {
				stop = ctx.Err()
			}
			if stop != nil {
				results = append(results, a.fail(t, op.kind, chunk, fmt.Errorf("not sent: %w", stop))...)
				continue
			}
			var res []Result
			res, stop = a.chunk(ctx, t, op.kind, chunk, op.send)
			results = append(results, res...)
		}
	}
	return results
}

// chunk sends one PATCH; it returns the chunk's results and an error that must stop the plan.
func (a *Applier) chunk(ctx context.Context, t Target, kind membership.Kind, chunk []Member,
	send func(context.Context, string, []string) ([]string, error)) ([]Result, error) {
	ids := make([]string, len(chunk))
	for i, m := range chunk {
		ids[i] = m.SCIMID
	}
	reqIDs, err := send(ctx, t.SCIM.ID, ids)
	if err == nil {
		return a.ok(t, kind, chunk, first(reqIDs)), nil
	}
	if status(err) == http.StatusNotFound {
		// 404 on PATCH /Groups/{id} usually means the group is gone; check once before spending
		// one request per user on it.
		if _, gerr := a.api.GetGroup(ctx, t.SCIM.ID); errors.Is(gerr, scim.ErrNotFound) {
			if a.dir != nil {
				a.dir.ForgetGroup(t.Okta.ID)
			}
			gone := fmt.Errorf("group %q (%s): %w", t.SCIM.DisplayName, t.SCIM.ID, ErrGroupGone)
			return a.fail(t, kind, chunk, gone), gone
		}
	}
	if !perUserRetryable(err) {
		err = fmt.Errorf("%s %d members of group %q: %w", kind, len(chunk), t.SCIM.DisplayName, err)
		return a.fail(t, kind, chunk, err), err
	}
	a.log.WarnContext(ctx, "chunk PATCH rejected, applying its users one by one",
		"group", t.SCIM.DisplayName, "op", string(kind), "members", len(chunk), "error", err.Error())
	results := make([]Result, 0, len(chunk))
	for i, m := range chunk {
		reqIDs, err := send(ctx, t.SCIM.ID, []string{m.SCIMID})
		switch {
		case err == nil:
			results = append(results, a.ok(t, kind, chunk[i:i+1], first(reqIDs))...)
		case perUserRetryable(err):
			if a.dir != nil {
				a.dir.ForgetUser(UserRef{ID: m.UserID, Login: m.Login})
			}
			results = append(results, a.fail(t, kind, chunk[i:i+1], fmt.Errorf("%s user %s: %w", kind, m.SCIMID, err))...)
		default:
			err = fmt.Errorf("%s user %s: %w", kind, m.SCIMID, err)
			results = append(results, a.fail(t, kind, chunk[i:], err)...)
			return results, err
		}
	}
	return results, nil
}

func first(ids []string) string {
	if len(ids) == 0 {
		return ""
	}
	return ids[0]
}

func (a *Applier) ok(t Target, kind membership.Kind, ms []Member, reqID string) []Result {
	out := make([]Result, len(ms))
	now := a.now()
	for i, m := range ms {
		out[i] = Result{Member: m, Op: kind, RequestID: reqID}
		a.audit(t, out[i])
		if !m.Published.IsZero() {
			a.metrics.Value(telemetry.MetricLagMs, float64(now.Sub(m.Published).Milliseconds()), "Milliseconds")
		}
	}
	a.metrics.Count(telemetry.MetricChangesApplied, float64(len(ms)))
	return out
}

func (a *Applier) fail(t Target, kind membership.Kind, ms []Member, err error) []Result {
	out := make([]Result, len(ms))
	for i, m := range ms {
		out[i] = Result{Member: m, Op: kind, Err: err}
		a.audit(t, out[i])
	}
	a.metrics.Count(telemetry.MetricChangesFailed, float64(len(ms)))
	return out
}

func (a *Applier) audit(t Target, r Result) {
	rec := telemetry.AuditRecord{
		Time:          a.now(),
		EventUUID:     r.Member.EventUUID,
		Group:         t.SCIM.DisplayName,
		GroupID:       t.Okta.ID,
		User:          r.Member.Login,
		UserID:        r.Member.UserID,
		Op:            string(r.Op),
		Result:        telemetry.ResultApplied,
		ScimRequestID: r.RequestID,
	}
	switch {
	case r.DryRun:
		rec.Result = telemetry.ResultDryRun
	case r.Err != nil:
		rec.Result, rec.Reason = "failed", r.Err.Error()
	}
	telemetry.Audit(a.log, rec)
}
