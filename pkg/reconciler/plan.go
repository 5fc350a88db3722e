package reconciler

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/ledger"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scimapply"
)

// A plan is a dry run made for a person (cmd/plan, make plan): the run's phases up to the plan,
// with a SCIM client and a ledger that refuse every write, reported as a per-group table whose
// exit code says whether AWS is in sync.

// Exit codes of a plan ([PlanReport.ExitCode]).
const (
	PlanExitInSync = 0 // nothing would change
	PlanExitError  = 1 // the plan is incomplete: a group could not be read, a requested group is unknown, …
	PlanExitDrift  = 2 // the reconciler would change something, or something needs a person
)

// PlanStatus is what a plan found for one selected Okta group.
type PlanStatus string

const (
	PlanInSync PlanStatus = "in sync"
	PlanDrift  PlanStatus = "drift" // changes planned (or withheld: blocked removals)
	// PlanConflict: the AWS group with this name carries another live Okta group's id; nothing is
	// written to it (docs/RECONCILE.md, GroupIdentityConflicts).
	PlanConflict PlanStatus = "identity conflict"
	// PlanSkipped: a rule leaves the group alone and a person must act (two Okta groups with one
	// name, CREATE_GROUPS=false, an AWS group renamed out of the selection).
	PlanSkipped PlanStatus = "skipped"
	// PlanError: the group could not be read, so its plan is unknown.
	PlanError PlanStatus = "error"
	// PlanNotReached: the plan ran out of time before the group (-timeout).
	PlanNotReached PlanStatus = "not reached"
)

// planListed bounds the logins a plan lists per group and kind; the counts are exact.
const planListed = 50

// PlanGroup is one selected Okta group in a plan. Adds and Removes are what a reconcile would
// make; BlockedRemovals are removals the safety rules withhold (MAX_REMOVALS, an empty or partial
// Okta answer) and are not in Removes.
type PlanGroup struct {
	Group       string     `json:"group"`
	GroupID     string     `json:"groupId"`
	AWSGroup    string     `json:"awsGroup,omitempty"` // the AWS group's current name; "" when there is none
	SCIMGroupID string     `json:"scimGroupId,omitempty"`
	Status      PlanStatus `json:"status"`

	Create     bool   `json:"create,omitempty"`     // the AWS group would be created
	Adopt      bool   `json:"adopt,omitempty"`      // found by name without externalId: it would get the Okta id
	RenameFrom string `json:"renameFrom,omitempty"` // the AWS group would be renamed from this to Group

	Adds            int      `json:"adds"`
	Removes         int      `json:"removes"`
	BlockedRemovals int      `json:"blockedRemovals"`
	AddLogins       []string `json:"addLogins,omitempty"`
	RemoveLogins    []string `json:"removeLogins,omitempty"`
	BlockedLogins   []string `json:"blockedLogins,omitempty"`
	BlockReason     string   `json:"blockReason,omitempty"`

	Deferred      int `json:"deferred,omitempty"`      // dropped: the sync worker applied a newer Okta event
	Unprovisioned int `json:"unprovisioned,omitempty"` // Okta members with no SCIM user (not the reconciler's to fix)

	Reason string `json:"reason,omitempty"` // why the group is a conflict, skipped, in error or not reached
}

// PlanTotals sums a plan. Removes never include BlockedRemovals: a blocked removal is one the
// reconciler would not make.
type PlanTotals struct {
	Groups          int `json:"groups"`
	InSync          int `json:"inSync"`
	Drifted         int `json:"drifted"`
	Adds            int `json:"adds"`
	Removes         int `json:"removes"`
	BlockedRemovals int `json:"blockedRemovals"`
	Renames         int `json:"renames"`
	Adoptions       int `json:"adoptions"`
	Creations       int `json:"creations"`
	Orphans         int `json:"orphans"`
	Conflicts       int `json:"conflicts"`
	Skipped         int `json:"skipped"`
	Errors          int `json:"errors"` // groups in error or not reached, plus run-level errors
	Deferred        int `json:"deferred"`
	Unprovisioned   int `json:"unprovisioned"`
}

// PlanReport is a plan's result.
type PlanReport struct {
	Selection     string        `json:"selection"`           // e.g. prefix "AWS_"
	Requested     []string      `json:"requested,omitempty"` // the groups asked for (all selected when empty)
	MaxRemovals   int           `json:"maxRemovals"`
	LedgerRead    bool          `json:"ledgerRead"` // the sync worker's ordering marks were consulted
	Groups        []PlanGroup   `json:"groups"`
	Orphans       []OrphanGroup `json:"orphans,omitempty"`
	BlockedReason string        `json:"blockedReason,omitempty"`
	Errors        []string      `json:"errors,omitempty"`
	Totals        PlanTotals    `json:"totals"`

	// Writes the read-only SCIM client and ledger refused: 0 unless a code path forgot the dry
	// run (then the plan is an error; nothing was written).
	SCIMWritesRefused   int64 `json:"scimWritesRefused"`
	LedgerWritesRefused int64 `json:"ledgerWritesRefused"`
	ScimRequests        int64 `json:"scimRequests"`
	OktaRequests        int64 `json:"oktaRequests"`
}

// RunPlan makes the plan of a reconcile for the selected groups (or, when groups is not empty,
// for those names or Okta ids) without writing anything: it is a dry run whose SCIM client is
// scim.ReadOnlyOf(cfg.SCIM) and whose ledger (when cfg.Ledger is set) is ledger.ReadOnlyOf, so
// a write anywhere is refused, counted and makes the plan an error. The error is non-nil when
// no plan could be made at all (the Okta group list, a rejected token); it is in the report too.
func RunPlan(ctx context.Context, cfg Config, groups []string) (PlanReport, error) {
	cfg.DryRun = true
	var led *ledger.ReadOnly
	if cfg.Ledger != nil {
		led = ledger.ReadOnlyOf(cfg.Ledger)
		cfg.Ledger = led
	}
	if full, ok := cfg.SCIM.(scim.API); ok {
		cfg.SCIM = scim.ReadOnlyOf(full)
	}
	h := NewHandler(cfg)
	s, r, err := h.handle(ctx, Input{DryRun: true, Groups: groups})
	rep := planReportOf(&h.cfg, r, s)
	rep.Requested = groups
	if led != nil {
		rep.LedgerWritesRefused = led.Refused()
		if rep.LedgerWritesRefused > 0 {
			rep.Errors = append(rep.Errors, fmt.Sprintf("%d ordering-mark writes refused by the read-only ledger: nothing was written", rep.LedgerWritesRefused))
		}
	}
	if err != nil && !errors.Is(err, ErrRemovalsBlocked) {
		// Blocked removals are a finding of the plan (BlockedReason), not a failure to make it.
		rep.Errors = append([]string{err.Error()}, rep.Errors...)
	} else {
		err = nil
	}
	rep.Totals.Errors += len(rep.Errors)
	return rep, err
}

// planReportOf builds the report from the run's groups (the summary leaves in-sync groups out).
func planReportOf(cfg *Config, r *run, s Summary) PlanReport {
	rep := PlanReport{
		Selection: selectionString(cfg), MaxRemovals: cfg.MaxRemovals, LedgerRead: cfg.Ledger != nil,
		Orphans: s.Orphans, SCIMWritesRefused: s.WritesRefused, ScimRequests: s.ScimRequests, OktaRequests: s.OktaRequests,
	}
	if r.verdict.OverCap {
		rep.BlockedReason = s.BlockedReason
	}
	for _, g := range r.groups {
		pg := planGroupOf(g, r.stopped())
		rep.Groups = append(rep.Groups, pg)
		t := &rep.Totals
		t.Groups++
		switch pg.Status {
		case PlanInSync:
			t.InSync++
		case PlanDrift:
			t.Drifted++
		case PlanConflict:
			t.Conflicts++
		case PlanSkipped:
			t.Skipped++
		case PlanError, PlanNotReached:
			t.Errors++
		}
		t.Adds += pg.Adds
		t.Removes += pg.Removes
		t.BlockedRemovals += pg.BlockedRemovals
		t.Deferred += pg.Deferred
		t.Unprovisioned += pg.Unprovisioned
		if pg.RenameFrom != "" {
			t.Renames++
		}
		if pg.Adopt {
			t.Adoptions++
		}
		if pg.Create {
			t.Creations++
		}
	}
	rep.Totals.Orphans = len(rep.Orphans)
	slices.SortFunc(rep.Groups, func(a, b PlanGroup) int {
		return cmp.Or(strings.Compare(a.Group, b.Group), strings.Compare(a.GroupID, b.GroupID))
	})
	slices.SortFunc(rep.Orphans, func(a, b OrphanGroup) int {
		return cmp.Or(strings.Compare(a.Group, b.Group), strings.Compare(a.SCIMGroupID, b.SCIMGroupID))
	})
	r.errMu.Lock()
	rep.Errors = append(rep.Errors, r.errs...)
	r.errMu.Unlock()
	if s.WritesRefused > 0 {
		rep.Errors = append(rep.Errors, fmt.Sprintf("%d SCIM writes refused by the read-only client (%v): nothing was sent", s.WritesRefused, r.readOnly.Refused()))
	}
	return rep
}

func planGroupOf(g *groupRun, stopped bool) PlanGroup {
	pg := PlanGroup{Group: g.okta.Name, GroupID: g.okta.ID}
	if g.read.inSCIM {
		pg.AWSGroup, pg.SCIMGroupID = g.read.scim.DisplayName, g.read.scim.ID
	}
	switch g.state {
	case stateSkipped:
		pg.Status, pg.Reason = skipStatus(g.skipCause), g.skipReason
		if pg.Status == PlanConflict {
			// The conflict names both groups; "lookup failed" would send the reader after an outage.
			pg.Reason = g.skipCause.Error()
		}
		return pg
	case stateDone:
	default:
		pg.Status, pg.Reason = PlanNotReached, "not planned before the plan's time ran out (-timeout)"
		if stopped {
			pg.Status, pg.Reason = PlanNotReached, "not planned: a token was rejected (see the errors)"
		}
		return pg
	}
	p := g.plan
	pg.Create, pg.Adopt, pg.RenameFrom = g.out.created, g.out.adopted, g.out.renameFrom
	if pg.Create {
		pg.AWSGroup = ""
	}
	pg.Adds, pg.Removes, pg.BlockedRemovals = len(p.adds), len(p.removes), p.blocked
	pg.AddLogins, pg.RemoveLogins = logins(p.adds, planListed), logins(p.removes, planListed)
	pg.BlockedLogins, pg.BlockReason = logins(p.blockedMembers, planListed), p.blockReason
	pg.Deferred, pg.Unprovisioned = p.deferred, len(p.unknown)
	pg.Status = PlanInSync
	if pg.Adds+pg.Removes+pg.BlockedRemovals > 0 || pg.Create || pg.Adopt || pg.RenameFrom != "" {
		pg.Status = PlanDrift
	}
	return pg
}

// skipStatus tells an identity decision from a failure to read: a group skipped by a rule or by
// the identity rule needs a person (exit 2); one skipped by an error has no plan (exit 1).
func skipStatus(cause error) PlanStatus {
	switch {
	case cause == nil, errors.Is(cause, scimapply.ErrNotSelected), errors.Is(cause, scimapply.ErrDeletedInOkta):
		return PlanSkipped
	case errors.Is(cause, scimapply.ErrIdentityConflict):
		return PlanConflict
	}
	return PlanError
}

func selectionString(cfg *Config) string {
	if cfg.Selection.Regex != nil {
		return "regex " + strconv.Quote(cfg.Selection.Regex.String())
	}
	return "prefix " + strconv.Quote(cfg.Selection.Prefix)
}

// ExitCode is the plan's exit status: 1 when the plan is incomplete or a write was refused, 2
// when a reconcile would change something or something needs a person (orphans, identity
// conflicts, skipped groups, blocked removals), 0 when everything selected is in sync.
func (p PlanReport) ExitCode() int {
	t := p.Totals
	switch {
	case t.Errors > 0 || len(p.Errors) > 0 || p.SCIMWritesRefused > 0 || p.LedgerWritesRefused > 0:
		return PlanExitError
	case t.Drifted+t.Conflicts+t.Skipped+t.Orphans > 0:
		return PlanExitDrift
	}
	return PlanExitInSync
}

// Render writes the plan for a person: one row per selected group, the logins of each change,
// the orphans, the errors, the totals and the verdict.
func (p PlanReport) Render(w io.Writer) error {
	ew := &errWriter{w: w}
	ledgerNote := "not read (no state table)"
	if p.LedgerRead {
		ledgerNote = "read (changes the sync worker applied since are left to it)"
	}
	fmt.Fprintf(ew, "Reconcile plan (read-only: nothing was written)\n")
	fmt.Fprintf(ew, "selection %s, MAX_REMOVALS %d, ordering marks %s\n\n", p.Selection, p.MaxRemovals, ledgerNote)

	switch {
	case len(p.Groups) == 0 && len(p.Requested) > 0:
		fmt.Fprintf(ew, "none of the requested groups is a selected Okta group\n")
	case len(p.Groups) == 0:
		fmt.Fprintf(ew, "no Okta group is selected\n")
	default:
		tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "GROUP\tAWS GROUP\tADD\tREMOVE\tBLOCKED\tSTATUS\n")
		for _, g := range p.Groups {
			aws := g.AWSGroup
			switch {
			case g.Create:
				aws = "(would be created)"
			case aws == "":
				aws = "-"
			}
			counts := []string{strconv.Itoa(g.Adds), strconv.Itoa(g.Removes), strconv.Itoa(g.BlockedRemovals)}
			switch g.Status {
			case PlanError, PlanNotReached:
				counts = []string{"?", "?", "?"} // not read: unknown, not zero
			case PlanConflict, PlanSkipped:
				counts = []string{"-", "-", "-"} // left alone
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", g.Group, aws, strings.Join(counts, "\t"), statusLine(g))
		}
		_ = tw.Flush()
	}

	details := false
	for _, g := range p.Groups {
		lines := detailLines(g)
		if len(lines) == 0 {
			continue
		}
		if !details {
			fmt.Fprintf(ew, "\n")
			details = true
		}
		fmt.Fprintf(ew, "%s (%s)\n", g.Group, g.GroupID)
		for _, l := range lines {
			fmt.Fprintf(ew, "  %s\n", l)
		}
	}
	if len(p.Orphans) > 0 {
		fmt.Fprintf(ew, "\norphan AWS groups (never written: move their permission-set assignments, then delete them in IAM Identity Center)\n")
		for _, o := range p.Orphans {
			fmt.Fprintf(ew, "  %s (%s, externalId %s): %s\n", o.Group, o.SCIMGroupID, o.ExternalID, o.Reason)
		}
	}
	if p.BlockedReason != "" {
		fmt.Fprintf(ew, "\nremovals blocked for the whole run: %s\n", p.BlockedReason)
	}
	if len(p.Errors) > 0 {
		fmt.Fprintf(ew, "\nerrors\n")
		for _, e := range p.Errors {
			fmt.Fprintf(ew, "  %s\n", e)
		}
	}
	t := p.Totals
	fmt.Fprintf(ew, "\ntotals: %s selected, %d in sync, %d with drift; %s, %s, %s; %s, %s, %s; %s, %s, %d skipped, %s\n",
		plural(t.Groups, "group"), t.InSync, t.Drifted,
		plural(t.Adds, "add"), plural(t.Removes, "remove"), plural(t.BlockedRemovals, "removal")+" blocked",
		plural(t.Creations, "creation"), plural(t.Renames, "rename"), plural(t.Adoptions, "adoption"),
		plural(t.Orphans, "orphan"), plural(t.Conflicts, "identity conflict"), t.Skipped, plural(t.Errors, "error"))
	if t.Deferred > 0 {
		fmt.Fprintf(ew, "        %s left to newer Okta events the sync worker applied\n", plural(t.Deferred, "change"))
	}
	if t.Unprovisioned > 0 {
		fmt.Fprintf(ew, "        %s not provisioned in AWS, not the reconciler's to add (assign them to the AWS app in Okta)\n", plural(t.Unprovisioned, "Okta member"))
	}
	switch p.ExitCode() {
	case PlanExitInSync:
		fmt.Fprintf(ew, "result: in sync (exit 0)\n")
	case PlanExitDrift:
		fmt.Fprintf(ew, "result: drift (exit 2)\n")
	default:
		fmt.Fprintf(ew, "result: error, the plan is incomplete (exit 1)\n")
	}
	return ew.err
}

// statusLine is a group's STATUS cell: the status and what makes it so.
func statusLine(g PlanGroup) string {
	var notes []string
	if g.Create {
		notes = append(notes, "create")
	}
	if g.Adopt {
		notes = append(notes, "adopt")
	}
	if g.RenameFrom != "" {
		notes = append(notes, "rename from "+g.RenameFrom)
	}
	if g.BlockedRemovals > 0 {
		notes = append(notes, "removals blocked")
	}
	if g.Deferred > 0 {
		notes = append(notes, strconv.Itoa(g.Deferred)+" deferred")
	}
	if g.Unprovisioned > 0 {
		notes = append(notes, strconv.Itoa(g.Unprovisioned)+" not provisioned")
	}
	if len(notes) == 0 {
		return string(g.Status)
	}
	return string(g.Status) + ": " + strings.Join(notes, ", ")
}

// detailLines are a group's lines under the table: every change by login, the reason of a block,
// a conflict, a skip or an error.
func detailLines(g PlanGroup) []string {
	var out []string
	if g.Reason != "" {
		out = append(out, string(g.Status)+": "+g.Reason)
	}
	if g.Create {
		out = append(out, "create AWS group "+strconv.Quote(g.Group)+" (externalId "+g.GroupID+")")
	}
	if g.Adopt {
		out = append(out, "adopt AWS group "+strconv.Quote(g.AWSGroup)+" ("+g.SCIMGroupID+"): set externalId "+g.GroupID)
	}
	if g.RenameFrom != "" {
		out = append(out, "rename AWS group "+strconv.Quote(g.RenameFrom)+" to "+strconv.Quote(g.Group))
	}
	list := func(mark string, ls []string, n int) {
		for _, l := range ls {
			out = append(out, mark+" "+l)
		}
		if n > len(ls) {
			out = append(out, fmt.Sprintf("%s … and %d more", mark, n-len(ls)))
		}
	}
	list("+", g.AddLogins, g.Adds)
	list("-", g.RemoveLogins, g.Removes)
	if g.BlockedRemovals > 0 {
		out = append(out, fmt.Sprintf("%s blocked: %s", plural(g.BlockedRemovals, "removal"), g.BlockReason))
		list("!", g.BlockedLogins, g.BlockedRemovals)
	}
	return out
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

// errWriter keeps the first write error so Render can format freely and report it once.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(b []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(b)
	e.err = err
	return n, err
}
