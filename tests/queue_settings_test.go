package tests

import (
	"context"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/tests/harness"
)

// prodQueue are the sync queue's settings as template.yaml deploys them: the end-to-end tests run
// with these, so a failure the worker does not back off itself holds its FIFO group for the full
// visibility timeout here too, as it would in production.
type prodQueue struct {
	visibility int // VisibilityTimeout, seconds
	maxReceive int // RedrivePolicy.maxReceiveCount (the MaxReceiveCount parameter's default)
}

func templateQueue(t testing.TB) prodQueue {
	t.Helper()
	tpl := mustTemplate(t)
	st := newStack(t, tpl, deployParams())
	q := tpl.props(t, syncQueueID(t, tpl))
	mrc, err := strconv.Atoi(st.str(t, get(q, "RedrivePolicy", "maxReceiveCount")))
	if err != nil {
		t.Fatalf("maxReceiveCount: %v", err)
	}
	p := prodQueue{visibility: asInt(q["VisibilityTimeout"]), maxReceive: mrc}
	if p.visibility <= 0 || p.maxReceive <= 0 {
		t.Fatalf("template queue settings %+v", p)
	}
	return p
}

// mustCreateProdQueue creates a FIFO queue and its DLQ with the template's visibility timeout and
// redrive count.
func mustCreateProdQueue(t testing.TB, m *harness.Moto, name string) (harness.Queue, prodQueue) {
	t.Helper()
	p := templateQueue(t)
	q := harness.MustCreateFIFOQueue(t, m, name, p.maxReceive)
	if _, err := m.SQS().SetQueueAttributes(context.Background(), &sqs.SetQueueAttributesInput{
		QueueUrl: aws.String(q.URL), Attributes: map[string]string{"VisibilityTimeout": strconv.Itoa(p.visibility)},
	}); err != nil {
		t.Fatal(err)
	}
	return q, p
}
