package tests

// The Okta side of the generative test (generative_e2e_test.go): the run's budget from the
// environment, the Okta org (oktatest.Generator) with its start mirrored in AWS, the event hook
// deliveries that carry its events (amalgamated, retried, shuffled, some late), and what Okta
// grants at the end.

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/okta/oktatest"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim/scimtest"
)

// genBudget is what GEN_SEED, GEN_OPS and GEN_RUNS ask for.
type genBudget struct {
	seed uint64 // first run's seed; run i uses seed+i
	ops  int    // Okta operations per run
	runs int
}

// Defaults of `make test`: three runs of 60 operations per token setting, a new seed every time
// (printed, and in every failure's replay command). `make gen` runs 50.
const (
	genDefaultOps  = 60
	genDefaultRuns = 3
)

func genBudgetFromEnv(t *testing.T) genBudget {
	t.Helper()
	b := genBudget{seed: uint64(time.Now().UnixNano() % 1_000_000_000), ops: genDefaultOps, runs: genDefaultRuns}
	for name, dst := range map[string]*int{"GEN_OPS": &b.ops, "GEN_RUNS": &b.runs} {
		if v := os.Getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				t.Fatalf("%s=%q: want a positive integer", name, v)
			}
			*dst = n
		}
	}
	if v := os.Getenv("GEN_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("GEN_SEED=%q: want an unsigned integer", v)
		}
		b.seed = n
	}
	return b
}

// genReplay is the command that runs exactly one run again.
func genReplay(mode string, seed uint64, ops int) string {
	return fmt.Sprintf("GEN_SEED=%d GEN_OPS=%d GEN_RUNS=1 go test -race -count=1 -run 'TestGenerative/%s' ./tests/", seed, ops, mode)
}

// genSelected is the selection (the default GROUP_PREFIX, the generator's default Selected).
func genSelected(name string) bool { return strings.HasPrefix(name, "AWS_") }

// genOrg is one generated Okta org.
type genOrg struct {
	*oktatest.Generator
	okta *oktatest.Server
}

// newGenOrg seeds the Okta org and its start in AWS: every Okta user provisioned (externalId =
// Okta id) and every selected Okta group with its AWS group carrying its id and its members, as
// after a completed reconcile. The group outside the selection has no AWS group.
func newGenOrg(seed uint64, okta *oktatest.Server, scim *scimtest.Server, ops int) *genOrg {
	g := &genOrg{okta: okta, Generator: oktatest.NewGenerator(okta, oktatest.GenOptions{
		Seed: seed,
		// In the past: the reconciler defers a planned change whose ordering mark is newer than
		// its read, so events published "after now" would look like changes it must not undo.
		Start: time.Now().Add(-time.Duration(ops)*2*time.Second - time.Hour),
	})}
	for _, u := range g.Users() {
		scim.AddUser(u.Login, u.ID)
	}
	for _, gr := range g.Groups() {
		if !genSelected(gr.Name) {
			continue
		}
		scimID := scim.AddGroup(gr.Name, gr.ID)
		for _, u := range g.members(gr.ID) {
			uid, _ := scim.UserID(u.Login)
			scim.AddMember(scimID, uid)
		}
	}
	return g
}

func (g *genOrg) members(groupID string) []oktatest.GenUser {
	ids, err := g.okta.Members(groupID)
	if err != nil {
		panic(err) // a group the generator deleted: a bug of the test
	}
	return slices.DeleteFunc(g.Users(), func(u oktatest.GenUser) bool { return !slices.Contains(ids, u.ID) })
}

func (g *genOrg) deprovisioned(u oktatest.GenUser) bool {
	st, err := g.okta.UserStatus(u.ID)
	return err == nil && st == oktatest.StatusDeprovisioned
}

// genDeliveries are the hook requests of a run: on time ones, and late ones posted after the
// on-time ones were applied.
type genDeliveries struct {
	onTime, late []events.APIGatewayProxyRequest
	log          []string
}

// deliveries amalgamates the events, in published order, into deliveries of 1 to 6 events;
// about one event in ten goes into a second delivery too, about a quarter of the deliveries are
// retried (the same request twice, as Okta retries a timed-out delivery), all are shuffled, and
// about a fifth are held back and delivered late.
func (g *genOrg) deliveries(t testing.TB) genDeliveries {
	rnd, evs := g.Rand(), g.Events()
	var chunks [][]oktaEvent
	for i := 0; i < len(evs); {
		n := min(1+rnd.IntN(6), len(evs)-i)
		chunks = append(chunks, slices.Clone(evs[i:i+n]))
		i += n
	}
	for _, e := range evs {
		if rnd.IntN(10) != 0 {
			continue
		}
		c := rnd.IntN(len(chunks))
		if !slices.ContainsFunc(chunks[c], func(x oktaEvent) bool { return x.UUID == e.UUID }) {
			chunks[c] = append(chunks[c], e)
		}
	}
	var d genDeliveries
	var all []events.APIGatewayProxyRequest
	for _, c := range chunks {
		id := g.UUID()
		req := oktaDeliveryRequest(t, id, c)
		all = append(all, req)
		retried := rnd.IntN(4) == 0
		if retried {
			all = append(all, req)
		}
		var uuids []string
		for _, e := range c {
			uuids = append(uuids, e.UUID[:8])
		}
		d.log = append(d.log, fmt.Sprintf("delivery %s: %v retried=%v", id[:8], uuids, retried))
	}
	rnd.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	for _, req := range all {
		if rnd.IntN(5) == 0 {
			d.late = append(d.late, req)
		} else {
			d.onTime = append(d.onTime, req)
		}
	}
	return d
}

// granted is what Okta grants now: per live selected Okta group (by id), the sorted logins of its
// members whose status is granted (every status but DEPROVISIONED, membership.Granted).
func (g *genOrg) granted() map[string][]string {
	out := map[string][]string{}
	for _, gr := range g.Groups() {
		if gr.Deleted || !genSelected(gr.Name) {
			continue
		}
		out[gr.ID] = []string{}
		for _, u := range g.members(gr.ID) {
			if !g.deprovisioned(u) {
				out[gr.ID] = append(out[gr.ID], u.Login)
			}
		}
		slices.Sort(out[gr.ID])
	}
	return out
}

// deleted says whether id is a group the run deleted in Okta.
func (g *genOrg) deleted(id string) bool {
	return slices.ContainsFunc(g.Groups(), func(gr oktatest.GenGroup) bool { return gr.Deleted && gr.ID == id })
}
