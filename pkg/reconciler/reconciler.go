package reconciler

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/config"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/ledger"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/okta"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scimapply"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/telemetry"
)

// SCIM is what the reconciler needs from the SCIM client: the shared apply path, member and group
// listings, and the client's counters for the summary and the Scim* metrics.
type SCIM interface {
	scimapply.SCIM
	ListGroupMembers(ctx context.Context, groupID string) ([]scim.User, error)
	ListGroups(ctx context.Context, fn func([]scim.Group) error) error
	Stats() scim.Stats
}

// Okta reads the selected groups and their members (*okta.Reader satisfies it).
type Okta interface {
	Groups(ctx context.Context, prefix string, match func(name string) bool) ([]okta.Group, error)
	GroupMembers(ctx context.Context, groupID string) ([]okta.User, error)
	Group(ctx context.Context, id string) (okta.Group, error)
	Requests() int64
}

// OktaSource returns the Okta reader for a run. refresh asks for one built from a freshly read
// secret, after Okta rejected the token (rotated).
type OktaSource func(ctx context.Context, refresh bool) (Okta, error)

// Defaults of the Config knobs that have no environment variable.
const (
	// DefaultSafetyMargin is kept free before the Lambda deadline: no SCIM or Okta request is
	// started after it, so the summary, the metrics and the ordering marks still get out.
	DefaultSafetyMargin = 10 * time.Second
	// DefaultReadShare is the part of the run's time in which new groups may still be read; the
	// rest is left for linking and applying what was read.
	DefaultReadShare = 0.6
	// DefaultUnknownSample is how many logins of unprovisioned users the summary and the info log
	// name (all of them are logged at debug).
	DefaultUnknownSample = 20
	// markSkew is subtracted from a group's Okta read time in the ordering marks the reconciler
	// writes and checks: an Okta event published less than this before the read may be missing
	// from the answer (clock skew between Okta and Lambda, Okta's own replication), so it must
	// still win over the reconcile.
	markSkew = time.Minute
	// maxListedInLog bounds the member lists in one log line (CloudWatch events are ≤ 256 KiB).
	maxListedInLog = 1000
	// maxSummaryErrors bounds the errors the summary carries; the log has them all.
	maxSummaryErrors = 50
)

// Config wires a Handler.
type Config struct {
	SCIM   SCIM
	Okta   OktaSource
	Ledger ledger.Ledger // nil without STATE_TABLE: no ordering marks, time-based rotation

	Selection                              config.Selection
	DryRun, CreateGroups, AllowEmptyGroups bool
	MaxRemovals                            int // per run; < 0 disables the cap (tests only)
	Concurrency                            int // groups read and applied at once

	Log        *slog.Logger
	MetricsOut io.Writer // EMF lines (stdout in Lambda)
	Namespace  string

	SafetyMargin  time.Duration
	ReadShare     float64
	UnknownSample int
	Now           func() time.Time
}

// Handler runs reconciles. It implements lambda.Handler, so an empty payload (an operator's bare
// invoke) is accepted like {}.
type Handler struct{ cfg Config }

// NewHandler returns a Handler, filling zero knobs with their defaults.
func NewHandler(cfg Config) *Handler {
	if cfg.Concurrency < 1 {
		cfg.Concurrency = config.DefaultReconcileConcurrency
	}
	if cfg.SafetyMargin <= 0 {
		cfg.SafetyMargin = DefaultSafetyMargin
	}
	if cfg.ReadShare <= 0 || cfg.ReadShare > 1 {
		cfg.ReadShare = DefaultReadShare
	}
	if cfg.UnknownSample <= 0 {
		cfg.UnknownSample = DefaultUnknownSample
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.MetricsOut == nil {
		cfg.MetricsOut = io.Discard
	}
	return &Handler{cfg: cfg}
}

// Input is what the reconciler accepts: the EventBridge scheduled event (events.CloudWatchEvent,
// whose time seeds the group rotation), or an operator's manual payload such as {} or
// {"dryRun": true, "groups": ["AWS_Admins"]}.
type Input struct {
	events.CloudWatchEvent
	// DryRun forces a dry run for this invocation. It can only make a run safer: false does not
	// override DRY_RUN=true.
	DryRun bool `json:"dryRun,omitempty"`
	// Groups restricts the run to these selected Okta groups (names or ids). A name outside the
	// selection is reported, never reconciled.
	Groups []string `json:"groups,omitempty"`
}

// Trigger names what started the run, for the summary.
func (in Input) Trigger() string {
	if in.Source == "aws.events" || in.DetailType == "Scheduled Event" {
		return "schedule"
	}
	return "manual"
}

// OrphanGroup is an AWS group the identity rule maps no selected Okta group to.
type OrphanGroup struct {
	Group       string `json:"group"`
	SCIMGroupID string `json:"scimGroupId"`
	ExternalID  string `json:"externalId"`
	Reason      string `json:"reason"`
}

// IdentityConflict is a selected group the identity rule found no single AWS group for.
type IdentityConflict struct {
	Group        string   `json:"group"`
	GroupID      string   `json:"groupId"`
	SCIMGroupIDs []string `json:"scimGroupIds"` // the AWS groups involved, sorted
	Reason       string   `json:"reason"`
}

// SkippedGroup is a selected group the run could not reconcile, and why.
type SkippedGroup struct {
	Group   string `json:"group"`
	GroupID string `json:"groupId"`
	Reason  string `json:"reason"`
}

// PartialGroup is a group whose Okta member listing had fewer members than Okta counts in it
// (usersCount): the listing may be truncated, so none of the group's removals were made this run.
type PartialGroup struct {
	Group            string `json:"group"`
	GroupID          string `json:"groupId"`
	Listed           int    `json:"listed"`
	Counted          int    `json:"counted"`
	RemovalsWithheld int    `json:"removalsWithheld"`
}

// GroupResult is one group's plan and outcome in a run. In a dry run Added, Removed and Failed
// are 0 and the rest is what the run would do.
type GroupResult struct {
	Group       string `json:"group"`
	GroupID     string `json:"groupId"`
	SCIMGroupID string `json:"scimGroupId,omitempty"` // "" for a group that does not exist yet
	Created     bool   `json:"created,omitempty"`     // created (dry run: would be)
	Adopted     bool   `json:"adopted,omitempty"`     // found by name without externalId, externalId set (dry run: would be)
	RenamedFrom string `json:"renamedFrom,omitempty"` // the AWS name before the rename (dry run: planned)
	RenamedTo   string `json:"renamedTo,omitempty"`

	// Adds and Removes are the member changes planned after the safety rules and the ordering
	// marks; the logins list at most 1000 of each.
	Adds         int      `json:"adds"`
	Removes      int      `json:"removes"`
	AddLogins    []string `json:"addLogins,omitempty"`
	RemoveLogins []string `json:"removeLogins,omitempty"`
	// RemovalsBlocked are the removals withheld (empty Okta answer, partial listing,
	// MAX_REMOVALS), with the reason.
	RemovalsBlocked int      `json:"removalsBlocked,omitempty"`
	BlockedLogins   []string `json:"blockedLogins,omitempty"`
	BlockReason     string   `json:"blockReason,omitempty"`
	Deferred        int      `json:"deferred,omitempty"`     // dropped: the sync worker applied a newer event
	UnknownUsers    int      `json:"unknownUsers,omitempty"` // Okta members not provisioned in SCIM

	Added   int `json:"added"`
	Removed int `json:"removed"`
	Failed  int `json:"failed"`
}

// Summary is the run's result: returned to the invoker and logged as "reconcile summary".
type Summary struct {
	RunID   string `json:"runId"`
	Trigger string `json:"trigger"`
	DryRun  bool   `json:"dryRun"`

	GroupsSelected int `json:"groupsSelected"`
	GroupsChecked  int `json:"groupsChecked"` // read from Okta and SCIM and planned
	GroupsInSync   int `json:"groupsInSync"`
	GroupsCreated  int `json:"groupsCreated"`

	// Drift found: memberships to add and to remove.
	Adds    int `json:"adds"`
	Removes int `json:"removes"`
	// Changes SCIM confirmed (0 in a dry run).
	Added   int `json:"added"`
	Removed int `json:"removed"`
	Failed  int `json:"failed"`
	// Deferred: planned changes dropped because the sync worker applied an Okta event newer than
	// this run's read of the group (STATE_TABLE only).
	Deferred int `json:"deferred,omitempty"`

	// Blocked is true when removals were withheld: the run's removals exceeded MAX_REMOVALS, a
	// group's Okta answer was empty while SCIM had members (see SuspiciousGroups), or a group's
	// Okta member listing was shorter than Okta's count of it (see PartialGroups).
	Blocked          bool           `json:"blocked"`
	RemovalsBlocked  int            `json:"removalsBlocked"`
	BlockedReason    string         `json:"blockedReason,omitempty"`
	SuspiciousGroups []string       `json:"suspiciousGroups,omitempty"`
	PartialGroups    []PartialGroup `json:"partialGroups,omitempty"`

	// Orphans are AWS groups no selected Okta group maps to although they look like one's: one
	// carrying a deleted Okta group's id. Nothing writes to them; they keep members and
	// permission-set assignments until an administrator deletes them (metric OrphanGroups, alarm).
	Orphans []OrphanGroup `json:"orphans,omitempty"`
	// IdentityConflicts are the selected groups not reconciled because the identity rule cannot
	// tell their AWS group: several AWS groups carry the Okta group's id as externalId, or the AWS
	// group with its name carries another Okta group's id. Nothing is written for them (no adds,
	// removes, adoption or rename); they are in Skipped too (metric GroupIdentityConflicts, alarm).
	IdentityConflicts []IdentityConflict `json:"identityConflicts,omitempty"`
	// GroupsRenamed counts AWS groups renamed to their Okta group's current name.
	GroupsRenamed int `json:"groupsRenamed,omitempty"`
	// GroupsAdopted counts AWS groups found by name without externalId that got (in a dry run:
	// would get) their Okta group's id.
	GroupsAdopted int `json:"groupsAdopted,omitempty"`

	// Groups lists, per reconciled group with anything done or planned, what it was: the plan of
	// a dry run ("would …") or what a run did. In-sync groups are left out. Returned to the
	// invoker; the "reconcile summary" log line leaves it out (the "group reconciled" lines have
	// it), so the line stays within CloudWatch's event size.
	Groups []GroupResult `json:"groups,omitempty"`
	// WritesRefused counts SCIM writes the read-only client of a dry run refused: 0 unless a
	// code path wrote without asking whether the run is a dry run (a bug; nothing was sent).
	WritesRefused int64 `json:"writesRefused,omitempty"`

	Skipped    []SkippedGroup `json:"skipped,omitempty"`
	NotReached []string       `json:"notReached,omitempty"` // left for the next run (deadline)

	UnknownUsers       int      `json:"unknownUsers"` // Okta members not provisioned in SCIM
	UnknownUsersSample []string `json:"unknownUsersSample,omitempty"`

	ScimRequests int64 `json:"scimRequests"`
	OktaRequests int64 `json:"oktaRequests"`
	DurationMs   int64 `json:"durationMs"`

	Errors []string `json:"errors,omitempty"`
}

// ErrRemovalsBlocked is returned (wrapped) when the run planned more removals than MAX_REMOVALS:
// none were made, adds were applied.
var ErrRemovalsBlocked = errors.New("removals blocked by MAX_REMOVALS")

// Invoke implements lambda.Handler: it decodes the payload (empty means {}), runs, and returns
// the summary as JSON, or the run's error.
func (h *Handler) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	var in Input
	if p := bytes.TrimSpace(payload); len(p) > 0 && !bytes.Equal(p, []byte("null")) {
		if err := json.Unmarshal(p, &in); err != nil {
			return nil, fmt.Errorf("reconcile: payload is neither a scheduled event nor {\"dryRun\":…,\"groups\":[…]}: %w", err)
		}
	}
	sum, err := h.Handle(ctx, in)
	if err != nil {
		return nil, err
	}
	return json.Marshal(sum)
}

// Handle runs one reconcile. It returns an error when the run could not do its job: the Okta group
// list could not be read, SCIM or Okta rejected the token, or removals were blocked by MAX_REMOVALS.
// Skipped groups and failed changes are in the summary and the metrics, and the next run retries
// them.
func (h *Handler) Handle(ctx context.Context, in Input) (Summary, error) {
	s, _, err := h.handle(ctx, in)
	return s, err
}

// handle is Handle that also returns the run, for a plan's report (RunPlan).
func (h *Handler) handle(ctx context.Context, in Input) (Summary, *run, error) {
	start := h.cfg.Now()
	runID := runIDOf(ctx, start)
	log := telemetry.WithLambda(ctx, h.cfg.Log).With("run_id", runID)
	r := newRun(h, log, in, start, runID)

	work, cancel := context.WithCancel(ctx)
	if dl, ok := ctx.Deadline(); ok {
		work, cancel = context.WithDeadline(ctx, dl.Add(-h.cfg.SafetyMargin))
		budget := dl.Add(-h.cfg.SafetyMargin).Sub(start)
		r.readCutoff = start.Add(time.Duration(float64(budget) * h.cfg.ReadShare))
	}
	defer cancel()

	scimBefore := r.api.Stats()
	err := r.execute(ctx, work)
	r.report(ctx)
	scimAfter := r.api.Stats()

	s := r.summary()
	s.ScimRequests = scimAfter.TotalRequests() - scimBefore.TotalRequests()
	s.DurationMs = h.cfg.Now().Sub(start).Milliseconds()
	if r.readOnly != nil {
		if s.WritesRefused = r.readOnly.RefusedTotal(); s.WritesRefused > 0 {
			// A phase wrote without asking whether this is a dry run: a bug, stopped by the client.
			s.Errors = append(s.Errors, fmt.Sprintf("dry run: %d SCIM writes refused by the read-only client (%v); nothing was sent", s.WritesRefused, r.readOnly.Refused()))
		}
	}
	if err != nil {
		s.Errors = append([]string{err.Error()}, s.Errors...)
	}
	if len(s.Errors) > maxSummaryErrors {
		s.Errors = append(s.Errors[:maxSummaryErrors:maxSummaryErrors], fmt.Sprintf("… and %d more (see the log)", len(s.Errors)-maxSummaryErrors))
	}

	met := r.met
	met.Count(telemetry.MetricScimRequests, float64(s.ScimRequests))
	met.Count(telemetry.MetricScimThrottles, float64(scimAfter.Throttles-scimBefore.Throttles))
	met.Count(telemetry.MetricScimRetries, float64(scimAfter.Retries-scimBefore.Retries))
	if r.scimUnauthorized.Load() {
		met.Count(telemetry.MetricScimUnauthorized, 1)
	}
	met.Flush(h.cfg.MetricsOut)

	level := slog.LevelInfo
	if err != nil {
		level = slog.LevelError
	}
	logged := s
	logged.Groups = nil
	log.Log(ctx, level, "reconcile summary", "summary", logged)
	return s, r, err
}

// runIDOf names the run in logs and in the ordering marks it writes: the Lambda request id when
// there is one.
func runIDOf(ctx context.Context, now time.Time) string {
	if lc, ok := lambdacontext.FromContext(ctx); ok && lc.AwsRequestID != "" {
		return lc.AwsRequestID
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}
