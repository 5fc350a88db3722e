// Package syncer is the sync worker: it takes one SQS FIFO batch of the membership changes the hook
// queued, keeps the newest `published` change per (group, user) against the ordering ledger, and
// applies what is left to AWS IAM Identity Center through the SCIM apply path (pkg/scimapply):
// group resolution, renames and deletes, batched PATCHes, and batch item failures for exactly the
// changes that must be retried. functions/sync wires it to Lambda; docs/SYNC.md walks one batch
// through it.
package syncer
