// # Collapsing (newest wins)
//
// Okta delivers events at least once and in no particular order, so a batch may hold several
// changes for one (group, user) pair, and the same event twice. [Collapse] keeps one winning
// membership change per [Key]. The winner is the greatest change under this order:
//
//  1. newer Published wins;
//  2. on equal Published, remove beats add (least privilege: when Okta recorded both in the
//     same millisecond we cannot know which came last, and a missing membership is repaired
//     by the next event or the reconciler, while a wrong one grants access);
//  3. then the lexicographically greater EventUUID wins (arbitrary, but deterministic);
//  4. then the remaining fields compare as strings, so the result never depends on input order
//     even for malformed input.
//
// Redeliveries of one event are identical changes and collapse to one (idempotent). Published is
// normalized to UTC in everything Collapse returns, so equal results compare equal with ==.
//
// # Ordering across batches
//
// Collapse decides within one batch. Across batches the worker remembers, per Key, a [Mark] of
// the last change it applied, and [Decide] compares a new winner with it under the same order:
// a change that loses to the mark is stale (acknowledge, change nothing); anything else is
// applied. Applying a batch's winners through Decide in any batch split gives the same final
// state as collapsing all changes at once.
//
// # Plans and safety
//
// [PlanChanges] (sync path) and [PlanDiff] (reconcile path) produce a [Plan] of SCIM user ids to
// add and remove; [Chunk] splits them into PATCH-sized batches. [Check] and [CheckRun] decide
// whether a plan's removals may run: a run planning more removals than the cap removes none
// (adds still run), and an empty desired set for a group that has members is treated as a
// suspicious answer, not as "remove everyone".
package membership
