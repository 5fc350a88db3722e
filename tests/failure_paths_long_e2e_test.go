package tests

// The long scenarios: real time that no product setting shortens. `make test` leaves out every
// test whose name starts with TestLong (-skip '^TestLong'); `make test-long` runs exactly them, and
// CI runs both (README, Development: which tests run where).

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim/scimtest"
)

// TestLongSCIMOutage: a 10-minute SCIM outage (every request 503) while deliveries keep arriving,
// then recovery. With production's backoff (5 s doubling to 60 s, pkg/syncer) and the template's
// queue (VisibilityTimeout 720 s, MaxReceiveCount 100) nothing is dead-lettered and everything is
// applied once SCIM answers again. The outage is in real time on purpose: it is the backoff
// schedule against the receive budget over the length of a real outage that is under test.
func TestLongSCIMOutage(t *testing.T) {
	t.Parallel()
	aws := startFaultAWS(t)
	base := time.Date(2026, 11, 25, 11, 0, 0, 0, time.UTC)
	w := newFaultWorld(t, aws, "fp-outage", faultOptions{scim: scimtest.Options{Seed: 43}})
	w.scim.AddGroup("AWS_OutA", "")
	w.scim.AddGroup("AWS_OutB", "")
	want := map[string][]string{}
	var evs []oktaEvent
	for i := range 40 {
		for g, name := range []string{"AWS_OutA", "AWS_OutB"} {
			login, uid := faultUser(fmt.Sprintf("o%d", g), i)
			w.scim.AddUser(login, uid)
			want[name] = append(want[name], login)
			evs = append(evs, memberEvent("add", fmt.Sprintf("out-%d-%d", g, i), base.Add(time.Duration(i)*time.Second), uid, login, fmt.Sprintf("00gOUT%d", g), name))
		}
	}
	const outage = 10 * time.Minute
	start := time.Now()
	var down sync.Mutex
	recovered := false
	w.setFault(func(string, *http.Request) *scimtest.Fault {
		down.Lock()
		defer down.Unlock()
		if !recovered && time.Since(start) < outage {
			return &scimtest.Fault{Status: http.StatusServiceUnavailable}
		}
		recovered = true
		return nil
	})
	st := w.pumpFaults(pumpOptions{limit: outage + 5*time.Minute, feed: func() {
		// Deliveries keep arriving during the outage.
		for i := 0; i < len(evs); i += 20 {
			w.deliver(evs[i : i+20]...)
			time.Sleep(outage / 5)
		}
	}})
	w.expect(want)
	w.checkFaultWire()
	if dead := w.dlq(); len(dead) != 0 {
		t.Fatalf("%d changes dead-lettered by a 10-minute outage", len(dead))
	}
	t.Logf("%s; drained %s after the outage ended; %d SCIM requests during it (%d 503s)",
		st, (st.elapsed - outage).Round(time.Second), w.scim.TotalRequests(), w.scim.ServerErrors())
}
