// Package reconciler is the scheduled drift repair: for each selected Okta group it reads Okta's
// members and the AWS group's members, links the users, plans the difference, checks the safety
// rules on the whole run (MAX_REMOVALS, empty or truncated Okta answers), drops what a newer Okta
// event already decided (the ordering ledger), and applies the rest through the SCIM apply path
// (pkg/scimapply). Each group travels through a run as a [groupRun] holding what was read, the
// plan and the outcome. functions/reconcile wires it to Lambda; docs/RECONCILE.md walks a run.
package reconciler
