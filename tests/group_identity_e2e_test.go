package tests

// End-to-end tests of the group identity rule (docs/SYNC.md, "Group identity"): the Okta group id,
// carried as the AWS group's externalId, is what maps an Okta group to its AWS group, never the
// name. Each scenario runs through the real hook, sync and reconcile bootstraps against moto, the
// SCIM emulator and the Okta API emulator, in a warm container (one sync process for every
// step) and in cold ones (a new sync process for every step, as when Lambda scales out or a
// container is recycled between two deliveries).

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/ledger"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/okta/oktatest"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim/scimtest"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/tests/harness"
)

const idOktaToken = "00okta-identity-e2e-token"

// idWorld is one pipeline with an Okta API: the hook, sync processes started on demand, and the
// reconciler.
type idWorld struct {
	*syncWorld
	name    string
	okta    *oktatest.Server
	syncEnv map[string]string
	recEnv  map[string]string
	cold    bool
	procs   int
	users   map[string]string // login → Okta user id
}

func newIDWorld(t *testing.T, m *harness.Moto, name string, cold bool, env map[string]string) *idWorld {
	t.Helper()
	ctx := context.Background()
	o := oktatest.New(oktatest.Options{Token: idOktaToken})
	oktaURL, err := o.Start("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = o.Close() })
	srv := scimtest.New(scimtest.Options{Token: e2eSCIMToken})
	scimURL, err := srv.Start("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	q, _ := mustCreateProdQueue(t, m, "identity-"+name)
	table := "identity-state-" + name
	if err := ledger.CreateTable(ctx, dynamodb.NewFromConfig(m.AWSConfig()), table); err != nil {
		t.Fatal(err)
	}
	secret := harness.MustCreateSecret(t, m, "okta-aws-sso-sync-identity-"+name, harness.SecretJSON(e2eHookToken, e2eSCIMToken, idOktaToken))
	hook := harness.MustStartRuntime(t, harness.MustBuildFunction(t, "hook"), harness.MergeEnv(m.Env(), map[string]string{
		"SECRET_ID": secret, "QUEUE_URL": q.URL, "LOG_LEVEL": "info",
	}), harness.WithFunctionName("hook-identity-"+name))
	common := harness.MergeEnv(m.Env(), map[string]string{
		"SECRET_ID": secret, "SCIM_URL": scimURL, "OKTA_ORG_URL": oktaURL, "STATE_TABLE": table, "LOG_LEVEL": "info",
	}, env)
	w := &idWorld{
		syncWorld: &syncWorld{t: t, ctx: ctx, moto: m, scim: srv, queue: q, hook: hook},
		name:      name, okta: o, cold: cold, users: map[string]string{},
		syncEnv: harness.MergeEnv(common, map[string]string{"QUEUE_URL": q.URL, "DLQ_URL": q.DLQURL}),
		recEnv:  harness.MergeEnv(common, map[string]string{"RECONCILE_CONCURRENCY": "1"}),
	}
	w.sync = w.container()
	return w
}

// container starts a new sync process (an empty cache).
func (w *idWorld) container() *harness.Runtime {
	w.t.Helper()
	w.procs++
	return harness.MustStartRuntime(w.t, harness.MustBuildFunction(w.t, "sync"), w.syncEnv,
		harness.WithFunctionName(fmt.Sprintf("sync-identity-%s-%d", w.name, w.procs)), harness.WithTimeout(60*time.Second))
}

// step delivers events and lets sync apply them: in a cold world by a new process each time.
func (w *idWorld) step(evs ...oktaEvent) {
	w.t.Helper()
	if w.cold && w.procs > 0 && w.seq > 0 {
		w.sync = w.container()
	}
	w.deliver(evs...)
	w.pump()
}

// user makes an Okta user provisioned in AWS (externalId = Okta id).
func (w *idWorld) user(login string) string {
	w.t.Helper()
	id := w.okta.AddUser(login)
	w.users[login] = id
	w.scim.AddUser(login, id)
	return id
}

// oktaGroup makes an Okta group with members.
func (w *idWorld) oktaGroup(name string, logins ...string) string {
	w.t.Helper()
	id := w.okta.AddGroup(name)
	for _, l := range logins {
		if err := w.okta.AddMember(id, w.users[l]); err != nil {
			w.t.Fatal(err)
		}
	}
	return id
}

// awsGroup makes an AWS group with members.
func (w *idWorld) awsGroup(name, externalID string, logins ...string) string {
	w.t.Helper()
	gid := w.scim.AddGroup(name, externalID)
	for _, l := range logins {
		uid, _ := w.scim.UserID(l)
		w.scim.AddMember(gid, uid)
	}
	return gid
}

func (w *idWorld) member(typ, uuid string, at time.Time, login, groupID, group string) oktaEvent {
	return memberEvent(typ, uuid, at, w.users[login], login, groupID, group)
}

func groupEvent(typ, uuid string, at time.Time, groupID, group string) oktaEvent {
	return oktaEvent{UUID: uuid, Type: typ, Published: at, GroupID: groupID, GroupName: group}
}

// byExternal maps externalId → "displayName: members" of every AWS group.
func (w *idWorld) byExternal() map[string]string {
	snap := w.scim.Snapshot()
	out := map[string]string{}
	for _, g := range w.scim.Groups() {
		out[g.ExternalID] = g.DisplayName + ": " + strings.Join(snap[g.DisplayName], ",")
	}
	return out
}

// idSummary is the part of the reconcile summary these tests read.
type idSummary struct {
	GroupsRenamed int `json:"groupsRenamed"`
	GroupsCreated int `json:"groupsCreated"`
	Added         int `json:"added"`
	Removed       int `json:"removed"`
	Deferred      int `json:"deferred"`
	Orphans       []struct {
		Group, SCIMGroupID, ExternalID, Reason string
	} `json:"orphans"`
	Skipped []struct{ Group, GroupID, Reason string } `json:"skipped"`
	Errors  []string                                  `json:"errors"`
}

// reconcile runs the reconcile bootstrap once.
func (w *idWorld) reconcile() idSummary {
	w.t.Helper()
	var s idSummary
	reconcileOnce(w.t, w.ctx, w.recEnv, "reconcile-identity-"+w.name, &s)
	return s
}

// reconcileOnce starts the reconcile bootstrap with env, runs it once on the manual trigger
// payload "{}" and decodes its summary into out. A failed run fails the test with its logs.
func reconcileOnce(t testing.TB, ctx context.Context, env map[string]string, name string, out any) {
	t.Helper()
	reconcileInvoke(t, ctx, env, name, "{}", out)
}

// eachContainer runs a scenario in a warm and in a cold world.
func eachContainer(t *testing.T, m *harness.Moto, name string, env map[string]string, fn func(t *testing.T, w *idWorld)) {
	for _, cold := range []bool{false, true} {
		mode := "warm"
		if cold {
			mode = "cold"
		}
		t.Run(mode, func(t *testing.T) { fn(t, newIDWorld(t, m, name+"-"+mode, cold, env)) })
	}
}

func TestGroupIdentityEndToEnd(t *testing.T) {
	t.Parallel()
	m := harness.MustStartMoto(t)
	t0 := time.Now().Add(-10 * time.Minute).UTC().Truncate(time.Millisecond)

	// 1. A remove published before a rename reaches a container after the rename was applied.
	t.Run("remove_after_rename_is_applied", func(t *testing.T) {
		eachContainer(t, m, "s1", nil, func(t *testing.T, w *idWorld) {
			w.user("ann@example.com")
			w.user("bob@example.com")
			gid := w.oktaGroup("AWS_Admins", "bob@example.com")
			w.awsGroup("AWS_Admins", gid, "ann@example.com", "bob@example.com")
			if err := w.okta.SetGroupName(gid, "AWS_Admins_EU"); err != nil {
				t.Fatal(err)
			}
			w.step(groupEvent("group.profile.update", "s1-rename", t0.Add(2*time.Second), gid, "AWS_Admins_EU"))
			w.step(w.member("remove", "s1-remove", t0.Add(time.Second), "ann@example.com", gid, "AWS_Admins"))
			w.checkWire()
			w.expect(map[string][]string{"AWS_Admins_EU": {"bob@example.com"}})
			if r := w.dlqReasons(); len(r) != 0 {
				t.Fatalf("DLQ %v", r)
			}
		})
	})

	// 2. A rename and a later add with the new name: Okta answers the rename's read with a 503;
	// or the rename is never seen (lost, or applied by a container that is gone).
	t.Run("no_duplicate_group", func(t *testing.T) {
		eachContainer(t, m, "s2", nil, func(t *testing.T, w *idWorld) {
			w.user("ann@example.com")
			w.user("bob@example.com")
			gid := w.oktaGroup("AWS_Admins", "ann@example.com", "bob@example.com")
			w.awsGroup("AWS_Admins", gid, "ann@example.com")
			if err := w.okta.SetGroupName(gid, "AWS_Admins_EU"); err != nil {
				t.Fatal(err)
			}
			w.okta.Inject(oktatest.Fault{Route: oktatest.RouteGetGroup, GroupID: gid, Status: http.StatusServiceUnavailable, Times: 1})
			w.step(
				groupEvent("group.profile.update", "s2-rename", t0.Add(time.Second), gid, "AWS_Admins_EU"),
				w.member("add", "s2-add", t0.Add(2*time.Second), "bob@example.com", gid, "AWS_Admins_EU"),
			)
			w.checkWire()
			w.expect(map[string][]string{"AWS_Admins_EU": {"ann@example.com", "bob@example.com"}})

			// The same group renamed again, the rename never delivered: an add with the newest
			// name converges the AWS name, no second group.
			if err := w.okta.SetGroupName(gid, "AWS_Admins_Global"); err != nil {
				t.Fatal(err)
			}
			// (Okta stamps an event with the name the group has when it is published: one carrying
			// the newest name is published after the rename, i.e. now.)
			now := time.Now().UTC().Truncate(time.Millisecond)
			w.step(w.member("remove", "s2-remove", now, "bob@example.com", gid, "AWS_Admins_Global"))
			// A late event with an older name does not rename it back.
			w.step(w.member("add", "s2-late", now.Add(-time.Second), "bob@example.com", gid, "AWS_Admins_EU"))
			w.expect(map[string][]string{"AWS_Admins_Global": {"ann@example.com"}})
			if got := w.scim.Groups(); len(got) != 1 || got[0].ExternalID != gid {
				t.Fatalf("AWS groups %+v", got)
			}
			s := w.reconcile()
			if len(s.Orphans) != 0 || s.GroupsCreated != 0 || s.Added+s.Removed != 0 {
				t.Fatalf("reconcile after: %+v", s)
			}
		})
	})

	// 3. A name reused: AWS_Admins deleted in Okta and recreated (a new id); and two selected
	// Okta groups with one name.
	t.Run("name_reuse_never_crosses_groups", func(t *testing.T) {
		eachContainer(t, m, "s3", map[string]string{"DELETE_GROUPS": "true"}, func(t *testing.T, w *idWorld) {
			for _, l := range []string{"ann@example.com", "bob@example.com", "cat@example.com", "dan@example.com"} {
				w.user(l)
			}
			old := w.okta.AddGroup("AWS_Admins")
			w.awsGroup("AWS_Admins", old, "ann@example.com", "bob@example.com")
			if err := w.okta.DeleteGroup(old); err != nil {
				t.Fatal(err)
			}
			recreated := w.oktaGroup("AWS_Admins", "cat@example.com")
			w.step(w.member("add", "s3-add", t0.Add(3*time.Second), "cat@example.com", recreated, "AWS_Admins"))
			// Late events of the old group: a remove and its delete.
			w.step(w.member("remove", "s3-old-remove", t0.Add(time.Second), "ann@example.com", old, "AWS_Admins"))
			w.step(groupEvent("group.lifecycle.delete", "s3-old-delete", t0.Add(2*time.Second), old, "AWS_Admins"))
			got := w.byExternal()
			if len(got) != 1 || got[recreated] != "AWS_Admins: ann@example.com,bob@example.com,cat@example.com" {
				t.Fatalf("AWS groups %v: the recreated group adopts the old one's AWS group (its Okta group is gone); the old group's late remove and delete must not touch it", got)
			}
			// The reconciler then makes it the new group's: only cat.
			w.reconcile()
			if got := w.byExternal(); got[recreated] != "AWS_Admins: cat@example.com" {
				t.Fatalf("after reconcile %v", got)
			}

			// Two selected Okta groups named AWS_Ops: one has its AWS group, the other's changes
			// never reach it.
			ops := w.oktaGroup("AWS_Ops", "ann@example.com")
			w.awsGroup("AWS_Ops", ops, "ann@example.com")
			app := w.okta.AddGroupOfType("AWS_Ops", "APP_GROUP")
			w.step(
				w.member("remove", "s3-app-remove", t0.Add(5*time.Second), "ann@example.com", app, "AWS_Ops"),
				w.member("add", "s3-app-add", t0.Add(6*time.Second), "dan@example.com", app, "AWS_Ops"),
			)
			if got := w.byExternal(); got[ops] != "AWS_Ops: ann@example.com" || len(got) != 2 {
				t.Fatalf("AWS groups %v", got)
			}
			r := w.dlqReasons()
			if len(r) != 1 || !strings.Contains(r[0], "carries Okta group "+ops) {
				t.Fatalf("DLQ reasons %v, want the other group's add with the identity conflict", r)
			}
		})
	})

	// 4. Two Okta groups swap names.
	t.Run("swapped_names_resolve", func(t *testing.T) {
		eachContainer(t, m, "s4", nil, func(t *testing.T, w *idWorld) {
			w.user("ann@example.com")
			w.user("bob@example.com")
			x := w.oktaGroup("AWS_X", "ann@example.com")
			y := w.oktaGroup("AWS_Y", "bob@example.com")
			w.awsGroup("AWS_X", x, "ann@example.com")
			w.awsGroup("AWS_Y", y, "bob@example.com")
			// Okta: X → AWS_Tmp, Y → AWS_X, X → AWS_Y (an admin's swap); the events name the
			// groups as they are now.
			for _, r := range []struct{ id, name string }{{x, "AWS_Tmp"}, {y, "AWS_X"}, {x, "AWS_Y"}} {
				if err := w.okta.SetGroupName(r.id, r.name); err != nil {
					t.Fatal(err)
				}
			}
			w.step(
				groupEvent("group.profile.update", "s4-x1", t0.Add(time.Second), x, "AWS_Tmp"),
				groupEvent("group.profile.update", "s4-y", t0.Add(2*time.Second), y, "AWS_X"),
				groupEvent("group.profile.update", "s4-x2", t0.Add(3*time.Second), x, "AWS_Y"),
			)
			got := w.byExternal()
			if got[x] != "AWS_Y: ann@example.com" || got[y] != "AWS_X: bob@example.com" || len(got) != 2 {
				t.Fatalf("after the swap %v", got)
			}
			if r := w.dlqReasons(); len(r) != 0 {
				t.Fatalf("DLQ %v", r)
			}
			// Caches (by id) and the reconciler (by externalId) agree.
			w.step(w.member("add", "s4-add", t0.Add(4*time.Second), "bob@example.com", x, "AWS_Y"))
			if err := w.okta.AddMember(x, w.users["bob@example.com"]); err != nil {
				t.Fatal(err)
			}
			s := w.reconcile()
			if s.GroupsRenamed != 0 || s.Added+s.Removed != 0 || len(s.Orphans) != 0 {
				t.Fatalf("reconcile after the swap: %+v", s)
			}
			if got := w.byExternal(); got[x] != "AWS_Y: ann@example.com,bob@example.com" || got[y] != "AWS_X: bob@example.com" {
				t.Fatalf("after %v", got)
			}
		})
	})

	// 5. An AWS administrator renames the AWS group out of the selection: a warm cache must not
	// keep writing to it, and nothing is created instead.
	t.Run("renamed_out_of_selection_in_AWS", func(t *testing.T) {
		eachContainer(t, m, "s5", nil, func(t *testing.T, w *idWorld) {
			w.user("ann@example.com")
			w.user("bob@example.com")
			gid := w.oktaGroup("AWS_Admins", "ann@example.com")
			aws := w.awsGroup("AWS_Admins", gid)
			w.step(w.member("add", "s5-add1", t0.Add(time.Second), "ann@example.com", gid, "AWS_Admins"))
			if err := w.scim.RenameGroup(aws, "Legacy_Admins"); err != nil {
				t.Fatal(err)
			}
			w.step(w.member("add", "s5-add2", t0.Add(2*time.Second), "bob@example.com", gid, "AWS_Admins"))
			w.expect(map[string][]string{"Legacy_Admins": {"ann@example.com"}})
		})
	})
}

// 6. A remove the sync worker applies while the reconciler is patching another group is not
// undone by the reconciler's plan, made before it.
func TestReconcileDefersToEventsDuringApply(t *testing.T) {
	t.Parallel()
	m := harness.MustStartMoto(t)
	w := newIDWorld(t, m, "s6", false, nil)
	w.user("ann@example.com")
	w.user("bob@example.com")
	a := w.oktaGroup("AWS_A", "ann@example.com")
	b := w.oktaGroup("AWS_B", "bob@example.com")
	scimA := w.awsGroup("AWS_A", a)
	w.awsGroup("AWS_B", b)
	// The reconciler plans: add ann to AWS_A, add bob to AWS_B (concurrency 1). Its first PATCH is
	// held while Okta removes the other group's user and the sync worker applies that event.
	var mu sync.Mutex
	held := false
	first := make(chan string, 1)
	release := make(chan struct{})
	w.scim.SetFaultFunc(func(route string, r *http.Request) *scimtest.Fault {
		mu.Lock()
		// Only the reconciler writes until the hold is released; the sync worker's PATCH comes
		// later and goes through.
		hold := route == "PATCH /Groups/{id}" && !held
		if hold {
			held = true
		}
		mu.Unlock()
		if hold {
			first <- r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
			<-release
		}
		return nil
	})
	done := make(chan idSummary, 1)
	go func() { done <- w.reconcile() }()
	var patched string
	select {
	case patched = <-first:
	case <-time.After(2 * time.Minute):
		t.Fatal("the reconciler sent no PATCH")
	}
	other, group, login := b, "AWS_B", "bob@example.com"
	kept, keptLogin := "AWS_A", "ann@example.com"
	if patched != scimA {
		other, group, login = a, "AWS_A", "ann@example.com"
		kept, keptLogin = "AWS_B", "bob@example.com"
	}
	if err := w.okta.RemoveMember(other, w.users[login]); err != nil {
		t.Fatal(err)
	}
	w.deliver(w.member("remove", "s6-remove", time.Now().UTC(), login, other, group))
	w.pump()
	close(release)
	s := <-done
	snap := w.scim.Snapshot()
	if len(snap[group]) != 0 || s.Deferred != 1 {
		t.Fatalf("%s = %v, deferred %d: the reconciler undid a remove applied during its apply phase", group, snap[group], s.Deferred)
	}
	if !slices.Equal(snap[kept], []string{keptLogin}) {
		t.Fatalf("snapshot %v", snap)
	}
}
