package oktahook_test

import (
	"errors"
	"testing"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/oktahook"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/queue"
)

// Found by FuzzExpand: a published time whose UTC instant falls outside years 0000-9999 parsed,
// expanded, and then failed queue.Encode, so the hook answered 500 for the whole delivery and
// Okta's one retry failed the same way. Parse now rejects it as a wrong-shape body (400).
func TestParsePublishedMustBeEncodableInUTC(t *testing.T) {
	tests := []struct {
		published string
		ok        bool
	}{
		{"0000-01-01T00:00:00+01:00", false}, // UTC year -1
		{"9999-12-31T23:59:59.999-01:00", false},
		{"0000-01-01T00:00:00-01:00", true}, // UTC 0000-01-01T01:00
		{"9999-12-31T23:59:59.999+01:00", true},
		{"2026-11-25T10:15:30.123+14:00", true},
	}
	for _, tt := range tests {
		t.Run(tt.published, func(t *testing.T) {
			body := `{"eventType":"com.okta.event_hook","data":{"events":[{"uuid":"a","published":"` + tt.published +
				`","eventType":"user.lifecycle.deactivate","outcome":{"result":"SUCCESS"},"target":[{"id":"00u1","type":"User"}]}]}}`
			env, err := oktahook.Parse([]byte(body))
			if !tt.ok {
				if !errors.Is(err, oktahook.ErrWrongShape) {
					t.Fatalf("Parse error = %v, want ErrWrongShape", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			res := oktahook.Expand(env, nil)
			if len(res.Changes) != 1 {
				t.Fatalf("changes = %+v", res.Changes)
			}
			if _, err := queue.Encode(res.Changes[0]); err != nil {
				t.Fatalf("Encode: %v", err)
			}
		})
	}
}
