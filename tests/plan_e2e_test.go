package tests

// End-to-end test of cmd/plan (make plan): the real command binary reads the stack's parameters
// and outputs (CloudFormation DescribeStacks), the secret (Secrets Manager) and the ordering table
// (DynamoDB) from moto_server with the operator's credentials (the SDK's default chain, here the
// environment), plans against the SCIM emulator and the Okta fake on localhost, and prints the
// table. Nothing may be written: the emulator counts SCIM writes, the Okta fake every request,
// and the table is compared item by item.

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/ledger"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/membership"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/okta/oktatest"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/scim/scimtest"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/tests/harness"
)

const (
	planOktaToken = "plan-okta-ssws-e2e-Hy3Lq9"
	planSCIMToken = "plan-scim-bearer-e2e-Vd6Rk2"
	planHookToken = "plan-hook-secret-e2e-Tm4Ws8"
)

func TestPlanCommandEndToEnd(t *testing.T) {
	t.Parallel()
	m := harness.MustStartMoto(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	okta := oktatest.New(oktatest.Options{Token: planOktaToken})
	oktaURL, err := okta.Start("")
	if err != nil {
		t.Fatal(err)
	}
	defer okta.Close()
	sc := scimtest.New(scimtest.Options{Token: planSCIMToken, Seed: 3})
	scimURL, err := sc.Start("")
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()

	// The world: AWS_Admins drifted (+bob, -carol), AWS_Dev in sync, AWS_Ops missing two members
	// of which the sync worker already removed dave after this plan's read could see it (a
	// ledger mark newer than the read: the plan leaves it to the sync worker), and AWS_Old, the
	// AWS group of a deleted Okta group (an orphan).
	user := map[string]string{}
	for _, l := range []string{"alice", "bob", "carol", "dave"} {
		user[l] = okta.AddUser(l + "@example.com")
		sc.AddUser(l+"@example.com", user[l])
	}
	group := func(name string, oktaMembers []string, awsName string, awsMembers ...string) string {
		t.Helper()
		id := okta.AddGroup(name)
		for _, u := range oktaMembers {
			if err := okta.AddMember(id, user[u]); err != nil {
				t.Fatal(err)
			}
		}
		gid := sc.AddGroup(awsName, id)
		for _, u := range awsMembers {
			uid, _ := sc.UserID(u + "@example.com")
			sc.AddMember(gid, uid)
		}
		return id
	}
	admins := group("AWS_Admins", []string{"alice", "bob"}, "AWS_Admins", "alice", "carol")
	group("AWS_Dev", []string{"alice", "dave"}, "AWS_Dev", "alice", "dave")
	ops := group("AWS_Ops", []string{"bob", "dave"}, "AWS_Ops")
	old := group("AWS_Old", nil, "AWS_Old", "bob")
	if err := okta.DeleteGroup(old); err != nil {
		t.Fatal(err)
	}

	ddb := dynamodb.NewFromConfig(m.AWSConfig())
	const table = "okta-aws-sso-sync-plan-state"
	if err := ledger.CreateTable(ctx, ddb, table); err != nil {
		t.Fatal(err)
	}
	mark := ledger.Record{Key: membership.Key{GroupID: ops, UserID: user["dave"]},
		Mark: membership.Mark{Published: time.Now().Add(-10 * time.Second), Kind: membership.KindRemove, EventUUID: "ev-sync-remove"}}
	if err := ledger.New(ddb, table).Put(ctx, []ledger.Record{mark}); err != nil {
		t.Fatal(err)
	}
	items := func() string {
		t.Helper()
		out, err := ddb.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(table)})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(out.Items)
		return string(b)
	}
	tableBefore := items()

	secretARN := harness.MustCreateSecret(t, m, "okta-aws-sso-sync/plan", harness.SecretJSON(planHookToken, planSCIMToken, planOktaToken))
	noOkta := harness.MustCreateSecret(t, m, "okta-aws-sso-sync/plan-no-okta", `{"aws_sso_scim_key":"`+planSCIMToken+`"}`)

	// The stack as template.yaml declares what the plan reads: parameters ScimUrl, OktaOrgUrl,
	// GroupPrefix, MaxRemovals, outputs SecretArn and StateTableName.
	const stack = "okta-aws-sso-sync-plan-e2e"
	mustCreateStack(t, ctx, m, stack,
		map[string]string{"ScimUrl": "x", "OktaOrgUrl": "", "GroupPrefix": "AWS_", "MaxRemovals": "100"},
		map[string]string{"ScimUrl": scimURL, "OktaOrgUrl": oktaURL},
		map[string]string{"SecretArn": secretARN, "StateTableName": table})

	bin := harness.MustBuild(t, "cmd/plan")
	plan := func(t *testing.T, args ...string) (int, string) {
		t.Helper()
		cmd := exec.CommandContext(ctx, bin, append([]string{"-stack", stack}, args...)...)
		for k, v := range m.Env() {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		t.Logf("plan %s → exit %d\n%s", strings.Join(args, " "), code, out.String())
		for _, s := range []string{planOktaToken, planSCIMToken, planHookToken} {
			if strings.Contains(out.String(), s) {
				t.Errorf("output contains a secret")
			}
		}
		return code, out.String()
	}
	nothingWritten := func(t *testing.T) {
		t.Helper()
		if n := sc.Writes(); n != 0 {
			t.Errorf("%d SCIM writes: %v", n, sc.Requests())
		}
		for _, r := range okta.RequestLog() {
			if r.Method != http.MethodGet {
				t.Errorf("Okta write %s %s", r.Method, r.Path)
			}
		}
		if got := items(); got != tableBefore {
			t.Errorf("the state table changed:\n%s\nwas\n%s", got, tableBefore)
		}
	}

	t.Run("drift", func(t *testing.T) {
		code, out := plan(t)
		if code != 2 {
			t.Errorf("exit %d, want 2 (drift)", code)
		}
		for _, want := range []string{
			`selection prefix "AWS_", MAX_REMOVALS 100, ordering marks read`,
			"AWS_Admins  AWS_Admins  1    1       0        drift\n",
			"AWS_Dev     AWS_Dev     0    0       0        in sync\n",
			"AWS_Ops     AWS_Ops     1    0       0        drift: 1 deferred\n",
			"  + bob@example.com\n  - carol@example.com\n",
			"  AWS_Old (",
			"totals: 3 groups selected, 1 in sync, 2 with drift; 2 adds, 1 remove, 0 removals blocked; 0 creations, 0 renames, 0 adoptions; 1 orphan, 0 identity conflicts, 0 skipped, 0 errors\n",
			"1 change left to newer Okta events the sync worker applied\n",
			"result: drift (exit 2)\n",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q", want)
			}
		}
		if sc.TotalRequests() == 0 || okta.Stats().Requests == 0 {
			t.Errorf("the plan read nothing: SCIM %d, Okta %d requests", sc.TotalRequests(), okta.Stats().Requests)
		}
		nothingWritten(t)
	})
	// Without stack access the settings come from the flags (and the defaults): the plan says so,
	// and with no state table it reads no ordering marks, so dave's add is drift again.
	t.Run("without the stack", func(t *testing.T) {
		code, out := plan(t, "-stack", "no-such-stack", "-secret-id", secretARN, "-scim-url", scimURL, "-okta-org-url", oktaURL)
		if code != 2 || !strings.Contains(out, "read stack no-such-stack") || !strings.Contains(out, "ordering marks not read") ||
			!strings.Contains(out, "AWS_Ops     AWS_Ops     2    0       0        drift\n") {
			t.Errorf("exit %d, want 2 with the warning and no ordering marks", code)
		}
		nothingWritten(t)
	})
	t.Run("in sync", func(t *testing.T) {
		if code, out := plan(t, "-group", "AWS_Dev"); code != 0 || !strings.Contains(out, "result: in sync (exit 0)") {
			t.Errorf("exit %d, want 0", code)
		}
		nothingWritten(t)
	})
	t.Run("errors", func(t *testing.T) {
		if code, out := plan(t, "-group", "AWS_Dve"); code != 1 || !strings.Contains(out, `requested group "AWS_Dve" is not a selected Okta group`) {
			t.Errorf("mistyped group: exit %d, want 1", code)
		}
		// A group Okta fails to list is not "in sync": its plan is unknown.
		okta.FailGroupMembers(admins, http.StatusNotFound, 1)
		if code, out := plan(t, "-group", "AWS_Admins,AWS_Dev"); code != 1 || !strings.Contains(out, "AWS_Admins  AWS_Admins  ?    ?       ?        error\n") ||
			!strings.Contains(out, "error: Okta read failed") {
			t.Errorf("group read failure: exit %d, want 1", code)
		}
		if code, out := plan(t, "-secret-id", noOkta); code != 1 || !strings.Contains(out, "okta_api_token") {
			t.Errorf("secret without okta_api_token: exit %d, want 1", code)
		}
		if code, out := plan(t, "-scim-url", "not a url"); code != 1 || !strings.Contains(out, "SCIM_URL") {
			t.Errorf("bad -scim-url: exit %d, want 1", code)
		}
		nothingWritten(t)
	})
}
