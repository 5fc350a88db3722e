package queue

import (
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/membership"
)

// Record is one message of an SQS event, decoded.
type Record struct {
	MessageID     string // for events.SQSBatchItemFailure
	ReceiptHandle string // for ChangeMessageVisibility
	GroupID       string // the MessageGroupId attribute
	// ReceiveCount is ApproximateReceiveCount: 1 on the first delivery. 0 when absent.
	ReceiveCount int
	// SentAt is SentTimestamp: when the message was enqueued (for an isolated change, when it
	// first failed on its own). Zero when absent.
	SentAt  time.Time
	Body    string
	Changes []membership.Change
	Err     error // from Decode; ErrInvalidMessage or ErrUnsupportedVersion
}

// DecodeEvent decodes every record of an SQS event, in order. A record that does not decode is
// returned with Err set rather than failing the batch: one poison message must not hold back
// the others, and the worker decides whether to report it as a batch item failure.
func DecodeEvent(ev events.SQSEvent) []Record {
	out := make([]Record, len(ev.Records))
	for i, m := range ev.Records {
		cs, err := Decode(m.Body)
		rc, _ := strconv.Atoi(m.Attributes["ApproximateReceiveCount"])
		var sent time.Time
		if ms, perr := strconv.ParseInt(m.Attributes["SentTimestamp"], 10, 64); perr == nil {
			sent = time.UnixMilli(ms)
		}
		out[i] = Record{MessageID: m.MessageId, ReceiptHandle: m.ReceiptHandle, GroupID: m.Attributes["MessageGroupId"],
			ReceiveCount: rc, SentAt: sent, Body: m.Body, Changes: cs, Err: err}
	}
	return out
}
