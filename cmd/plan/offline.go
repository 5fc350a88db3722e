package main

import (
	"context"
	"fmt"
	"net/http"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/config"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/ledger"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/okta"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/okta/oktatest"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/reconciler"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim/scimtest"
)

// offlineWorld is the SCIM emulator and the Okta fake on localhost, seeded with one of each thing
// a plan reports, so `make plan OFFLINE=1` shows the whole table without an account:
//
//	AWS_Admins      Okta alice, bob; AWS alice, carol        → add bob, remove carol
//	AWS_Developers  the same members on both sides           → in sync
//	AWS_Data        no AWS group; frank not provisioned      → create, add erin
//	AWS_Platform    AWS group still named AWS_Infra          → rename
//	AWS_Audit       AWS group by name, without externalId    → adopt, add bob
//	AWS_BreakGlass  Okta lists nobody, AWS has dave          → removal blocked (empty answer)
//	AWS_Finance     the AWS group carries Finance_Legacy's id → identity conflict
//	AWS_Security    two AWS groups carry its id               → identity conflict
//	AWS_Retired     deleted in Okta, its AWS group remains   → orphan
type offlineWorld struct {
	scim             *scimtest.Server
	okta             *oktatest.Server
	scimURL, oktaURL string
}

const offlineSCIMBase = "/offline-tenant/scim/v2"

func startOffline() (*offlineWorld, error) {
	w := &offlineWorld{
		scim: scimtest.New(scimtest.Options{BasePath: offlineSCIMBase, Seed: 1}),
		okta: oktatest.New(oktatest.Options{}),
	}
	var err error
	if w.scimURL, err = w.scim.Start(""); err != nil {
		return nil, err
	}
	if w.oktaURL, err = w.okta.Start(""); err != nil {
		_ = w.scim.Close()
		return nil, err
	}
	if err := w.seed(); err != nil {
		w.Close()
		return nil, fmt.Errorf("seed the offline world: %w", err)
	}
	return w, nil
}

func (w *offlineWorld) Close() {
	_ = w.okta.Close()
	_ = w.scim.Close()
}

func (w *offlineWorld) seed() error {
	users := map[string]string{}
	for _, l := range []string{"alice.ng", "bob.ruiz", "carol.diaz", "dave.kim", "erin.cho", "frank.lee"} {
		login := l + "@example.com"
		users[l] = w.okta.AddUser(login)
		if l != "frank.lee" { // assigned in Okta, not yet provisioned to AWS
			w.scim.AddUser(login, users[l])
		}
	}
	var errs []error
	okGroup := func(name string, members ...string) string {
		id := w.okta.AddGroup(name)
		for _, m := range members {
			if err := w.okta.AddMember(id, users[m]); err != nil {
				errs = append(errs, err)
			}
		}
		return id
	}
	awsGroup := func(name, externalID string, members ...string) {
		id := w.scim.AddGroup(name, externalID)
		for _, m := range members {
			uid, ok := w.scim.UserID(m + "@example.com")
			if !ok {
				errs = append(errs, fmt.Errorf("no SCIM user %s", m))
			}
			w.scim.AddMember(id, uid)
		}
	}
	awsGroup("AWS_Admins", okGroup("AWS_Admins", "alice.ng", "bob.ruiz"), "alice.ng", "carol.diaz")
	awsGroup("AWS_Developers", okGroup("AWS_Developers", "alice.ng", "dave.kim"), "alice.ng", "dave.kim")
	okGroup("AWS_Data", "erin.cho", "frank.lee")
	awsGroup("AWS_Infra", okGroup("AWS_Platform", "dave.kim"), "dave.kim")
	okGroup("AWS_Audit", "bob.ruiz")
	awsGroup("AWS_Audit", "")
	awsGroup("AWS_BreakGlass", okGroup("AWS_BreakGlass"), "dave.kim")
	okGroup("AWS_Finance", "carol.diaz")
	awsGroup("AWS_Finance", okGroup("Finance_Legacy", "carol.diaz"), "carol.diaz")
	security := okGroup("AWS_Security", "alice.ng")
	awsGroup("AWS_Security", security, "alice.ng")
	awsGroup("AWS_Security (copy)", security)
	retired := okGroup("AWS_Retired")
	if err := w.okta.DeleteGroup(retired); err != nil {
		errs = append(errs, err)
	}
	awsGroup("AWS_Retired", retired, "erin.cho")
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// config is the reconciler's configuration against the world: the selection and the cap from
// the flags (not the environment, so the offline plan is the same everywhere), the real SCIM and
// Okta clients, and an empty in-memory ordering ledger (read through ledger.ReadOnly).
func (w *offlineWorld) config(f flags) (reconciler.Config, error) {
	fl := flagLayer(f)
	fl["SECRET_ID"], fl["SCIM_URL"], fl["OKTA_ORG_URL"], fl["STATE_TABLE"] = "offline", w.scimURL, w.oktaURL, ""
	p, err := config.LoadPlan(config.Layer(fl))
	if err != nil {
		return reconciler.Config{}, err
	}
	client, err := scim.New(w.scimURL, func(context.Context, bool) (string, error) { return scimtest.DefaultToken, nil })
	if err != nil {
		return reconciler.Config{}, err
	}
	cfg := planConfig(p)
	cfg.SCIM = scim.ReadOnlyOf(client)
	cfg.Okta = reconciler.OktaSourceOf(okta.NewSource(w.oktaURL, func(context.Context, bool) (string, error) { return oktatest.DefaultToken, nil }))
	cfg.Ledger = ledger.ReadOnlyOf(ledger.NewMemory())
	return cfg, nil
}

// writes counts what reached the emulators that was not a read.
func (w *offlineWorld) writes() int {
	n := w.scim.Writes()
	for _, r := range w.okta.RequestLog() {
		if r.Method != http.MethodGet {
			n++
		}
	}
	return n
}
