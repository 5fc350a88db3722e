package queue

import (
	"github.com/aws/aws-lambda-go/events"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/membership"
)

// Record is one message of an SQS event, decoded.
type Record struct {
	MessageID string // for events.SQSBatchItemFailure
	GroupID   string // the MessageGroupId attribute
	Changes   []membership.Change
	Err       error // from Decode; ErrInvalidMessage or ErrUnsupportedVersion
}

// DecodeEvent decodes every record of an SQS event, in order. A record that does not decode is
// returned with Err set rather than failing the batch: one poison message must not hold back
// the others, and the worker decides whether to report it as a batch item failure.
func DecodeEvent(ev events.SQSEvent) []Record {
	out := make([]Record, len(ev.Records))
	for i, m := range ev.Records {
		cs, err := Decode(m.Body)
		out[i] = Record{MessageID: m.MessageId, GroupID: m.Attributes["MessageGroupId"], Changes: cs, Err: err}
	}
	return out
}
