package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/ledger"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/okta/oktatest"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim/scimtest"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/tests/harness"
)

// The identities of the events/ samples (events/README.md) and the tokens of the local world.
const (
	// sampleHookToken is the auth_token_for_okta the events/ samples carry: a documented sample
	// value, not a secret.
	sampleHookToken = "sample-okta-hook-token"
	scimToken       = scimtest.DefaultToken
	oktaToken       = oktatest.DefaultToken
	scimBasePath    = "/demo-tenant/scim/v2"

	engineersID = "00g8f2aa1bEngR4Hs5d7"
	readOnlyID  = "00g8f2bb2cRdoS5It5d7"
	marketingID = "00g8f2cc3dMktT6Ju5d7"
	adminsID    = "00g8f2dd4eAdmV8Kw5d7" // not in the samples: created in Okta while the hook was down
	engineers   = "AWS_Engineers"
	engineering = "AWS_Engineering" // AWS_Engineers' name after hook-delivery-rename.json
	readOnly    = "AWS_ReadOnly"
	marketing   = "Marketing"
	admins      = "AWS_Admins"
	janeID      = "00u8f3kq2rTzGm4Wd5d7"
	bobID       = "00u8f3lm9sVbHn2Xe5d7"
	carolID     = "00u8f3np4tWcJp7Yf5d7"
	daveID      = "00u8f3pq5uXdKr8Zg5d7" // not in the samples: his add reached Okta while the hook was down
	janeLogin   = "jane.doe@example.com"
	bobLogin    = "bob.smith@example.com"
	carolLogin  = "carol.white@example.com"
	daveLogin   = "dave.lee@example.com"
	bobSCIMName = "bob.smith@corp.example" // provisioned before his Okta login changed: linked by externalId
	eveSCIMName = "eve.ops@example.com"    // created by hand in the AWS console: no Okta identity
	queueName   = "okta-aws-sso-sync"
	// The template's queue: MaxReceiveCount 100 and VisibilityTimeout 720 s, so a failure the sync
	// worker does not back off itself would stall the demo for 12 minutes, as in production.
	maxReceive    = 100
	visibilitySec = 720
	// userWait is the demo's UNPROVISIONED_USER_WAIT (production default 1h): an operator setting,
	// short so the demo shows an unknown user's add reach the DLQ with its reason.
	userWait = "20s"
)

// oktaUser and oktaGroup are the seeded Okta world.
type oktaUser struct{ id, login string }

type oktaGroup struct {
	id, name string
	members  []string // Okta user ids
}

// seedOktaUsers and seedOktaGroups are Okta before the events of the samples happened: Dave's
// add to AWS_Engineers and the group AWS_Admins are already there (their events were lost while
// the hook was down), Jane and Bob are in AWS_ReadOnly.
func seedOktaUsers() []oktaUser {
	return []oktaUser{{janeID, janeLogin}, {bobID, bobLogin}, {carolID, carolLogin}, {daveID, daveLogin}}
}

func seedOktaGroups() []oktaGroup {
	return []oktaGroup{
		{engineersID, engineers, []string{daveID}},
		{readOnlyID, readOnly, []string{janeID, bobID}},
		{marketingID, marketing, nil},
		{adminsID, admins, []string{janeID}},
	}
}

// scimUser and scimGroup are the seeded AWS side (the SCIM emulator).
type scimUser struct{ userName, externalID string }

type scimGroup struct {
	name    string
	members []string // userNames
}

// seedSCIMUsers: users as Okta's AWS app provisions them (externalId = Okta user id), one whose
// userName no longer equals his Okta login, and one made by hand in AWS.
func seedSCIMUsers() []scimUser {
	return []scimUser{
		{janeLogin, janeID}, {bobSCIMName, bobID}, {carolLogin, carolID}, {daveLogin, daveID}, {eveSCIMName, ""},
	}
}

// seedSCIMGroups: Eve was added to AWS_Engineers by hand in the AWS console (drift the
// reconciler removes); Dave's add never arrived (drift it adds).
func seedSCIMGroups() []scimGroup {
	return []scimGroup{
		{engineers, []string{eveSCIMName}},
		{readOnly, []string{janeLogin, bobSCIMName}},
	}
}

// world is one local stand-in for AWS and Okta: moto_server (SQS FIFO queue + DLQ, Secrets
// Manager, DynamoDB), the SCIM emulator and the Okta fake, seeded with the samples' identities.
type world struct {
	moto     *harness.Moto
	ownMoto  bool
	scim     *scimtest.Server
	scimURL  string
	okta     *oktatest.Server
	oktaIDs  map[string]string // sample id → the fake's id
	proxy    *idProxy
	oktaURL  string
	queue    harness.Queue
	secretID string
	table    string
	name     string
	logs     io.Writer // function output is copied here when set
	prefix   bool      // each copied line starts with the function's name
	closers  []func()
}

// startWorld starts the emulators and creates the AWS resources. With m nil it starts its own
// moto_server; name keeps the resources of worlds sharing one moto apart.
func startWorld(ctx context.Context, m *harness.Moto, name string) (w *world, err error) {
	w = &world{moto: m, name: name, oktaIDs: map[string]string{}}
	defer func() {
		if err != nil {
			w.close()
		}
	}()
	if w.moto == nil {
		if w.moto, err = harness.StartMoto(); err != nil {
			return nil, err
		}
		w.ownMoto = true
	} else {
		// A shared moto (tests) may already hold a world of this name: secrets cannot be re-created.
		w.name = name + "-" + randomID()[:8]
	}
	name = w.name

	w.scim = scimtest.New(scimtest.Options{BasePath: scimBasePath, Token: scimToken, Seed: 1, EmptyRemove: scimtest.EmptyRemoveRejected})
	if w.scimURL, err = w.scim.Start(""); err != nil {
		return nil, err
	}
	w.closers = append(w.closers, func() { _ = w.scim.Close() })
	scimIDs := map[string]string{}
	for _, u := range seedSCIMUsers() {
		scimIDs[u.userName] = w.scim.AddUser(u.userName, u.externalID)
	}
	for _, g := range seedSCIMGroups() {
		gid := w.scim.AddGroup(g.name, "")
		for _, u := range g.members {
			w.scim.AddMember(gid, scimIDs[u])
		}
	}

	w.okta = oktatest.New(oktatest.Options{Token: oktaToken})
	fakeURL, err := w.okta.Start("")
	if err != nil {
		return nil, err
	}
	w.closers = append(w.closers, func() { _ = w.okta.Close() })
	for _, u := range seedOktaUsers() {
		w.oktaIDs[u.id] = w.okta.AddUser(u.login)
	}
	for _, g := range seedOktaGroups() {
		w.oktaIDs[g.id] = w.okta.AddGroup(g.name)
		for _, u := range g.members {
			if err := w.okta.AddMember(w.oktaIDs[g.id], w.oktaIDs[u]); err != nil {
				return nil, err
			}
		}
	}
	// The fake makes up its own ids; the samples carry Okta's. The proxy shows the functions the
	// samples' ids, so the Okta API and the events describe the same users and groups.
	if w.proxy, err = startIDProxy(fakeURL, w.oktaIDs); err != nil {
		return nil, err
	}
	w.oktaURL = w.proxy.url
	w.closers = append(w.closers, w.proxy.close)

	if w.queue, err = w.moto.CreateFIFOQueue(ctx, queueName+"-"+name, maxReceive); err != nil {
		return nil, err
	}
	if _, err = w.moto.SQS().SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{
		QueueUrl:   aws.String(w.queue.URL),
		Attributes: map[string]string{"VisibilityTimeout": fmt.Sprint(visibilitySec)},
	}); err != nil {
		return nil, fmt.Errorf("set visibility timeout: %w", err)
	}
	if w.secretID, err = w.moto.CreateSecret(ctx, queueName+"/"+name, harness.SecretJSON(sampleHookToken, scimToken, oktaToken)); err != nil {
		return nil, err
	}
	w.table = queueName + "-state-" + name
	if err = ledger.CreateTable(ctx, dynamodb.NewFromConfig(w.moto.AWSConfig()), w.table); err != nil {
		return nil, err
	}
	return w, nil
}

// close stops what the world started, newest first.
func (w *world) close() {
	for i := len(w.closers) - 1; i >= 0; i-- {
		w.closers[i]()
	}
	w.closers = nil
	if w.ownMoto && w.moto != nil {
		_ = w.moto.Close()
	}
}

// env is a function's environment as the template sets it, pointed at the local world.
func (w *world) env(fn string) map[string]string {
	e := harness.MergeEnv(w.moto.Env(), map[string]string{"SECRET_ID": w.secretID, "LOG_LEVEL": "info"})
	switch fn {
	case "hook":
		e["QUEUE_URL"] = w.queue.URL
	case "sync":
		e["SCIM_URL"], e["OKTA_ORG_URL"], e["STATE_TABLE"] = w.scimURL, w.oktaURL, w.table
		e["QUEUE_URL"] = w.queue.URL // where it backs failures off and isolates changes that fail on their own
		e["DLQ_URL"], e["UNPROVISIONED_USER_WAIT"] = w.queue.DLQURL, userWait
	case "reconcile":
		e["SCIM_URL"], e["OKTA_ORG_URL"], e["STATE_TABLE"] = w.scimURL, w.oktaURL, w.table
	}
	return e
}

// functionTimeout is each function's Timeout in template.yaml.
func functionTimeout(fn string) time.Duration {
	switch fn {
	case "hook":
		return 10 * time.Second
	case "sync":
		return 120 * time.Second
	default:
		return 900 * time.Second
	}
}

// prebuild starts building the functions in the background, so the builds overlap moto_server's
// start; start waits for them (harness builds each package once per process).
func prebuild(fns ...string) {
	for _, fn := range fns {
		go func() { _, _ = harness.BuildFunction(fn) }()
	}
}

// start builds (once per process) and starts fn under the harness's Lambda runtime.
func (w *world) start(fn string) (*harness.Runtime, error) {
	bin, err := harness.BuildFunction(fn)
	if err != nil {
		return nil, err
	}
	opts := []harness.RuntimeOption{harness.WithTimeout(functionTimeout(fn)), harness.WithFunctionName("okta-aws-sso-sync-" + fn)}
	if w.logs != nil {
		var lw io.Writer = w.logs
		if w.prefix {
			lw = newPrefixWriter(w.logs, fn)
		}
		opts = append(opts, harness.WithLogWriter(lw))
	}
	rt, err := harness.StartRuntime(bin, w.env(fn), opts...)
	if err != nil {
		return nil, err
	}
	w.closers = append(w.closers, func() { _ = rt.Close() })
	return rt, nil
}

// The admin's actions in Okta that the samples' events report, applied to the fake before the
// delivery is replayed, so Okta's API answers what Okta would by then.

func (w *world) oktaAdd(groupID, userID string) error {
	return w.okta.AddMember(w.oktaIDs[groupID], w.oktaIDs[userID])
}

func (w *world) oktaRemove(groupID, userID string) error {
	return w.okta.RemoveMember(w.oktaIDs[groupID], w.oktaIDs[userID])
}

func (w *world) oktaRename(groupID, name string) error {
	return w.okta.SetGroupName(w.oktaIDs[groupID], name)
}

func (w *world) oktaDelete(groupID string) error {
	return w.okta.DeleteGroup(w.oktaIDs[groupID])
}

func (w *world) oktaDeactivate(userID string) error { return w.oktaStatus(userID, "DEPROVISIONED") }

func (w *world) oktaStatus(userID, status string) error {
	return w.okta.SetUserStatus(w.oktaIDs[userID], status)
}

// groupMembers is one AWS group and its members' userNames (sorted), as the SCIM emulator holds them.
type groupMembers struct {
	group   string
	members []string
}

// membership is the AWS side now, sorted by group name.
func (w *world) membership() []groupMembers {
	snap := w.scim.Snapshot()
	out := make([]groupMembers, 0, len(snap))
	for g, ms := range snap {
		out = append(out, groupMembers{g, ms})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].group < out[j].group })
	return out
}

func formatMembers(ms []string) string {
	if len(ms) == 0 {
		return "(no members)"
	}
	return strings.Join(ms, ", ")
}

// dlq drains the dead-letter queue.
func (w *world) dlq(ctx context.Context) ([]harness.Message, error) {
	if w.queue.DLQURL == "" {
		return nil, errors.New("no dead-letter queue")
	}
	return w.moto.ReceiveAll(ctx, w.queue.DLQURL)
}
