package harness

import (
	"context"
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

// Acknowledge does what Lambda's SQS event source mapping does after an invocation that
// returned failures (ReportBatchItemFailures): it deletes every message of msgs not reported
// failed and leaves the failed ones in flight until their visibility ends.
func (m *Moto) Acknowledge(ctx context.Context, queueURL string, msgs []Message, failures []events.SQSBatchItemFailure) error {
	failed := make(map[string]bool, len(failures))
	for _, f := range failures {
		failed[f.ItemIdentifier] = true
	}
	for _, msg := range msgs {
		if failed[msg.ID] {
			continue
		}
		if err := m.DeleteMessage(ctx, queueURL, msg.ReceiptHandle); err != nil {
			return err
		}
	}
	return nil
}
