package syncer

// InvocationThrottleRetries is how many times the sync function's SCIM client re-sends a throttled
// (429) request (scim.WithThrottleRetries): enough that the invocation's deadline, not a count,
// ends them. AWS answers 429 while it works, so riding a throttle out in-process (with the
// adaptive rate slowing the container down) is cheaper than failing the pack: a failed pack waits
// out its 5, 10, 20 s message backoff and then repeats the group read. The retried request is the
// same PATCH of up to 100 values; a pack is never split because of throttling. 5xx keep the
// client's default of 5 retries: an outage is ridden out by the message backoff instead.
const InvocationThrottleRetries = 50
