package tests

// End-to-end checks of two places where AWS's SCIM endpoint is easy to model wrongly, through the
// real hook and sync bootstraps on a queue with the template's settings (sync_e2e_test.go):
//
//   - userName matching: the emulator's `userName eq` filter ignores case, as AWS's may, and the
//     worker links an Okta login only to a userName that is the same string (docs/SYNC.md);
//   - the 409 AWS answers when a group was created meanwhile ("Refused to create a new, duplicate
//     resource."): the worker takes the existing group instead of failing or making another.

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/queue"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim/scimtest"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/tests/harness"
)

func TestSCIMFidelityEndToEnd(t *testing.T) {
	t.Parallel()
	m := harness.MustStartMoto(t)
	base := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)

	t.Run("a userName differing only in case is not linked; the add is dead-lettered with the reason", func(t *testing.T) {
		t.Parallel()
		// The operator's wait, short so the test sees the DLQ; the backoff is production's.
		w := newSyncWorld(t, m, "fid-case", scimtest.Options{Seed: 61}, map[string]string{"UNPROVISIONED_USER_WAIT": "20s"})
		w.scim.AddGroup("AWS_Fidelity", "00gFID")
		// Provisioned by another tool, no externalId: only userName can link them.
		w.scim.AddUser("ann@example.com", "") // Okta's login is Ann@example.com
		w.scim.AddUser("Carol@Example.com", "")
		w.scim.AddUser("dave@example.com", "00uDAVE") // provisioned by Okta: externalId links
		w.deliver(
			memberEvent("add", "fid-ann", base, "00uANN", "Ann@example.com", "00gFID", "AWS_Fidelity"),
			memberEvent("add", "fid-carol", base.Add(time.Second), "00uCAROL", "Carol@Example.com", "00gFID", "AWS_Fidelity"),
			memberEvent("add", "fid-dave", base.Add(2*time.Second), "00uDAVE", "Dave@Example.com", "00gFID", "AWS_Fidelity"),
		)
		w.pump()
		// Carol matches exactly, capitals and all; Dave by externalId whatever his login's case;
		// ann@example.com, whom AWS's filter answered for Ann@example.com, is not made a member.
		w.expect(map[string][]string{"AWS_Fidelity": {"Carol@Example.com", "dave@example.com"}})
		msgs := harness.MustReceiveAll(t, w.moto, w.queue.DLQURL)
		if len(msgs) != 1 {
			t.Fatalf("DLQ holds %d messages, want Ann's add", len(msgs))
		}
		if cs, err := queue.Decode(msgs[0].Body); err != nil || len(cs) != 1 || cs[0].EventUUID != "fid-ann" {
			t.Fatalf("DLQ holds %q (%v), want Ann's add alone", msgs[0].Body, err)
		}
		if r := msgs[0].MessageAttributes[queue.ReasonAttribute]; !strings.Contains(r, "Ann@example.com") || !strings.Contains(r, "not provisioned") {
			t.Fatalf("DLQ reason %q does not name the login and say it is not provisioned", r)
		}
		// The worker's lookups were answered with ann@example.com: it refused the near match.
		req, _ := http.NewRequest(http.MethodGet, w.scim.URL()+"/Users?"+url.Values{"filter": {`userName eq "Ann@example.com"`}}.Encode(), nil)
		req.Header.Set("Authorization", "Bearer "+e2eSCIMToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var list struct{ Resources []struct{ UserName string } }
		if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || len(list.Resources) != 1 || list.Resources[0].UserName != "ann@example.com" {
			t.Fatalf("userName eq \"Ann@example.com\" answers %+v (%v), want ann@example.com", list, err)
		}
		w.checkWire()
	})

	t.Run("a group created meanwhile: AWS's 409 makes the worker use it, no second group", func(t *testing.T) {
		t.Parallel()
		w := newSyncWorld(t, m, "fid-409", scimtest.Options{Seed: 62})
		w.scim.AddUser("erin@example.com", "00uERIN")
		w.scim.AddUser("frank@example.com", "00uFRANK")
		// Between the worker's lookups (none found) and its POST /Groups, another writer (the
		// reconciler, another container) creates the group with this Okta group's id; the POST
		// then meets the duplicate and AWS's 409.
		var (
			once    sync.Once
			otherID string
		)
		w.scim.SetFaultFunc(func(route string, _ *http.Request) *scimtest.Fault {
			if route == "POST /Groups" {
				once.Do(func() { otherID = w.scim.AddGroup("AWS_Meanwhile", "00gMEAN") })
			}
			return nil
		})
		w.deliver(
			memberEvent("add", "mean-erin", base, "00uERIN", "erin@example.com", "00gMEAN", "AWS_Meanwhile"),
			memberEvent("add", "mean-frank", base.Add(time.Second), "00uFRANK", "frank@example.com", "00gMEAN", "AWS_Meanwhile"),
		)
		w.pump()
		w.scim.SetFaultFunc(nil)
		if otherID == "" {
			t.Fatal("the worker sent no POST /Groups: the race was not staged")
		}
		w.expect(map[string][]string{"AWS_Meanwhile": {"erin@example.com", "frank@example.com"}})
		if id, _ := w.scim.GroupID("AWS_Meanwhile"); id != otherID {
			t.Fatalf("members went to group %s, want the one created meanwhile (%s)", id, otherID)
		}
		if n := w.scim.Count("POST /Groups"); n != 1 {
			t.Fatalf("%d POST /Groups, want the one that met the 409", n)
		}
		if n := len(w.dlq()); n != 0 {
			t.Fatalf("%d messages in the DLQ", n)
		}
		// The answer the worker's POST met: AWS's 409 body, as AWS has been seen to send it.
		req, _ := http.NewRequest(http.MethodPost, w.scim.URL()+"/Groups", strings.NewReader(`{"displayName":"AWS_Meanwhile"}`))
		req.Header.Set("Authorization", "Bearer "+e2eSCIMToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct{ Status, Detail string }
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusConflict ||
			body.Status != "409" || body.Detail != "Refused to create a new, duplicate resource." {
			t.Fatalf("a duplicate POST /Groups answers %d %+v (%v)", resp.StatusCode, body, err)
		}
		w.checkWire()
	})
}
