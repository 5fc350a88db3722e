package telemetry

// Metric names (CloudWatch EMF, namespace METRICS_NAMESPACE, no dimensions): the one list. The
// functions emit only these, and the template's alarms and dashboard read only these
// (tests/template_test.go checks it), so a renamed metric cannot silently leave an alarm blind.
const (
	// Hook.
	MetricEventsReceived   = "EventsReceived"
	MetricChangesEnqueued  = "ChangesEnqueued"
	MetricEventsDropped    = "EventsDropped"
	MetricHookAuthFailures = "HookAuthFailures"
	MetricHookRejected     = "HookRejected"

	// Sync and reconcile: changes.
	MetricChangesApplied      = "ChangesApplied"
	MetricChangesSkipped      = "ChangesSkipped"
	MetricChangesFailed       = "ChangesFailed"
	MetricChangesIsolated     = "ChangesIsolated"
	MetricChangesDeadLettered = "ChangesDeadLettered"
	MetricWritesConverged     = "WritesConverged"
	MetricUnknownUsers        = "UnknownUsers"
	MetricLagMs               = "LagMs"

	// SCIM traffic.
	MetricScimRequests     = "ScimRequests"
	MetricScimRetries      = "ScimRetries"
	MetricScimThrottles    = "ScimThrottles"
	MetricScimUnauthorized = "ScimUnauthorized"

	// Group identity.
	MetricGroupIdentityConflicts = "GroupIdentityConflicts"
	MetricOrphanGroups           = "OrphanGroups"

	// Reconcile runs.
	MetricDriftFound               = "DriftFound"
	MetricDriftRepaired            = "DriftRepaired"
	MetricReconcileGroupsSkipped   = "ReconcileGroupsSkipped"
	MetricReconcileRemovalsBlocked = "ReconcileRemovalsBlocked"
)

// MetricNames lists every metric name above.
var MetricNames = []string{
	MetricEventsReceived, MetricChangesEnqueued, MetricEventsDropped, MetricHookAuthFailures, MetricHookRejected,
	MetricChangesApplied, MetricChangesSkipped, MetricChangesFailed, MetricChangesIsolated, MetricChangesDeadLettered,
	MetricWritesConverged, MetricUnknownUsers, MetricLagMs,
	MetricScimRequests, MetricScimRetries, MetricScimThrottles, MetricScimUnauthorized,
	MetricGroupIdentityConflicts, MetricOrphanGroups,
	MetricDriftFound, MetricDriftRepaired, MetricReconcileGroupsSkipped, MetricReconcileRemovalsBlocked,
}

// Audit record results ([AuditRecord.Result]).
const (
	// ResultApplied: SCIM confirmed the change.
	ResultApplied = "applied"
	// ResultDryRun: DRY_RUN: the change would have been made.
	ResultDryRun = "dry_run"
	// ResultNotApplied: acknowledged without a SCIM write on purpose (a membership add of a user
	// whose Okta status grants no membership).
	ResultNotApplied = "not_applied"
)

// Audit record ops ([AuditRecord.Op]) besides the membership kinds (add, remove).
const (
	OpCreateGroup = "create_group"
	OpAdoptGroup  = "adopt_group"
	OpRename      = "rename"
	OpDeleteGroup = "delete_group"
)
