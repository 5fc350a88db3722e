package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/config"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/membership"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/queue"
)

// TestMoto checks the moto helpers and, through them, that pkg/queue and pkg/config work
// against an SQS FIFO queue and Secrets Manager as the functions will use them.
func TestMoto(t *testing.T) {
	m := MustStartMoto(t)
	ctx := context.Background()

	t.Run("queue and sender", func(t *testing.T) {
		q := MustCreateFIFOQueue(t, m, "changes", 3)
		if !strings.HasSuffix(q.URL, "/"+AccountID+"/changes.fifo") || !strings.HasSuffix(q.DLQURL, "/changes-dlq.fifo") {
			t.Errorf("queue %+v", q)
		}
		if q.ARN != "arn:aws:sqs:"+Region+":"+AccountID+":changes.fifo" || q.DLQARN == "" {
			t.Errorf("arns %q %q", q.ARN, q.DLQARN)
		}

		published := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
		var changes []membership.Change
		for i := range 23 {
			changes = append(changes, membership.Change{
				EventUUID: fmt.Sprintf("evt-%02d", i), Published: published, Kind: membership.KindAdd,
				UserID: fmt.Sprintf("00u%02d", i), GroupID: fmt.Sprintf("00g%d", i%4), GroupName: "AWS_x",
			})
		}
		changes = append(changes,
			membership.Change{EventUUID: "evt-deact", Published: published, Kind: membership.KindUserDeactivate, UserID: "00u99"},
			// An id SQS would refuse as is: the sender hashes it.
			membership.Change{EventUUID: "evt-odd", Published: published, Kind: membership.KindRemove, UserID: "00u 1", GroupID: "00g é"},
		)
		sender := queue.NewSender(m.SQS(), q.URL)
		if err := sender.Send(ctx, changes); err != nil {
			t.Fatal(err)
		}
		// Okta's redelivery: same events again while the first copies are still queued.
		if err := sender.Send(ctx, changes); err != nil {
			t.Fatal(err)
		}
		// Packed: one message per FIFO group (4 groups, the deactivation, the odd group).
		want, err := queue.EncodeBatch(changes)
		if err != nil {
			t.Fatal(err)
		}
		if n, err := m.Depth(ctx, q.URL); err != nil || n != len(want) || len(want) != 6 {
			t.Errorf("depth %d (%v), want %d: FIFO deduplication must drop the redelivery", n, err, len(want))
		}
		msgs := MustReceiveAll(t, m, q.URL)
		if len(msgs) != len(want) {
			t.Fatalf("received %d messages, want %d", len(msgs), len(want))
		}
		byDedup := map[string]Message{}
		for _, x := range msgs {
			byDedup[x.DedupID] = x
		}
		got := map[string]membership.Change{}
		for _, e := range want {
			x, ok := byDedup[e.DedupID]
			if !ok {
				t.Errorf("no message with dedup id %q", e.DedupID)
				continue
			}
			if x.GroupID != e.GroupID || x.Body != e.Body {
				t.Errorf("message %q: group %q body %q, want %q %q", e.DedupID, x.GroupID, x.Body, e.GroupID, e.Body)
			}
			cs, err := queue.Decode(x.Body)
			if err != nil {
				t.Errorf("%q: %v", e.DedupID, err)
			}
			for _, c := range cs {
				got[c.EventUUID] = c
			}
		}
		for _, c := range changes {
			if got[c.EventUUID] != c {
				t.Errorf("%s: decoded %+v", c.EventUUID, got[c.EventUUID])
			}
		}
		if n, _ := m.Depth(ctx, q.URL); n != 0 {
			t.Errorf("depth after ReceiveAll = %d", n)
		}
	})

	t.Run("secret store", func(t *testing.T) {
		arn := MustCreateSecret(t, m, "okta-aws-sso-sync", SecretJSON("hook-token-1", "scim-1", ""))
		if !strings.HasPrefix(arn, "arn:aws:secretsmanager:"+Region+":"+AccountID+":secret:okta-aws-sso-sync") {
			t.Errorf("arn %q", arn)
		}
		// Through config.LoadAWS and AWS_ENDPOINT_URL, as the functions reach moto.
		for k, v := range m.Env() {
			t.Setenv(k, v)
		}
		t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
		t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
		cfg, err := config.LoadAWS(ctx)
		if err != nil {
			t.Fatal(err)
		}
		store := config.NewSecretStore(secretsmanager.NewFromConfig(cfg), "okta-aws-sso-sync", time.Hour)
		s, err := store.Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if s.AuthTokenForOkta != "hook-token-1" || s.AWSSSOSCIMKey != "scim-1" || s.OktaAPIToken != "" {
			t.Errorf("Get = %#v", s)
		}
		if err := m.PutSecretValue(ctx, arn, SecretJSON("hook-token-2", "scim-2", "okta-2")); err != nil {
			t.Fatal(err)
		}
		if s, _ := store.Get(ctx); s.AuthTokenForOkta != "hook-token-1" {
			t.Error("cached value not used within the TTL")
		}
		s, err = store.Refresh(ctx)
		if err != nil || s.AuthTokenForOkta != "hook-token-2" || s.OktaAPIToken != "okta-2" {
			t.Errorf("Refresh = %#v, %v", s, err)
		}
		if _, err := config.NewSecretStore(m.SecretsManager(), "missing", 0).Get(ctx); err == nil || !strings.Contains(err.Error(), "ResourceNotFoundException") {
			t.Errorf("missing secret: err = %v", err)
		}
	})

	t.Run("reset", func(t *testing.T) {
		q := MustCreateFIFOQueue(t, m, "gone", 0)
		if q.DLQURL != "" {
			t.Errorf("DLQ created without maxReceive: %+v", q)
		}
		if err := m.Reset(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Depth(ctx, q.URL); err == nil {
			t.Error("queue survived Reset")
		}
	})
}

func TestSecretJSON(t *testing.T) {
	var got map[string]string
	if err := json.Unmarshal([]byte(SecretJSON("a", "", "c\"")), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["auth_token_for_okta"] != "a" || got["okta_api_token"] != "c\"" {
		t.Errorf("SecretJSON = %v", got)
	}
}

func TestStartMotoWithoutMotoFails(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	if _, err := StartMoto(); !errors.Is(err, ErrMotoNotFound) {
		t.Errorf("err = %v, want ErrMotoNotFound", err)
	}
}
