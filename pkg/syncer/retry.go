package syncer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/queue"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/telemetry"
)

// The failure path (docs/SYNC.md, "Failures and retries"). SQS FIFO delivers no message of a
// message group while one of its messages is in flight, and Lambda's SQS event source leaves a
// message reported in batchItemFailures in flight until its visibility timeout ends ("Handling
// errors for an SQS event source in Lambda"). So every failure holds its Okta group for as long
// as the failed message stays invisible, and the worker decides that time itself:
//
//   - A transient failure (429, 5xx, timeout, deadline, ledger, group-level errors) fails the
//     message as it is, packed, and sets its visibility to a short backoff: everything in that
//     group would fail the same way now, and a pack retried keeps its batching (what was applied
//     is skipped by the ledger at no SCIM cost).
//   - A change that fails on its own (a user AWS does not know yet, a 4xx naming the user) is
//     moved out of its group into a message group of its own (queue.IsolatedGroupID) and its
//     message is acknowledged: the group's other changes go on at once. The isolated change is
//     retried with the same backoff and dead-lettered, with its reason, after
//     UnprovisionedUserWait (unknown user) or maxIsolatedAttempts (other 4xx).
//   - A change that can never apply (invalid, undecodable) is dead-lettered at once.
//
// Isolation keeps the ordering guarantees because order was never taken from queue position:
// per (group, user) the newest `published` change wins against the ordering ledger, so an
// isolated older add retried after a newer remove was applied is a no-op, and a newer change
// of the same user isolated with it follows it in the same isolated group.

// failClass says how a failed change is retried.
type failClass int

const (
	// failTransient: the message is retried whole after a backoff.
	failTransient failClass = iota
	// failSelf: the change is isolated and retried alone, up to maxIsolatedAttempts.
	failSelf
	// failUnprovisioned: the user is not in AWS yet; isolated and retried alone until
	// UnprovisionedUserWait has passed since it first failed.
	failUnprovisioned
	// failPermanent: retrying cannot help; dead-lettered now.
	failPermanent
)

func (c failClass) String() string {
	switch c {
	case failSelf:
		return "self"
	case failUnprovisioned:
		return "unprovisioned"
	case failPermanent:
		return "permanent"
	}
	return "transient"
}

// maxIsolatedAttempts bounds the receives of an isolated change that failed with a 4xx naming
// it (not an unknown user): a few tries ride out a user deleted and re-created meanwhile.
const maxIsolatedAttempts = 5

// Backoff bounds: the first retry after 5 s, doubling up to a minute. A minute is what a
// recovered group may still wait after an outage, and what one waiting new hire costs: one
// SCIM lookup a minute.
const (
	backoffFirst = 5 * time.Second
	backoffMax   = time.Minute
)

// DefaultBackoff is the in-flight time of a failed message on its n-th receive (1 = first
// delivery): 5 s, 10 s, 20 s, 40 s, then 60 s.
func DefaultBackoff(receiveCount int) time.Duration {
	d := backoffFirst
	for i := 1; i < receiveCount && d < backoffMax; i++ {
		d *= 2
	}
	return min(d, backoffMax)
}

// Visibility sets how long received messages stay in flight (pkg/queue's Visibility).
type Visibility interface {
	Delay(ctx context.Context, ds []queue.Delay) error
}

// classOf classifies a SCIM error of one user's change: throttling, server errors, transport
// errors, a rejected token and an ended context are transient; any other answer (a 4xx, or 501
// for an operation AWS does not implement: scim.ClassOf) names the change.
func classOf(err error) failClass {
	s := scim.StatusOf(err)
	if s == 0 || errors.Is(err, scim.ErrUnauthorized) || scim.ClassOf(s).Transient() {
		return failTransient
	}
	return failSelf
}

// settleStats counts what settle did, for the batch log line.
type settleStats struct {
	failed, delayed, isolated, deadLettered int
}

// settle turns the changes' outcomes into batch item failures, visibility backoffs, isolated
// retries and dead letters (see the comment at the top of this file): each message's outcome is
// decided first, then isolated changes and dead letters are sent (a failed send falls back to
// retrying the message whole), then the backoffs are set.
func (r *run) settle(ctx context.Context) (events.SQSEventResponse, settleStats) {
	s := &settler{r: r, ctx: ctx, isolatedBy: map[*record][]queue.Entry{}, deadBy: map[*record][]queue.Entry{}, reported: map[*record]bool{}}
	now := r.h.cfg.Now()
	for _, rc := range r.records {
		s.decide(rc, now)
	}
	s.send()
	s.logOutcomes()
	r.met.Count(telemetry.MetricChangesIsolated, float64(s.st.isolated))
	r.met.Count(telemetry.MetricChangesDeadLettered, float64(s.st.deadLettered))
	s.setBackoffs()
	return s.resp, s.st
}

// settler is one settle: what each message becomes.
type settler struct {
	r   *run
	ctx context.Context

	resp       events.SQSEventResponse
	st         settleStats
	delays     []queue.Delay
	isolate    []queue.Entry
	isolatedBy map[*record][]queue.Entry
	deadBy     map[*record][]queue.Entry
	reported   map[*record]bool
}

// report fails the message rc (once) and sets its backoff.
func (s *settler) report(rc *record, why string) {
	if s.reported[rc] {
		return
	}
	s.reported[rc] = true
	s.st.failed++
	s.resp.BatchItemFailures = append(s.resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: rc.msg.MessageID})
	d := s.r.h.cfg.Backoff(max(rc.msg.ReceiveCount, 1))
	if rc.msg.ReceiptHandle != "" {
		s.delays = append(s.delays, queue.Delay{ReceiptHandle: rc.msg.ReceiptHandle, After: d})
	}
	s.r.log.WarnContext(s.ctx, "message retried after backoff", "message_id", rc.msg.MessageID, "message_group", rc.msg.GroupID,
		"receive_count", rc.msg.ReceiveCount, "backoff_s", d.Seconds(), "why", why)
}

// decide settles one message: acknowledged (nothing failed), retried whole after a backoff (a
// transient failure, or no queue to isolate into), its failed changes isolated or dead-lettered
// (the message itself acknowledged), or, already isolated, retried until given up on.
func (s *settler) decide(rc *record, now time.Time) {
	cfg := s.r.h.cfg
	if rc.undecodable != "" {
		if cfg.DeadLetter == nil {
			s.report(rc, rc.undecodable)
			return
		}
		e := queue.Entry{Body: rc.msg.Body, GroupID: orDefault(rc.msg.GroupID, "undecodable"),
			DedupID: queue.PackDedupID([]string{"undecodable/" + rc.msg.MessageID}), Reason: rc.undecodable}
		s.deadBy[rc] = []queue.Entry{e}
		return
	}
	var bad []*item
	for _, it := range rc.items {
		if !it.ok() {
			bad = append(bad, it)
		}
	}
	if len(bad) == 0 {
		return
	}
	if i := slices.IndexFunc(bad, func(it *item) bool { return it.fail.class == failTransient }); i >= 0 {
		s.report(rc, bad[i].fail.reason)
		return
	}
	if queue.Isolated(rc.msg.GroupID) {
		// Already alone in its group: retry it here until it is given up on.
		if give, why := s.r.giveUp(rc, bad, now); give && cfg.DeadLetter != nil {
			if es, err := deadEntries(bad, why); err == nil {
				s.deadBy[rc] = es
				return
			}
		}
		s.report(rc, bad[0].fail.reason)
		return
	}
	// In its Okta group's message: isolate what fails on its own, dead-letter what never
	// applies, acknowledge the message so the group goes on.
	var iso, dl []*item
	for _, it := range bad {
		if it.fail.class == failPermanent && cfg.DeadLetter != nil {
			dl = append(dl, it)
		} else {
			iso = append(iso, it)
		}
	}
	if cfg.Requeue == nil && len(iso) > 0 {
		s.report(rc, bad[0].fail.reason)
		return
	}
	ies, err := retryEntries(iso)
	var des []queue.Entry
	if err == nil {
		des, err = deadEntries(dl, "")
	}
	if err != nil { // they decoded, so they encode; a bug, not bad input
		s.r.log.ErrorContext(s.ctx, "failed change not encodable", "message_id", rc.msg.MessageID, "error", err.Error())
		s.report(rc, err.Error())
		return
	}
	if len(ies) > 0 {
		s.isolatedBy[rc] = ies
	}
	if len(des) > 0 {
		s.deadBy[rc] = des
	}
	s.isolate = append(s.isolate, ies...)
}

// send moves isolated changes to their own message groups and dead letters to the DLQ, in the
// invocation's own context (the safety margin before the deadline leaves time for these). A
// failed send retries the messages concerned whole instead: nothing is acknowledged that was not
// sent.
func (s *settler) send() {
	cfg := s.r.h.cfg
	if len(s.isolate) > 0 {
		if err := cfg.Requeue.SendEntries(s.ctx, s.isolate); err != nil {
			s.r.log.ErrorContext(s.ctx, "isolating failed changes failed: their messages are retried whole",
				"changes", len(s.isolate), "error", err.Error())
			for rc := range s.isolatedBy {
				delete(s.deadBy, rc)
				s.report(rc, "isolation failed: "+err.Error())
			}
			s.isolatedBy = nil
		}
	}
	if len(s.deadBy) > 0 {
		var send []queue.Entry
		for _, es := range s.deadBy {
			send = append(send, es...)
		}
		if err := cfg.DeadLetter.SendEntries(s.ctx, send); err != nil {
			s.r.log.ErrorContext(s.ctx, "dead-lettering failed: the messages are retried", "changes", len(send), "error", err.Error())
			for rc := range s.deadBy {
				s.report(rc, "dead-letter failed: "+err.Error())
			}
			s.deadBy = nil
		}
	}
}

// logOutcomes counts and logs what was isolated and dead-lettered.
func (s *settler) logOutcomes() {
	for rc, es := range s.isolatedBy {
		s.st.isolated += len(es)
		reasons := reasonsOf(rc)
		s.r.log.WarnContext(s.ctx, "changes that failed on their own were moved out of their group's way; the group goes on",
			"message_id", rc.msg.MessageID, "message_group", rc.msg.GroupID, "changes", len(rc.items), "isolated", len(es), "reasons", reasons)
	}
	for rc, es := range s.deadBy {
		s.st.deadLettered += len(es)
		for _, e := range es {
			s.r.log.ErrorContext(s.ctx, "change dead-lettered", "message_id", rc.msg.MessageID, "message_group", rc.msg.GroupID,
				"receive_count", rc.msg.ReceiveCount, "reason", e.Reason)
		}
	}
}

// setBackoffs sets the visibility of the failed messages to their backoff.
func (s *settler) setBackoffs() {
	if len(s.delays) == 0 || s.r.h.cfg.Visibility == nil {
		return
	}
	if err := s.r.h.cfg.Visibility.Delay(s.ctx, s.delays); err != nil {
		s.r.log.ErrorContext(s.ctx, "setting the retry backoff failed: those messages wait out the queue's visibility timeout",
			"messages", len(s.delays), "error", err.Error())
	}
	s.st.delayed = len(s.delays)
}

// giveUp decides whether an isolated message's failed changes are dead-lettered now, and why.
func (r *run) giveUp(rc *record, bad []*item, now time.Time) (bool, string) {
	for _, it := range bad {
		switch it.fail.class {
		case failPermanent:
			return true, it.fail.reason
		case failUnprovisioned:
			if rc.msg.SentAt.IsZero() {
				return false, ""
			}
			if waited := now.Sub(rc.msg.SentAt); waited >= r.h.cfg.UnprovisionedUserWait {
				return true, fmt.Sprintf("%s: still unknown to AWS after %s of retries (UNPROVISIONED_USER_WAIT=%s)",
					it.fail.reason, waited.Round(time.Second), r.h.cfg.UnprovisionedUserWait)
			}
			return false, ""
		default:
			if rc.msg.ReceiveCount >= maxIsolatedAttempts {
				return true, fmt.Sprintf("%s: failed %d tries", it.fail.reason, rc.msg.ReceiveCount)
			}
			return false, ""
		}
	}
	return false, ""
}

func retryEntries(items []*item) ([]queue.Entry, error) {
	out := make([]queue.Entry, 0, len(items))
	for _, it := range items {
		e, err := queue.RetryEntry(it.change)
		if err != nil {
			return nil, fmt.Errorf("event %s: %w", it.change.EventUUID, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// deadEntries encodes items for the DLQ, each with its reason (why overrides it when set).
func deadEntries(items []*item, why string) ([]queue.Entry, error) {
	out := make([]queue.Entry, 0, len(items))
	for _, it := range items {
		e, err := queue.Encode(it.change)
		if err != nil {
			return nil, fmt.Errorf("event %s: %w", it.change.EventUUID, err)
		}
		e.DedupID = queue.PackDedupID([]string{e.DedupID, "dead"})
		e.Reason = orDefault(why, it.fail.reason)
		out = append(out, e)
	}
	return out, nil
}

func reasonsOf(rc *record) []string {
	var reasons []string
	for _, it := range rc.items {
		if !it.ok() && !slices.Contains(reasons, it.fail.reason) {
			reasons = append(reasons, it.fail.reason)
		}
	}
	return reasons
}

func orDefault(s, def string) string {
	if strings.TrimSpace(s) == "" {
		return def
	}
	return s
}
