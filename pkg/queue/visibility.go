package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// VisibilityAPI is the SQS call [Visibility] needs.
type VisibilityAPI interface {
	ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error)
}

// MaxVisibility is the longest visibility timeout SQS accepts (12 hours).
const MaxVisibility = 12 * time.Hour

// Delay asks SQS to keep one received message invisible for After from now.
type Delay struct {
	ReceiptHandle string
	After         time.Duration
}

// Visibility shortens (or lengthens) how long received messages of one queue stay in flight.
// The sync worker uses it on the messages it reports as batch item failures: Lambda's SQS
// event source leaves those in flight until their visibility timeout ends ("Handling errors for
// an SQS event source in Lambda": the message reappears after the queue's visibility timeout),
// and ChangeMessageVisibility on an in-flight message sets that timeout from now. A FIFO message
// group delivers nothing else while one of its messages is in flight, so the delay is as long as
// a failure holds its group.
type Visibility struct {
	api      VisibilityAPI
	queueURL string
}

// NewVisibility returns a Visibility for queueURL.
func NewVisibility(api VisibilityAPI, queueURL string) *Visibility {
	return &Visibility{api: api, queueURL: queueURL}
}

// Delay applies ds, ten per request (SQS's batch limit). It returns an error naming how many
// could not be changed; those keep the queue's own visibility timeout.
func (v *Visibility) Delay(ctx context.Context, ds []Delay) error {
	var errs []error
	for start := 0; start < len(ds); start += maxBatchEntries {
		batch := ds[start:min(start+maxBatchEntries, len(ds))]
		in := &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(v.queueURL)}
		for i, d := range batch {
			secs := int32(min(max(d.After, 0), MaxVisibility).Round(time.Second) / time.Second)
			in.Entries = append(in.Entries, types.ChangeMessageVisibilityBatchRequestEntry{
				Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(d.ReceiptHandle), VisibilityTimeout: secs,
			})
		}
		out, err := v.api.ChangeMessageVisibilityBatch(ctx, in)
		if err != nil {
			errs = append(errs, fmt.Errorf("ChangeMessageVisibilityBatch (%d messages): %w", len(batch), err))
			continue
		}
		for _, f := range out.Failed {
			errs = append(errs, fmt.Errorf("ChangeMessageVisibility: %s: %s", aws.ToString(f.Code), aws.ToString(f.Message)))
		}
	}
	return errors.Join(errs...)
}
