package harness

import (
	"crypto/md5"
	"encoding/hex"

	"github.com/aws/aws-lambda-go/events"
)

// SQSEvent is the event Lambda's SQS event source mapping would hand a function for msgs,
// received from the queue whose ARN is queueARN.
func SQSEvent(queueARN string, msgs []Message) events.SQSEvent {
	ev := events.SQSEvent{Records: make([]events.SQSMessage, len(msgs))}
	for i, m := range msgs {
		sum := md5.Sum([]byte(m.Body))
		ev.Records[i] = events.SQSMessage{
			MessageId:         m.ID,
			ReceiptHandle:     m.ReceiptHandle,
			Body:              m.Body,
			Md5OfBody:         hex.EncodeToString(sum[:]),
			Attributes:        m.Attributes,
			MessageAttributes: map[string]events.SQSMessageAttribute{},
			EventSource:       "aws:sqs",
			EventSourceARN:    queueARN,
			AWSRegion:         Region,
		}
	}
	return ev
}
