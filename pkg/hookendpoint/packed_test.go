package hookendpoint

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/config"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/queue"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/telemetry"
)

// recordingSQS accepts every SendMessageBatch entry and keeps it.
type recordingSQS struct {
	mu      sync.Mutex
	entries []types.SendMessageBatchRequestEntry
}

func (r *recordingSQS) SendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := &sqs.SendMessageBatchOutput{}
	for _, e := range in.Entries {
		r.entries = append(r.entries, e)
		out.Successful = append(out.Successful, types.SendMessageBatchResultEntry{Id: e.Id, MessageId: e.Id})
	}
	return out, nil
}

// With the real queue.Sender (as main wires it), a delivery's changes are enqueued as one packed
// message per Okta group: the amalgamated membership sample gives 2 messages of 2 changes each.
func TestDeliveryIsEnqueuedPackedPerGroup(t *testing.T) {
	rec := &recordingSQS{}
	cfg := config.Hook{
		Common:     config.Common{Selection: config.Selection{Prefix: "AWS_"}, MetricsNamespace: "OktaAwsSsoSync"},
		AuthHeader: "Authorization", QueueURL: "https://sqs.us-east-1.amazonaws.com/1/q.fifo", MaxBodyBytes: config.DefaultMaxBodyBytes,
	}
	f := &fixture{}
	f.h = New(cfg, fakeSecrets{s: config.Secrets{AuthTokenForOkta: sampleToken}}, queue.NewSender(rec, cfg.QueueURL),
		telemetry.NewLogger(&f.logs, slog.LevelDebug), &f.metrics)

	if resp := f.invoke(t, readSample(t, "hook-delivery-membership.json")); resp.StatusCode != 200 {
		t.Fatalf("status %d %q", resp.StatusCode, resp.Body)
	}
	if len(rec.entries) != 2 {
		t.Fatalf("%d messages, want one per group (AWS_Engineers, AWS_ReadOnly)", len(rec.entries))
	}
	for _, e := range rec.entries {
		cs, err := queue.Decode(aws.ToString(e.MessageBody))
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, c := range cs {
			if c.GroupID != aws.ToString(e.MessageGroupId) {
				t.Errorf("change of group %s in a message of group %s", c.GroupID, aws.ToString(e.MessageGroupId))
			}
			ids = append(ids, queue.DedupID(c))
		}
		if len(cs) != 2 || aws.ToString(e.MessageDeduplicationId) != queue.PackDedupID(ids) {
			t.Errorf("message of %d changes with dedup id %q", len(cs), aws.ToString(e.MessageDeduplicationId))
		}
	}
	// ChangesEnqueued still counts changes, not messages.
	if got := f.metrics.String(); !strings.Contains(got, `"ChangesEnqueued":4`) {
		t.Errorf("metrics %s", got)
	}
}
