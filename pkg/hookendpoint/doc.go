// Package hookendpoint is the Okta event hook endpoint behind API Gateway (REST proxy): it answers
// the one-time verification challenge, checks the auth header against the secret, decodes and
// size-checks the body, expands the delivery's System Log events into membership changes
// (pkg/oktahook), keeps those of the selected groups, and enqueues them (pkg/queue) inside Okta's
// 3 s. Statuses follow the runtime contract: 200, 401, 400, 413, 500. functions/hook wires it to
// Lambda.
package hookendpoint
