// Package scim is the client for AWS IAM Identity Center's SCIM 2.0 endpoint
// (https://scim.<region>.amazonaws.com/<tenant>/scim/v2), built on hashicorp/go-retryablehttp.
// Everything the sync writes to or reads from AWS goes through it; pkg/scim/scimtest is the
// emulator its tests (and the rest of the project's) run against.
//
// It encodes what AWS's implementation requires rather than what SCIM allows:
//
//   - Group reads carry no members. Members are listed with
//     GET /Users?filter=groups.value eq "<group id>" (ListGroupMembers) and checked with
//     GET /Groups?filter=id eq "<g>" and members eq "<u>" (IsMember).
//   - Filters are `attr eq "value"` with the value quoted by JSON string rules (quotes,
//     backslashes, control characters escaped; non-ASCII sent as UTF-8), then URL-encoded with
//     url.Values (space as '+', which AWS accepts).
//   - Listings use cursor paging: count=<page size> (≤ 100) and a bare `cursor` on the first
//     request, then cursor=<nextCursor> until a page has no nextCursor. A short page is not the
//     end: AWS may return fewer items than count with more to come.
//   - PATCH /Groups/{id} carries at most 100 member values; AddMembers/RemoveMembers split
//     larger sets, and CreateGroup sends the first 100 members with the POST and the rest as
//     PATCHes. A remove is never sent without values (AWS once emptied the whole group on it;
//     it now answers 400), so an empty input sends nothing. Renames use
//     {"op":"replace","path":"displayName","value":…}.
//
// Retries live in the HTTP layer, configured once per client: 429 and 5xx (except 501: [ClassOf]
// is the one classification of statuses, also read by the sync worker and the applier) and
// transport errors are re-sent up to WithMaxRetries times, waiting an exponential backoff with
// jitter (WithBackoff) or the server's Retry-After (seconds or an HTTP date) when that is
// longer. The client gives up early, returning the *APIError with RetryAfter set, when the
// wait would end past the context deadline (a Lambda must not sleep into its timeout) or when
// Retry-After exceeds the backoff cap (the caller defers the work instead, e.g. by failing the
// SQS message). 4xx other than 429 are never retried. A 401 calls the TokenFunc once with
// refresh=true and re-sends once with the new token; a second 401 is ErrUnauthorized.
//
// The bearer token is never logged or put in an error: retryablehttp's own logger is off, log
// lines carry only the operation, status, attempt, wait and AWS request id, and error details
// are scrubbed of the token in case a server echoes it.
//
// Errors: *APIError (Status, Detail, RequestID from x-amzn-RequestId or the body's
// exceptionRequestId, RetryAfter) for every non-2xx answer, matching ErrNotFound (404),
// ErrConflict (409) and ErrUnauthorized (401) with errors.Is; Find* also return ErrNotFound
// when the filter matched nothing. Stats counts HTTP requests per operation, throttles,
// retries, 5xx and 401s for metrics.
package scim
