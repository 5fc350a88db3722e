// Package scimtest is an in-memory SCIM 2.0 server that behaves like AWS IAM Identity Center's
// SCIM endpoint, for tests and the local demo. It is an http.Handler (wrap it in
// httptest.NewServer) or listens itself with Start.
//
// # What it models (from AWS's SCIM developer guide and answers seen from AWS)
//
//   - Routes below a configurable base path (AWS: /<tenant>/scim/v2): GET/POST /Users,
//     GET /Users/{id}, GET/POST /Groups, GET/PATCH/DELETE /Groups/{id}. A path outside the base
//     answers 401, as AWS does for a wrong tenant id; another method on a known path 405; an
//     unknown path below the base 404.
//   - Bearer token auth; the token can be rotated (SetToken) or forced expired (ExpireToken).
//   - Filters: only `attr eq "value"` terms joined by `and`, values as JSON strings (escapes
//     decoded), on the documented combinations: Users by userName, externalId, groups.value or
//     id; Groups by displayName, externalId, id, members.value (the groups of one user; an
//     unknown user is a 404, as AWS documents), or id and members (either order). Anything else
//     (other operators, or, not, parentheses, unquoted or empty values, other attributes or
//     combinations) is a 400 ValidationException. `userName eq` ignores case (below); every other
//     value is compared exactly.
//   - Group reads (GET /Groups/{id}, GET /Groups, the POST answer) never carry members: "members"
//     is always []. Members are listed with GET /Users?filter=groups.value eq "<id>".
//   - Paging: count in 1..100 (default 100), anything else 400 ("Valid Range"). A `cursor`
//     parameter (bare on the first request) switches to the cursor shape (itemsPerPage,
//     nextCursor, no totalResults); without it the older shape (totalResults, startIndex,
//     itemsPerPage) with the first count items only. Cursors match AWS's pattern
//     [-a-zA-Z0-9+=/:_]*; Options.UnevenPages returns short pages with a nextCursor, which AWS
//     warns may happen. startIndex, attributes and excludedAttributes are rejected (AWS lists
//     them as unsupported).
//   - POST /Users requires userName, displayName, name.givenName and name.familyName, rejects
//     groups and more than one (or a non-primary) email, with the texts AWS's troubleshooting
//     guide quotes for the name and email cases; 409 on a duplicate userName (exact).
//   - POST /Groups requires displayName, takes at most 100 members (400 beyond), 409 on a
//     duplicate displayName.
//   - PATCH /Groups/{id}: the PatchOp schema is required; only members, displayName and
//     externalId; add/remove on members with at most 100 values in the whole request (400
//     beyond); replace on members is 400 (AWS documents it unsupported; in 2024 a replace with
//     an empty list answered 204 and changed nothing, github.com/lichti/aws-iam-scim-problem);
//     the path-less form only for add/replace of a single attribute (id may accompany it, as in
//     AWS's rename example). A remove on members without values empties the group (AWS's earlier
//     behaviour, the default, so tests catch clients that send it) or is a 400
//     (EmptyRemoveRejected, AWS's documented behaviour today); either way EmptyRemoves counts
//     it. A PATCH is validated entirely before anything changes. Adding a member twice and
//     removing a non-member succeed. Success is 204 without a body.
//   - Errors look like AWS's: {"schema":[…Error],"schemas":[…Error],"detail":…,"status":"400",
//     "exceptionRequestId":…,"timeStamp":"2006-01-02 15:04:05.000"}, status as a string, the
//     request id also in the x-amzn-RequestId header (sent on every answer). Details are the
//     texts AWS has been seen to send where known (handler.go cites each): every 409 is "Refused
//     to create a new, duplicate resource.", and the refusals of a PATCH (more than 100 values,
//     replace or remove-all on members, a bad filter or body) the generic "Request is unparsable,
//     syntactically incorrect, or violates schema.".
//   - Ids look like AWS's: a 10-hex identity store prefix, a dash and a UUID; generated from
//     the seed, so a test sees the same ids on every run.
//   - Throttling by token buckets (Options.Limits, SetLimits; limits.go), after AWS's quotas page
//     (docs.aws.amazon.com/singlesignon/latest/userguide/limits.html, "IAM Identity Center
//     throttle limits"): 25 TPS per write API and 40 TPS per read API per identity store
//     (AWSLimits; one bucket per route, or one per class), plus a separate membership bucket
//     charged per member value of POST /Groups and PATCH /Groups/{id}, and optionally one shared
//     bucket (the collective 20 TPS of the page's earlier versions). An empty bucket answers 429
//     ThrottlingException ("Too many requests were made that exceed the limits", the developer
//     guide's condition) with Retry-After in whole seconds and changes nothing. The buckets run
//     on Options.Now, so tests that control the clock get exact counts.
//   - Fault injection, deterministic with Options.Seed: probabilities of 429 (with a
//     Retry-After value) and 500, fixed latency, scripted faults (FailNext, Inject with an
//     optional route), a per-request hook (SetFaultFunc), forced 401.
//   - Counters per route key ("PATCH /Groups/{id}"), throttles, 5xx, 401s, the most member values
//     in one request (MaxPatchValues, rejected requests included) and empty removes; Snapshot
//     gives group displayName → sorted member userNames.
//
// # What it knowingly does not model (AWS unknowns or out of scope)
//
//   - AWS's membership-operation throttle has no documented rate, and whether a throttled request
//     counts against a bucket is unknown (here it does not). AWS has not been seen sending a SCIM
//     429: its Retry-After is assumed to be delay-seconds (see Limits).
//   - The status for adding a user id that does not exist is undocumented: 400 by default,
//     Options.UnknownMemberStatus changes it.
//   - Whether AWS compares userName case-insensitively: undocumented (RFC 7643 defines userName
//     as caseExact false; nobody has reported what AWS does). The emulator takes the reading that
//     catches a client trusting the filter: `userName eq` compares lower-cased and answers every
//     match in creation order, while uniqueness (POST /Users, AddUser) is exact, so
//     "ann@example.com" and "Ann@example.com" can both exist and a lookup of either may answer
//     with the other. displayName is exact in filters and uniqueness. Filter attribute names and
//     operators are accepted in any case (RFC 7644), which AWS may or may not do.
//   - The listing order AWS uses and whether its cursors survive concurrent writes: here items
//     come in creation order and cursors are keyset positions, stable under writes.
//   - Whether GET /Users?filter=groups.value eq "<unknown group>" is an empty list or an error:
//     empty list here.
//   - RFC 7644 filter paths in PATCH (members[value eq "…"]): rejected as 400.
//   - The `manager` filter, PUT/PATCH/DELETE on /Users, /ServiceProviderConfig, /Schemas,
//     /ResourceTypes, and attributes beyond those the sync uses (addresses, phone numbers,
//     enterprise extension).
//   - The 403 AccessDeniedException and the identity store quotas (100,000 users, raisable;
//     100,000 groups, not raisable: limits.html, "IAM Identity Center identity store quotas").
//   - Error texts nobody has reported (404 for an unknown id, 401, 429, 500, 405, an unknown
//     path): AWS's documented condition or made up, as handler.go says. A wrong tenant id answers
//     401 as AWS documents; in 2022 AWS was seen answering 404 "TENANT does not exist."
//     (github.com/slashdevops/idp-scim-sync/issues/42).
package scimtest
