package tests

// Checks of template.yaml and samconfig.toml: the wiring the code relies on (environment names,
// queue, schedule, IAM, alarms), which cfn-lint cannot know about. The template is decoded with
// CloudFormation's short-form tags turned into their long form, and a small resolver evaluates
// Ref/Sub/If/GetAtt with parameter values, so the environment a deployed function would get can be
// fed to the real pkg/config loaders.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"gopkg.in/yaml.v3"

	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/config"
	"github.com/okta-aws-sso-sync/okta-aws-sso-sync/pkg/telemetry"
)

// templateFunctions maps each function's logical ID to its directory under functions/. SAM's
// makefile build method runs `make build-<LogicalId>`, so the IDs are part of the build contract.
var templateFunctions = map[string]string{
	"HookFunction":      "hook",
	"SyncFunction":      "sync",
	"ReconcileFunction": "reconcile",
}

// The runtime contract (README, "Environment variables the functions read"): exactly these variables per function.
var (
	commonEnv = []string{"SECRET_ID", "GROUP_PREFIX", "GROUP_REGEX", "LOG_LEVEL", "METRICS_NAMESPACE"}
	wantEnv   = map[string][]string{
		"HookFunction": {"AUTH_HEADER", "QUEUE_URL"},
		"SyncFunction": {"SCIM_URL", "OKTA_ORG_URL", "DRY_RUN", "CREATE_GROUPS", "DELETE_GROUPS", "STATE_TABLE", "QUEUE_URL",
			"DLQ_URL", "UNPROVISIONED_USER_WAIT"},
		"ReconcileFunction": {"SCIM_URL", "OKTA_ORG_URL", "DRY_RUN", "MAX_REMOVALS", "CREATE_GROUPS",
			"RECONCILE_CONCURRENCY", "ALLOW_EMPTY_GROUPS", "STATE_TABLE"},
	}
)

// emfMetrics are the EMF metric names the functions emit: pkg/telemetry's one list
// (TestMetricNamesAreConstants keeps the functions to it). An alarm or dashboard graph on any
// other name in our namespace would watch a metric nobody writes.
var emfMetrics = telemetry.MetricNames

// Values a deployment would supply; everything else comes from the parameters' defaults.
const (
	exampleScimURL = "https://scim.us-east-1.amazonaws.com/a1b2c3d4-e5f6/scim/v2"
	exampleOktaURL = "https://example.okta.com"
	fakeStackName  = "okta-aws-sso-sync"
	fakeRegion     = "us-east-1"
	fakeAccount    = "123456789012"
)

func deployParams() map[string]string {
	return map[string]string{"ScimUrl": exampleScimURL, "OktaOrgUrl": exampleOktaURL}
}

func TestTemplateFunctionsBuildWithMakefile(t *testing.T) {
	t.Parallel()
	tpl := mustTemplate(t)
	root := mustRoot(t)

	ids := tpl.ofType("AWS::Serverless::Function")
	if want := sortedKeys(templateFunctions); !slices.Equal(ids, want) {
		t.Fatalf("functions in template.yaml = %v, want %v", ids, want)
	}
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		dir := templateFunctions[id]
		if bm := get(tpl.resource(t, id), "Metadata", "BuildMethod"); bm != "makefile" {
			t.Errorf("%s: Metadata.BuildMethod = %v, want makefile (one root go.mod)", id, bm)
		}
		// SAM copies CodeUri to its build directory: only the root carries go.mod and pkg/.
		if cu := tpl.functionProp(id, "CodeUri"); cu != "." {
			t.Errorf("%s: CodeUri = %v, want . (the module root)", id, cu)
		}
		target := "build-" + id
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(target) + `\s*:`).Match(makefile) {
			t.Errorf("Makefile has no target %s, which sam build runs for %s", target, id)
			continue
		}
		if _, err := os.Stat(filepath.Join(root, "functions", dir)); err != nil {
			t.Errorf("%s builds ./functions/%s: %v", id, dir, err)
		}
		if _, err := exec.LookPath("make"); err != nil {
			continue
		}
		// A dry run shows what sam build would execute, however the Makefile spells it.
		out, err := exec.Command("make", "-s", "-n", "-C", root, target, "ARTIFACTS_DIR=/sam-artifacts").CombinedOutput()
		if err != nil {
			t.Errorf("make -n %s: %v\n%s", target, err, out)
			continue
		}
		for _, want := range []string{"./functions/" + dir, "/sam-artifacts/bootstrap", "GOARCH=arm64", "GOOS=linux", "CGO_ENABLED=0"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("make %s does not mention %q:\n%s", target, want, out)
			}
		}
	}
}

func TestTemplateRuntime(t *testing.T) {
	t.Parallel()
	tpl := mustTemplate(t)
	for id := range templateFunctions {
		if v := tpl.functionProp(id, "Runtime"); v != "provided.al2023" {
			t.Errorf("%s: Runtime = %v, want provided.al2023", id, v)
		}
		if v := tpl.functionProp(id, "Architectures"); !reflect.DeepEqual(v, []any{"arm64"}) {
			t.Errorf("%s: Architectures = %v, want [arm64] (the Makefile builds GOARCH=arm64)", id, v)
		}
		if v := tpl.functionProp(id, "Handler"); v != "bootstrap" {
			t.Errorf("%s: Handler = %v, want bootstrap", id, v)
		}
	}
	// Okta gives up after 3 s; API Gateway cuts a Lambda integration at 29 s anyway.
	if to := asInt(tpl.functionProp("HookFunction", "Timeout")); to <= 3 || to > 29 {
		t.Errorf("HookFunction: Timeout = %d s, want a short timeout in (3, 29]", to)
	}
}

func TestTemplateEnvironmentNames(t *testing.T) {
	t.Parallel()
	tpl := mustTemplate(t)
	for id, extra := range wantEnv {
		got := sortedKeys(tpl.functionEnv(id))
		want := slices.Sorted(slices.Values(append(slices.Clone(commonEnv), extra...)))
		if !slices.Equal(got, want) {
			t.Errorf("%s environment = %v\nwant exactly %v", id, got, want)
		}
	}
}

// TestTemplateEnvironmentSatisfiesConfig feeds the environment a deployed function would get
// (parameter defaults, resolved references) to the real config loaders.
func TestTemplateEnvironmentSatisfiesConfig(t *testing.T) {
	t.Parallel()
	tpl := mustTemplate(t)
	st := newStack(t, tpl, deployParams())
	queueID := syncQueueID(t, tpl)
	tableID := tpl.refTo(t, tpl.functionEnv("SyncFunction")["STATE_TABLE"], "AWS::DynamoDB::Table")
	secretID := singleOfType(t, tpl, "AWS::SecretsManager::Secret")
	wantNS := "OktaAwsSsoSync/" + fakeStackName

	hook, err := config.LoadHook(st.envOf(t, "HookFunction"))
	if err != nil {
		t.Fatalf("LoadHook with the template's environment: %v", err)
	}
	if want := st.str(t, map[string]any{"Ref": queueID}); hook.QueueURL != want {
		t.Errorf("hook enqueues to %q, sync polls %q", hook.QueueURL, want)
	}
	if hook.AuthHeader != "Authorization" {
		t.Errorf("hook AuthHeader = %q, want Authorization (Okta's default)", hook.AuthHeader)
	}
	if hook.Selection.Prefix != "AWS_" || hook.Selection.Regex != nil {
		t.Errorf("hook selection = %+v, want prefix AWS_ and no regex", hook.Selection)
	}

	syncCfg, err := config.LoadSync(st.envOf(t, "SyncFunction"))
	if err != nil {
		t.Fatalf("LoadSync with the template's environment: %v", err)
	}
	if syncCfg.ScimURL != exampleScimURL || syncCfg.OktaOrgURL != exampleOktaURL {
		t.Errorf("sync URLs = %q, %q", syncCfg.ScimURL, syncCfg.OktaOrgURL)
	}
	if syncCfg.DryRun || !syncCfg.CreateGroups || syncCfg.DeleteGroups {
		t.Errorf("sync defaults: DryRun=%v CreateGroups=%v DeleteGroups=%v, want false true false",
			syncCfg.DryRun, syncCfg.CreateGroups, syncCfg.DeleteGroups)
	}
	if want := st.str(t, map[string]any{"Ref": tableID}); syncCfg.StateTable != want {
		t.Errorf("sync STATE_TABLE = %q, want the table %q", syncCfg.StateTable, want)
	}
	// The worker backs failures off and isolates changes on the queue it polls, and dead-letters
	// with a reason into the queue's own DLQ, waiting UnprovisionedUserWait (1h) for unknown users.
	if want := st.str(t, map[string]any{"Ref": queueID}); syncCfg.QueueURL != want {
		t.Errorf("sync isolates to %q, polls %q", syncCfg.QueueURL, want)
	}
	if dlq, _, _ := isGetAtt(get(tpl.props(t, queueID), "RedrivePolicy", "deadLetterTargetArn")); syncCfg.DLQURL != st.str(t, map[string]any{"Ref": dlq}) {
		t.Errorf("sync DLQ_URL = %q, want the queue's dead-letter queue %s", syncCfg.DLQURL, dlq)
	}
	if syncCfg.UnprovisionedUserWait != time.Hour {
		t.Errorf("sync UNPROVISIONED_USER_WAIT = %s, want the 1h default", syncCfg.UnprovisionedUserWait)
	}

	rec, err := config.LoadReconcile(st.envOf(t, "ReconcileFunction"))
	if err != nil {
		t.Fatalf("LoadReconcile with the template's environment: %v", err)
	}
	if rec.DryRun || !rec.CreateGroups || rec.AllowEmptyGroups || rec.MaxRemovals != 100 || rec.Concurrency != 4 {
		t.Errorf("reconcile defaults = %+v, want DryRun=false CreateGroups=true AllowEmptyGroups=false MaxRemovals=100 Concurrency=4", rec)
	}
	if rec.StateTable != syncCfg.StateTable {
		t.Errorf("reconcile STATE_TABLE %q differs from sync's %q", rec.StateTable, syncCfg.StateTable)
	}

	secretARN := st.str(t, map[string]any{"Ref": secretID})
	for name, c := range map[string]config.Common{"hook": hook.Common, "sync": syncCfg.Common, "reconcile": rec.Common} {
		if c.SecretID != secretARN {
			t.Errorf("%s SECRET_ID = %q, want the created secret %q", name, c.SecretID, secretARN)
		}
		if c.MetricsNamespace != wantNS {
			t.Errorf("%s METRICS_NAMESPACE = %q, want %q", name, c.MetricsNamespace, wantNS)
		}
	}

	// Reusing the Python connector's secret: the functions address it by name.
	existing := deployParams()
	existing["UseExistingSecret"] = "true"
	st2 := newStack(t, tpl, existing)
	h2, err := config.LoadHook(st2.envOf(t, "HookFunction"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "app/okta-aws-sso-scim-groups-connector"; h2.SecretID != want {
		t.Errorf("with UseExistingSecret=true SECRET_ID = %q, want %q", h2.SecretID, want)
	}
	if st2.condition(t, condOf(tpl.resource(t, secretID))) {
		t.Errorf("with UseExistingSecret=true the template still creates %s", secretID)
	}
}

func TestTemplateQueueWiring(t *testing.T) {
	t.Parallel()
	tpl := mustTemplate(t)
	st := newStack(t, tpl, deployParams())
	queueID := syncQueueID(t, tpl)
	q := tpl.props(t, queueID)

	if q["FifoQueue"] != true {
		t.Errorf("%s: FifoQueue = %v, want true (per-group ordering)", queueID, q["FifoQueue"])
	}
	// The hook sets MessageDeduplicationId from the event uuid; content-based dedup would also
	// drop a legitimate repeat of an identical change within 5 minutes.
	if q["ContentBasedDeduplication"] == true {
		t.Errorf("%s: ContentBasedDeduplication must be off, the hook sets dedup ids", queueID)
	}
	if ref, ok := isRef(tpl.functionEnv("HookFunction")["QUEUE_URL"]); !ok || ref != queueID {
		t.Errorf("hook QUEUE_URL = %v, want Ref %s (the queue sync polls)", tpl.functionEnv("HookFunction")["QUEUE_URL"], queueID)
	}

	dlqID, attr, ok := isGetAtt(get(q, "RedrivePolicy", "deadLetterTargetArn"))
	if !ok || attr != "Arn" {
		t.Fatalf("%s: RedrivePolicy.deadLetterTargetArn = %v, want GetAtt <DLQ>.Arn", queueID, get(q, "RedrivePolicy", "deadLetterTargetArn"))
	}
	if tpl.typeOf(dlqID) != "AWS::SQS::Queue" || get(tpl.props(t, dlqID), "FifoQueue") != true {
		t.Errorf("dead-letter queue %s must be a FIFO AWS::SQS::Queue", dlqID)
	}
	mrc := get(q, "RedrivePolicy", "maxReceiveCount")
	if p, ok := isRef(mrc); !ok || p != "MaxReceiveCount" {
		t.Errorf("%s: maxReceiveCount = %v, want Ref MaxReceiveCount", queueID, mrc)
	}
	if n, err := strconv.Atoi(st.str(t, mrc)); err != nil || n < 1 {
		t.Errorf("MaxReceiveCount default = %v, want a positive count", st.str(t, mrc))
	}

	// AWS: visibility timeout at least 6x the function timeout for an SQS event source, so a batch
	// still running (or retried by the poller) is not handed to a second worker.
	timeout := asInt(tpl.functionProp("SyncFunction", "Timeout"))
	visibility := asInt(q["VisibilityTimeout"])
	if timeout <= 0 || visibility < 6*timeout {
		t.Errorf("sync Timeout %d s, queue VisibilityTimeout %d s: want visibility >= 6 x timeout", timeout, visibility)
	}

	ev := syncQueueEvent(t, tpl)
	if !slices.Contains(asSlice(ev["FunctionResponseTypes"]), any("ReportBatchItemFailures")) {
		t.Errorf("sync SQS event: FunctionResponseTypes = %v, want ReportBatchItemFailures", ev["FunctionResponseTypes"])
	}
	if b := asInt(ev["BatchSize"]); b < 1 || b > 10 {
		t.Errorf("sync SQS event: BatchSize = %d, want 1..10 (FIFO maximum)", b)
	}
	if c := asInt(get(ev, "ScalingConfig", "MaximumConcurrency")); c < 2 {
		t.Errorf("sync SQS event: ScalingConfig.MaximumConcurrency = %d, want set and >= 2 (Lambda's minimum)", c)
	}

	// The ordering memory pkg/ledger writes: partition key pk (S), TTL attribute expiresAt.
	tableID := tpl.refTo(t, tpl.functionEnv("SyncFunction")["STATE_TABLE"], "AWS::DynamoDB::Table")
	tbl := tpl.props(t, tableID)
	if ks := asSlice(tbl["KeySchema"]); len(ks) != 1 || get(ks[0], "AttributeName") != "pk" || get(ks[0], "KeyType") != "HASH" {
		t.Errorf("%s: KeySchema = %v, want pk HASH only", tableID, tbl["KeySchema"])
	}
	if !slices.ContainsFunc(asSlice(tbl["AttributeDefinitions"]), func(a any) bool {
		return get(a, "AttributeName") == "pk" && get(a, "AttributeType") == "S"
	}) {
		t.Errorf("%s: AttributeDefinitions = %v, want pk S", tableID, tbl["AttributeDefinitions"])
	}
	if get(tbl, "TimeToLiveSpecification", "AttributeName") != "expiresAt" || get(tbl, "TimeToLiveSpecification", "Enabled") != true {
		t.Errorf("%s: TimeToLiveSpecification = %v, want expiresAt enabled", tableID, tbl["TimeToLiveSpecification"])
	}
}

func TestTemplateReconcileSchedule(t *testing.T) {
	t.Parallel()
	tpl := mustTemplate(t)
	var schedules []map[string]any
	for _, ev := range tpl.events("ReconcileFunction") {
		if typ := get(ev, "Type"); typ == "Schedule" || typ == "ScheduleV2" {
			schedules = append(schedules, asMap(get(ev, "Properties")))
		}
	}
	if len(schedules) != 1 {
		t.Fatalf("ReconcileFunction has %d schedule events, want 1", len(schedules))
	}
	sched := schedules[0]
	env := tpl.functionEnv("ReconcileFunction")
	for name, param := range map[string]string{"DRY_RUN": "DryRun", "MAX_REMOVALS": "MaxRemovals"} {
		if p, ok := isRef(env[name]); !ok || p != param {
			t.Errorf("reconcile %s = %v, want Ref %s", name, env[name], param)
		}
	}

	for _, tc := range []struct {
		name   string
		params map[string]string
		want   bool
	}{
		{"defaults", deployParams(), true},
		{"ReconcileEnabled=false", map[string]string{"ScimUrl": exampleScimURL, "OktaOrgUrl": exampleOktaURL, "ReconcileEnabled": "false"}, false},
		// Without an Okta org the reconciler cannot run; an hourly failure would only page people.
		{"no OktaOrgUrl", map[string]string{"ScimUrl": exampleScimURL}, false},
	} {
		st := newStack(t, tpl, tc.params)
		if tc.name == "defaults" {
			if expr := st.str(t, sched["Schedule"]); expr != "rate(1 hour)" {
				t.Errorf("default reconcile schedule = %q, want rate(1 hour)", expr)
			}
		}
		var enabled bool
		switch {
		case sched["State"] != nil:
			enabled = st.str(t, sched["State"]) == "ENABLED"
		case sched["Enabled"] != nil:
			enabled = st.resolve(t, sched["Enabled"]) == true
		default:
			enabled = true
		}
		if enabled != tc.want {
			t.Errorf("%s: reconcile schedule enabled = %v, want %v", tc.name, enabled, tc.want)
		}
	}
}

func TestTemplateHookAPI(t *testing.T) {
	t.Parallel()
	tpl := mustTemplate(t)
	methods := map[string]bool{}
	var path, apiID string
	for name, ev := range tpl.events("HookFunction") {
		if get(ev, "Type") != "Api" {
			continue
		}
		p := asMap(get(ev, "Properties"))
		rest, _ := isRef(p["RestApiId"])
		if path == "" {
			path, apiID = asString(p["Path"]), rest
		}
		if asString(p["Path"]) != path || rest != apiID {
			t.Errorf("hook event %s is on %v %v, want every hook method on %s of %s", name, p["RestApiId"], p["Path"], path, apiID)
		}
		methods[strings.ToUpper(asString(p["Method"]))] = true
	}
	if !methods["GET"] || !methods["POST"] {
		t.Fatalf("hook Api events = %v on %q, want GET (verification) and POST (deliveries) on one path", methods, path)
	}
	if tpl.typeOf(apiID) != "AWS::Serverless::Api" {
		t.Fatalf("hook events' RestApiId %q is not an AWS::Serverless::Api in the template", apiID)
	}
	api := tpl.props(t, apiID)

	// With a DefinitionBody SAM adds no integrations: the body must route both methods to the hook.
	if body := asMap(api["DefinitionBody"]); body != nil {
		for _, m := range []string{"get", "post"} {
			integ := asMap(get(body, "paths", path, m, "x-amazon-apigateway-integration"))
			if get(integ, "type") != "aws_proxy" || !strings.Contains(asString(get(integ, "uri", "Fn::Sub")), "${HookFunction.Arn}") {
				t.Errorf("DefinitionBody %s %s: integration = %v, want aws_proxy to HookFunction", m, path, integ)
			}
		}
	}

	// API key on (default) and off.
	for _, on := range []bool{true, false} {
		params := deployParams()
		params["EnableApiKey"] = strconv.FormatBool(on)
		st := newStack(t, tpl, params)
		if body := api["DefinitionBody"]; body != nil {
			for _, m := range []string{"get", "post"} {
				sec := st.resolve(t, get(body, "paths", path, m, "security"))
				required := len(asSlice(sec)) > 0
				if required != on {
					t.Errorf("EnableApiKey=%v: %s security = %v", on, m, sec)
				}
			}
			if on && get(body, "components", "securitySchemes", "api_key", "name") != "x-api-key" {
				t.Errorf("api_key scheme must read the x-api-key header Okta is configured to send")
			}
		}
		for _, typ := range []string{"AWS::ApiGateway::ApiKey", "AWS::ApiGateway::UsagePlan", "AWS::ApiGateway::UsagePlanKey"} {
			ids := tpl.ofType(typ)
			if len(ids) != 1 {
				t.Fatalf("want one %s, have %v", typ, ids)
			}
			if created := st.condition(t, condOf(tpl.resource(t, ids[0]))); created != on {
				t.Errorf("EnableApiKey=%v: %s created = %v", on, ids[0], created)
			}
		}
	}
	plan := tpl.props(t, tpl.ofType("AWS::ApiGateway::UsagePlan")[0])
	if id, _ := isRef(get(asSlice(plan["ApiStages"]), "0", "ApiId")); id != apiID {
		t.Errorf("usage plan ApiStages = %v, want the hook API %s", plan["ApiStages"], apiID)
	}

	url := asString(get(tpl, "Outputs", "HookUrl", "Value", "Fn::Sub"))
	if want := "${" + apiID + "}.execute-api."; !strings.Contains(url, want) ||
		!strings.HasSuffix(url, "/"+asString(api["StageName"])+path) {
		t.Errorf("HookUrl = %q, want https://${%s}.execute-api.../%s%s", url, apiID, api["StageName"], path)
	}
}

func TestTemplateAlarms(t *testing.T) {
	t.Parallel()
	tpl := mustTemplate(t)
	st := newStack(t, tpl, deployParams())
	ns := get(tpl, "Globals", "Function", "Environment", "Variables", "METRICS_NAMESPACE")
	dlqID, _, _ := isGetAtt(get(tpl.props(t, syncQueueID(t, tpl)), "RedrivePolicy", "deadLetterTargetArn"))

	found := map[string]bool{}
	for _, id := range tpl.ofType("AWS::CloudWatch::Alarm") {
		p := tpl.props(t, id)
		metric := asString(p["MetricName"])
		if p["Metrics"] != nil {
			t.Errorf("%s: metric math alarms are not checked here; use Namespace/MetricName", id)
			continue
		}
		if p["AlarmActions"] == nil {
			t.Errorf("%s: no AlarmActions (the AlarmEmail topic)", id)
		}
		if nsName, ok := p["Namespace"].(string); ok && strings.HasPrefix(nsName, "AWS/") {
			switch {
			case nsName == "AWS/SQS" && metric == "ApproximateNumberOfMessagesVisible" && firesOnFirst(p):
				if q, attr, _ := isGetAtt(dimension(p, "QueueName")); q == dlqID && attr == "QueueName" {
					found["dlq"] = true
				}
			case nsName == "AWS/SQS" && metric == "ApproximateAgeOfOldestMessage":
				// Lag operators can see: the sync queue's oldest message, alarmed on an age.
				if q, attr, _ := isGetAtt(dimension(p, "QueueName")); q == syncQueueID(t, tpl) && attr == "QueueName" && p["Threshold"] != nil {
					found["queue-age"] = true
				}
			case nsName == "AWS/Lambda" && metric == "Errors" && firesOnFirst(p):
				if fn, _ := isRef(dimension(p, "FunctionName")); fn != "" {
					found["errors:"+fn] = true
				}
			}
			continue
		}
		if !reflect.DeepEqual(p["Namespace"], ns) {
			t.Errorf("%s: Namespace %v is neither AWS/* nor the functions' METRICS_NAMESPACE %v", id, p["Namespace"], ns)
			continue
		}
		if !slices.Contains(emfMetrics, metric) {
			t.Errorf("%s: metric %q is not one the functions emit (%v)", id, metric, emfMetrics)
		}
		if len(asSlice(p["Dimensions"])) > 0 {
			t.Errorf("%s: EMF metrics are emitted without dimensions, alarm has %v", id, p["Dimensions"])
		}
		if firesOnFirst(p) {
			found[metric] = true
		}
	}
	want := []string{"dlq", "queue-age", "ScimUnauthorized", "ReconcileRemovalsBlocked", "GroupIdentityConflicts", "OrphanGroups"}
	for id := range templateFunctions {
		want = append(want, "errors:"+id)
	}
	for _, w := range want {
		if !found[w] {
			t.Errorf("no alarm that fires on the first %s", w)
		}
	}

	// The dashboard body is JSON only after substitution; every custom graph must name an EMF metric.
	dash := singleOfType(t, tpl, "AWS::CloudWatch::Dashboard")
	var body struct {
		Widgets []struct {
			Properties struct {
				Metrics [][]any `json:"metrics"`
			} `json:"properties"`
		} `json:"widgets"`
	}
	if err := json.Unmarshal([]byte(st.str(t, tpl.props(t, dash)["DashboardBody"])), &body); err != nil {
		t.Fatalf("%s: DashboardBody is not JSON after substitution: %v", dash, err)
	}
	nsValue := st.str(t, ns)
	graphs := 0
	for _, w := range body.Widgets {
		for _, m := range w.Properties.Metrics {
			space, _ := m[0].(string)
			if strings.HasPrefix(space, "AWS/") || space == "." || space == "..." {
				continue
			}
			graphs++
			if space != nsValue {
				t.Errorf("dashboard graphs namespace %q, want %q", space, nsValue)
			}
			if name, _ := m[1].(string); !slices.Contains(emfMetrics, name) {
				t.Errorf("dashboard graphs %q, not an emitted metric", name)
			}
		}
	}
	if graphs == 0 {
		t.Errorf("dashboard shows none of the functions' metrics")
	}
}

// scimTokenExpiryEvent is the AWS Health event type that announces the SCIM bearer token's
// expiry (template.yaml, ScimTokenExpiryRule, for the sources).
const scimTokenExpiryEvent = "AWS_IAMIDENTITYCENTER_SCIM_BEARER_TOKEN_EXPIRY_NOTIFICATION"

// TestTemplateScimTokenExpiry: AWS Health's token-expiry event reaches the topic the alarms
// notify, through a rule whose pattern matches that event and no other, and the topic's policy
// lets EventBridge (that rule only) publish, and still lets the alarms publish.
func TestTemplateScimTokenExpiry(t *testing.T) {
	t.Parallel()
	tpl := mustTemplate(t)

	// The alarm topic is what the ScimUnauthorized alarm notifies.
	var topicID string
	for _, id := range tpl.ofType("AWS::CloudWatch::Alarm") {
		if asString(tpl.props(t, id)["MetricName"]) != "ScimUnauthorized" {
			continue
		}
		actions := asSlice(get(tpl.props(t, id), "AlarmActions", "Fn::If", "1"))
		if len(actions) == 1 {
			topicID, _ = isRef(actions[0])
		}
	}
	if tpl.typeOf(topicID) != "AWS::SNS::Topic" {
		t.Fatalf("ScimUnauthorized alarm's AlarmActions name no SNS topic of the template (%q)", topicID)
	}

	rules := tpl.ofType("AWS::Events::Rule")
	var ruleID string
	for _, id := range rules {
		if slices.Contains(literalStrings(get(tpl.props(t, id), "EventPattern", "detail", "eventTypeCode")), scimTokenExpiryEvent) {
			ruleID = id
		}
	}
	if ruleID == "" {
		t.Fatalf("no AWS::Events::Rule matches detail.eventTypeCode %s (rules: %v)", scimTokenExpiryEvent, rules)
	}
	rule := tpl.props(t, ruleID)
	if rule["State"] != "ENABLED" {
		t.Errorf("%s: State = %v, want ENABLED", ruleID, rule["State"])
	}
	if rule["EventBusName"] != nil && rule["EventBusName"] != "default" {
		t.Errorf("%s: EventBusName = %v; AWS Health sends to the default bus", ruleID, rule["EventBusName"])
	}
	if rule["ScheduleExpression"] != nil {
		t.Errorf("%s: has a ScheduleExpression; it must react to the event only", ruleID)
	}

	// The pattern against an AWS Health event shaped like the schema reference (testdata), and
	// against what it must not match.
	pattern := asMap(rule["EventPattern"])
	raw, err := os.ReadFile(filepath.Join(mustRoot(t), "tests", "testdata", "aws-health-scim-token-expiry.json"))
	if err != nil {
		t.Fatal(err)
	}
	var event map[string]any
	if err := json.Unmarshal(raw, &event); err != nil {
		t.Fatalf("testdata event: %v", err)
	}
	if ok, err := eventMatches(pattern, event); err != nil || !ok {
		t.Errorf("%s: pattern %v does not match the AWS Health %s event (%v)", ruleID, pattern, scimTokenExpiryEvent, err)
	}
	for name, mutate := range map[string]func(map[string]any){
		"another Health event type": func(e map[string]any) {
			asMap(e["detail"])["eventTypeCode"] = "AWS_IAMIDENTITYCENTER_OPERATIONAL_ISSUE"
		},
		"another source":       func(e map[string]any) { e["source"] = "aws.sso" },
		"a CloudTrail call":    func(e map[string]any) { e["detail-type"] = "AWS API Call via CloudTrail" },
		"an abuse event":       func(e map[string]any) { e["detail-type"] = "AWS Health Abuse Event" },
		"no event type at all": func(e map[string]any) { delete(asMap(e["detail"]), "eventTypeCode") },
	} {
		var other map[string]any
		_ = json.Unmarshal(raw, &other)
		mutate(other)
		if ok, err := eventMatches(pattern, other); err != nil || ok {
			t.Errorf("%s: pattern matches %s (err %v)", ruleID, name, err)
		}
	}

	// One target, the alarm topic, through the topic's resource policy (no RoleArn: EventBridge
	// user guide, "Using resource-based policies for Amazon EventBridge").
	targets := asSlice(rule["Targets"])
	if len(targets) != 1 {
		t.Fatalf("%s: Targets = %v, want exactly the alarm topic", ruleID, targets)
	}
	if arn, _ := isRef(get(targets[0], "Arn")); arn != topicID {
		t.Errorf("%s: target Arn = %v, want Ref %s (the alarm topic)", ruleID, get(targets[0], "Arn"), topicID)
	}
	if get(targets[0], "RoleArn") != nil {
		t.Errorf("%s: target has a RoleArn; SNS targets are authorised by the topic policy", ruleID)
	}
	if get(targets[0], "Input") != nil || get(targets[0], "InputPath") != nil {
		t.Errorf("%s: the target reshapes the event; the mail needs the whole event (eventDescription says when the token expires)", ruleID)
	}

	policies := tpl.ofType("AWS::SNS::TopicPolicy")
	var policyID string
	for _, id := range policies {
		for _, tp := range asSlice(tpl.props(t, id)["Topics"]) {
			if ref, _ := isRef(tp); ref == topicID {
				policyID = id
			}
		}
	}
	if policyID == "" {
		t.Fatalf("no AWS::SNS::TopicPolicy on %s (policies: %v): EventBridge cannot publish to it", topicID, policies)
	}

	for _, email := range []string{"", "ops@example.com"} {
		params := deployParams()
		params["AlarmEmail"] = email
		st := newStack(t, tpl, params)
		topic := st.condition(t, condOf(tpl.resource(t, topicID)))
		for _, id := range []string{ruleID, policyID} {
			// Created exactly when the topic is: a rule without its target, or a target that does
			// not exist, would fail the deployment or notify nobody.
			if created := st.condition(t, condOf(tpl.resource(t, id))); created != topic {
				t.Errorf("AlarmEmail=%q: %s created = %v, topic %s created = %v", email, id, created, topicID, topic)
			}
		}
		if !topic {
			continue
		}
		topicARN := st.str(t, map[string]any{"Ref": topicID})
		ruleARN := st.str(t, map[string]any{"Fn::GetAtt": []any{ruleID, "Arn"}})
		var stmts []any
		for _, l := range policyStatements(st.resolve(t, get(tpl.props(t, policyID), "PolicyDocument")), "") {
			stmts = append(stmts, l.stmt)
		}
		if !allowsService(stmts, "events.amazonaws.com", "sns:Publish", topicARN, map[string]string{"aws:SourceArn": ruleARN}) {
			t.Errorf("%s: EventBridge may not publish rule %s's events to %s: %v", policyID, ruleARN, topicARN, stmts)
		}
		if allowsService(stmts, "events.amazonaws.com", "sns:Publish", topicARN, map[string]string{"aws:SourceArn": ruleARN + "-other"}) {
			t.Errorf("%s: EventBridge may publish any rule's events to %s; limit it to %s", policyID, topicARN, ruleARN)
		}
		// A topic policy replaces SNS's default one: the alarms must still reach the topic.
		alarms := allowsService(stmts, "cloudwatch.amazonaws.com", "sns:Publish", topicARN, map[string]string{"aws:SourceAccount": fakeAccount, "AWS:SourceOwner": fakeAccount})
		if !alarms {
			t.Errorf("%s: this account's CloudWatch alarms may no longer publish to %s: %v", policyID, topicARN, stmts)
		}
		if allowsService(stmts, "cloudwatch.amazonaws.com", "sns:Publish", topicARN, map[string]string{"aws:SourceAccount": "999999999999", "AWS:SourceOwner": "999999999999"}) {
			t.Errorf("%s: another account's alarms may publish to %s", policyID, topicARN)
		}
	}
}

// eventMatches applies an EventBridge event pattern of exact values (EventBridge user guide,
// "Creating event patterns": every field of the pattern must be in the event; a list of values
// matches when the event's value, or one of the event's values, is in it; objects nest). Other
// comparison forms (prefix, anything-but, numeric, exists) are reported as unsupported, so a test
// never passes on a pattern this function does not understand.
func eventMatches(pattern, event map[string]any) (bool, error) {
	for k, want := range pattern {
		got, present := event[k]
		switch w := want.(type) {
		case map[string]any:
			sub, ok := got.(map[string]any)
			if !present || !ok {
				return false, nil
			}
			if ok, err := eventMatches(w, sub); err != nil || !ok {
				return false, err
			}
		case []any:
			if !present {
				return false, nil
			}
			vals := []any{got}
			if l, ok := got.([]any); ok {
				vals = l
			}
			matched := false
			for _, v := range w {
				if _, isMap := v.(map[string]any); isMap {
					return false, fmt.Errorf("field %s: content filter %v not supported here", k, v)
				}
				for _, g := range vals {
					if fmt.Sprint(g) == fmt.Sprint(v) {
						matched = true
					}
				}
			}
			if !matched {
				return false, nil
			}
		default:
			return false, fmt.Errorf("field %s: pattern value %v is neither a list nor an object", k, want)
		}
	}
	return true, nil
}

// allowsService reports whether resolved resource-policy statements let the service principal do
// action on resource, when the request carries the given condition keys (StringEquals and
// ArnEquals/ArnLike conditions evaluated; any other condition operator counts as not granted).
func allowsService(stmts []any, service, action, resource string, ctx map[string]string) bool {
	for _, s := range stmts {
		if get(s, "Effect") != "Allow" || !grantsAction(s, action) {
			continue
		}
		p := get(s, "Principal")
		if !(p == "*" || slices.Contains(literalStrings(get(p, "AWS")), "*") || slices.Contains(literalStrings(get(p, "Service")), service)) {
			continue
		}
		if !slices.ContainsFunc(literalStrings(get(s, "Resource")), func(r string) bool { return iamMatch(r, resource) }) {
			continue
		}
		ok := true
		for op, conds := range asMap(get(s, "Condition")) {
			for key, want := range asMap(conds) {
				// Condition keys are case-insensitive in IAM.
				var have string
				var found bool
				for k, v := range ctx {
					if strings.EqualFold(k, key) {
						have, found = v, true
					}
				}
				switch op {
				case "StringEquals", "ArnEquals":
					ok = ok && found && slices.Contains(literalStrings(want), have)
				case "ArnLike", "StringLike":
					ok = ok && found && slices.ContainsFunc(literalStrings(want), func(w string) bool { return iamMatch(w, have) })
				default:
					ok = false
				}
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func TestTemplateIAM(t *testing.T) {
	t.Parallel()
	tpl := mustTemplate(t)

	// Anywhere in the template, before resolution: no Allow of secretsmanager:GetSecretValue on a
	// wildcard resource, and no wildcard resource at all.
	for _, s := range policyStatements(tpl["Resources"], "Resources") {
		if get(s.stmt, "Effect") != "Allow" {
			continue
		}
		if get(s.stmt, "NotResource") != nil || get(s.stmt, "NotAction") != nil {
			t.Errorf("%s: Allow with NotAction/NotResource grants nearly everything", s.where)
		}
		wild := slices.ContainsFunc(literalStrings(get(s.stmt, "Resource")), func(r string) bool { return strings.Contains(r, "*") })
		if wild && grantsAction(s.stmt, "secretsmanager:GetSecretValue") {
			t.Errorf("%s: secretsmanager:GetSecretValue on a wildcard resource %v", s.where, get(s.stmt, "Resource"))
		} else if wild {
			t.Errorf("%s: wildcard resource %v; grant this stack's resources only", s.where, get(s.stmt, "Resource"))
		}
	}
	// SAM policy templates, should someone add them.
	for id := range templateFunctions {
		for _, pol := range asSlice(tpl.functionProp(id, "Policies")) {
			if arn := get(pol, "AWSSecretsManagerGetSecretValuePolicy", "SecretArn"); slices.ContainsFunc(literalStrings(arn), func(r string) bool { return strings.Contains(r, "*") }) {
				t.Errorf("%s: AWSSecretsManagerGetSecretValuePolicy on a wildcard %v", id, arn)
			}
		}
	}

	queueID := syncQueueID(t, tpl)
	tableID := tpl.refTo(t, tpl.functionEnv("SyncFunction")["STATE_TABLE"], "AWS::DynamoDB::Table")
	for _, existing := range []bool{false, true} {
		params := deployParams()
		params["UseExistingSecret"] = strconv.FormatBool(existing)
		st := newStack(t, tpl, params)
		queueARN := st.str(t, map[string]any{"Fn::GetAtt": []any{queueID, "Arn"}})
		tableARN := st.str(t, map[string]any{"Fn::GetAtt": []any{tableID, "Arn"}})
		secretARN := fakeSecretARN(st.params["SecretName"])
		if !existing {
			secretARN = st.str(t, map[string]any{"Ref": singleOfType(t, tpl, "AWS::SecretsManager::Secret")})
		}
		otherSecret := fakeSecretARN(st.params["SecretName"] + "-other")

		for id := range templateFunctions {
			stmts := st.functionStatements(t, id)
			logGroup := tpl.refTo(t, get(tpl.functionProp(id, "LoggingConfig"), "LogGroup"), "AWS::Logs::LogGroup")
			logARN := st.str(t, map[string]any{"Fn::GetAtt": []any{logGroup, "Arn"}})
			must := map[string][]string{
				secretARN: {"secretsmanager:GetSecretValue"},
				logARN:    {"logs:CreateLogStream", "logs:PutLogEvents"},
			}
			mustNot := map[string][]string{otherSecret: {"secretsmanager:GetSecretValue"}}
			switch id {
			case "HookFunction":
				must[queueARN] = []string{"sqs:SendMessage"}
				mustNot[queueARN] = []string{"sqs:ReceiveMessage", "sqs:DeleteMessage"}
				mustNot[tableARN] = []string{"dynamodb:PutItem"}
			case "SyncFunction":
				// What the Lambda poller needs, the worker's backoff (ChangeMessageVisibility) and
				// isolation (SendMessage), its dead letters, and pkg/ledger's calls.
				must[queueARN] = []string{"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:SendMessage", "sqs:ChangeMessageVisibility"}
				dlqID, _, _ := isGetAtt(get(tpl.props(t, queueID), "RedrivePolicy", "deadLetterTargetArn"))
				must[st.str(t, map[string]any{"Fn::GetAtt": []any{dlqID, "Arn"}})] = []string{"sqs:SendMessage"}
				must[tableARN] = []string{"dynamodb:BatchGetItem", "dynamodb:PutItem"}
				mustNot[queueARN] = []string{"sqs:PurgeQueue", "sqs:DeleteQueue"}
				mustNot[tableARN] = []string{"dynamodb:DeleteTable", "dynamodb:Scan"}
			case "ReconcileFunction":
				must[tableARN] = []string{"dynamodb:BatchGetItem", "dynamodb:PutItem"}
				mustNot[queueARN] = []string{"sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage"}
			}
			for res, actions := range must {
				for _, a := range actions {
					if !allows(stmts, a, res) {
						t.Errorf("UseExistingSecret=%v: %s cannot %s on %s", existing, id, a, res)
					}
				}
			}
			for res, actions := range mustNot {
				for _, a := range actions {
					if allows(stmts, a, res) {
						t.Errorf("UseExistingSecret=%v: %s may %s on %s, which it does not need", existing, id, a, res)
					}
				}
			}
		}
	}
}

func TestTemplateSecret(t *testing.T) {
	t.Parallel()
	tpl := mustTemplate(t)
	id := singleOfType(t, tpl, "AWS::SecretsManager::Secret")
	p := tpl.props(t, id)
	if name, _ := isRef(p["Name"]); name != "SecretName" {
		t.Errorf("%s: Name = %v, want Ref SecretName", id, p["Name"])
	}
	if def := get(tpl, "Parameters", "SecretName", "Default"); def != "app/okta-aws-sso-scim-groups-connector" {
		t.Errorf("SecretName default = %v, want the Python connector's name", def)
	}
	gen := asMap(p["GenerateSecretString"])
	if gen["GenerateStringKey"] != config.KeyAuthTokenForOkta {
		t.Errorf("%s generates %v, want %s", id, gen["GenerateStringKey"], config.KeyAuthTokenForOkta)
	}
	if n := asInt(gen["PasswordLength"]); n < 32 {
		t.Errorf("%s: PasswordLength %d, want >= 32", id, n)
	}
	// What Secrets Manager stores: the template plus the generated key; the functions' parser must
	// read it, and only the SCIM key (and the optional Okta token) are left to fill in.
	var stored map[string]any
	if err := json.Unmarshal([]byte(asString(gen["SecretStringTemplate"])), &stored); err != nil {
		t.Fatalf("%s: SecretStringTemplate is not JSON: %v", id, err)
	}
	for _, k := range []string{config.KeyAWSSSOSCIMKey, config.KeyOktaAPIToken} {
		if _, ok := stored[k]; !ok {
			t.Errorf("%s: SecretStringTemplate lacks %s", id, k)
		}
	}
	stored[config.KeyAuthTokenForOkta] = "generated"
	raw, _ := json.Marshal(stored)
	var s config.Secrets
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("config.Secrets cannot read the created secret: %v", err)
	}
	if err := s.Require(config.KeyAuthTokenForOkta, config.KeyAWSSSOSCIMKey); err != nil {
		t.Errorf("created secret: %v", err)
	}
}

func TestTemplateOutputs(t *testing.T) {
	t.Parallel()
	tpl := mustTemplate(t)
	queueID := syncQueueID(t, tpl)
	dlqID, _, _ := isGetAtt(get(tpl.props(t, queueID), "RedrivePolicy", "deadLetterTargetArn"))
	tableID := tpl.refTo(t, tpl.functionEnv("SyncFunction")["STATE_TABLE"], "AWS::DynamoDB::Table")
	for _, name := range []string{"HookUrl", "ApiKeyId", "SecretArn", "QueueUrl", "DeadLetterQueueUrl", "StateTableName", "DashboardUrl"} {
		if get(tpl, "Outputs", name, "Value") == nil {
			t.Errorf("output %s missing", name)
		}
	}
	for name, want := range map[string]string{"QueueUrl": queueID, "DeadLetterQueueUrl": dlqID, "StateTableName": tableID} {
		if got, _ := isRef(get(tpl, "Outputs", name, "Value")); got != want {
			t.Errorf("output %s = %v, want Ref %s", name, get(tpl, "Outputs", name, "Value"), want)
		}
	}
}

func TestSamconfig(t *testing.T) {
	t.Parallel()
	tpl := mustTemplate(t)
	var cfg map[string]any
	if _, err := toml.DecodeFile(filepath.Join(mustRoot(t), "samconfig.toml"), &cfg); err != nil {
		t.Fatalf("samconfig.toml: %v", err)
	}
	if v := fmt.Sprint(cfg["version"]); v != "0.1" {
		t.Errorf("samconfig version = %v, want 0.1", v)
	}
	if get(cfg, "default", "global", "parameters", "stack_name") == "" || get(cfg, "default", "global", "parameters", "stack_name") == nil {
		t.Errorf("samconfig: no default stack_name")
	}
	deploy := asMap(get(cfg, "default", "deploy", "parameters"))
	caps := literalStrings(deploy["capabilities"])
	if len(caps) == 1 {
		caps = strings.Fields(caps[0])
	}
	if !slices.Contains(caps, "CAPABILITY_IAM") && !slices.Contains(caps, "CAPABILITY_NAMED_IAM") {
		t.Errorf("samconfig capabilities = %v; the template creates IAM roles", caps)
	}
	for _, typ := range []string{"AWS::IAM::Role", "AWS::IAM::ManagedPolicy"} {
		for _, id := range tpl.ofType(typ) {
			if (tpl.props(t, id)["RoleName"] != nil || tpl.props(t, id)["ManagedPolicyName"] != nil) && !slices.Contains(caps, "CAPABILITY_NAMED_IAM") {
				t.Errorf("%s is named: samconfig needs CAPABILITY_NAMED_IAM", id)
			}
		}
	}
	for _, k := range []string{"confirm_changeset", "resolve_s3"} {
		if deploy[k] != true {
			t.Errorf("samconfig deploy %s = %v, want true", k, deploy[k])
		}
	}
	for _, k := range []string{"cached", "parallel"} {
		if get(cfg, "default", "build", "parameters", k) != true {
			t.Errorf("samconfig build %s should be true", k)
		}
	}
}

// TestCfnLint runs cfn-lint, which `make test` also runs; here so `go test ./tests/` alone cannot
// pass with a template CloudFormation would reject.
func TestCfnLint(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("cfn-lint")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("cfn-lint not on PATH (pip install cfn-lint): %v", err)
		}
		t.Skip("cfn-lint not on PATH")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "template.yaml")
	cmd.Dir = mustRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cfn-lint template.yaml: %v\n%s", err, out)
	}
}

// ---- template access -----------------------------------------------------------------------

type cfnTemplate map[string]any

var loadTemplate = sync.OnceValues(func() (cfnTemplate, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(root, "template.yaml"))
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("parse template.yaml: %w", err)
	}
	v, err := cfnValue(&doc)
	if err != nil {
		return nil, fmt.Errorf("template.yaml: %w", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("template.yaml is not a mapping")
	}
	return m, nil
})

func mustTemplate(t testing.TB) cfnTemplate {
	t.Helper()
	tpl, err := loadTemplate()
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

func mustRoot(t testing.TB) string {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// cfnValue turns a YAML node into plain values. Short-form intrinsics (!Ref X, !Sub s, !GetAtt
// R.A, !If [...]) become their JSON form so that both spellings compare equal.
func cfnValue(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) != 1 {
			return nil, fmt.Errorf("line %d: want one document", n.Line)
		}
		return cfnValue(n.Content[0])
	case yaml.AliasNode:
		return cfnValue(n.Alias)
	}
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		name := strings.TrimPrefix(n.Tag, "!")
		key := "Fn::" + name
		if name == "Ref" || name == "Condition" {
			key = name
		}
		if n.Kind == yaml.ScalarNode {
			if name == "GetAtt" {
				res, attr, ok := strings.Cut(n.Value, ".")
				if !ok {
					return nil, fmt.Errorf("line %d: !GetAtt %q wants Resource.Attribute", n.Line, n.Value)
				}
				return map[string]any{key: []any{res, attr}}, nil
			}
			return map[string]any{key: n.Value}, nil
		}
		plain := *n
		plain.Tag = ""
		v, err := cfnValue(&plain)
		if err != nil {
			return nil, err
		}
		return map[string]any{key: v}, nil
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if k == "<<" {
				return nil, fmt.Errorf("line %d: YAML merge keys are not CloudFormation", n.Content[i].Line)
			}
			if _, dup := m[k]; dup {
				return nil, fmt.Errorf("line %d: duplicate key %q", n.Content[i].Line, k)
			}
			v, err := cfnValue(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[k] = v
		}
		return m, nil
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := cfnValue(c)
			if err != nil {
				return nil, err
			}
			s = append(s, v)
		}
		return s, nil
	default:
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
		return v, nil
	}
}

func (c cfnTemplate) resources() map[string]any { return asMap(c["Resources"]) }

func (c cfnTemplate) typeOf(id string) string { return asString(get(c.resources(), id, "Type")) }

func (c cfnTemplate) resource(t testing.TB, id string) map[string]any {
	t.Helper()
	r := asMap(c.resources()[id])
	if r == nil {
		t.Fatalf("template has no resource %s", id)
	}
	return r
}

func (c cfnTemplate) props(t testing.TB, id string) map[string]any {
	t.Helper()
	return asMap(c.resource(t, id)["Properties"])
}

func (c cfnTemplate) ofType(typ string) []string {
	var ids []string
	for id, r := range c.resources() {
		if get(r, "Type") == typ {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

func singleOfType(t testing.TB, c cfnTemplate, typ string) string {
	t.Helper()
	ids := c.ofType(typ)
	if len(ids) != 1 {
		t.Fatalf("want exactly one %s, have %v", typ, ids)
	}
	return ids[0]
}

// functionProp is a function's property as SAM sees it: its own value, else the Globals one.
func (c cfnTemplate) functionProp(id, name string) any {
	if v := get(c.resources(), id, "Properties", name); v != nil {
		return v
	}
	return get(c, "Globals", "Function", name)
}

// functionEnv merges Globals and function variables the way SAM does (the function wins).
func (c cfnTemplate) functionEnv(id string) map[string]any {
	env := map[string]any{}
	for _, src := range []any{
		get(c, "Globals", "Function", "Environment", "Variables"),
		get(c.resources(), id, "Properties", "Environment", "Variables"),
	} {
		for k, v := range asMap(src) {
			env[k] = v
		}
	}
	return env
}

func (c cfnTemplate) events(id string) map[string]any {
	return asMap(get(c.resources(), id, "Properties", "Events"))
}

// refTo checks that v is a Ref to a resource of type typ and returns its logical ID.
func (c cfnTemplate) refTo(t testing.TB, v any, typ string) string {
	t.Helper()
	id, ok := isRef(v)
	if !ok || c.typeOf(id) != typ {
		t.Fatalf("%v is not a Ref to an %s", v, typ)
	}
	return id
}

func syncQueueEvent(t testing.TB, c cfnTemplate) map[string]any {
	t.Helper()
	var found []map[string]any
	for _, ev := range c.events("SyncFunction") {
		if get(ev, "Type") == "SQS" {
			found = append(found, asMap(get(ev, "Properties")))
		}
	}
	if len(found) != 1 {
		t.Fatalf("SyncFunction has %d SQS events, want 1", len(found))
	}
	return found[0]
}

func syncQueueID(t testing.TB, c cfnTemplate) string {
	t.Helper()
	id, attr, ok := isGetAtt(syncQueueEvent(t, c)["Queue"])
	if !ok || attr != "Arn" || c.typeOf(id) != "AWS::SQS::Queue" {
		t.Fatalf("sync SQS event Queue = %v, want GetAtt <queue>.Arn", syncQueueEvent(t, c)["Queue"])
	}
	return id
}

func condOf(r map[string]any) string { return asString(r["Condition"]) }

func dimension(alarm map[string]any, name string) any {
	for _, d := range asSlice(alarm["Dimensions"]) {
		if get(d, "Name") == name {
			return get(d, "Value")
		}
	}
	return nil
}

// firesOnFirst reports whether an alarm goes off at a count of 1.
func firesOnFirst(p map[string]any) bool {
	th, err := strconv.ParseFloat(fmt.Sprint(p["Threshold"]), 64)
	if err != nil {
		return false
	}
	switch p["ComparisonOperator"] {
	case "GreaterThanThreshold":
		return th < 1
	case "GreaterThanOrEqualToThreshold":
		return th <= 1
	}
	return false
}

// ---- IAM -----------------------------------------------------------------------------------

type located struct {
	where string
	stmt  any
}

// policyStatements finds every policy statement under v (roles, managed policies, inline
// function policies, resource policies).
func policyStatements(v any, where string) []located {
	var out []located
	switch x := v.(type) {
	case map[string]any:
		if st, ok := x["Statement"]; ok {
			list := asSlice(st)
			if list == nil {
				list = []any{st}
			}
			for i, s := range list {
				out = append(out, located{fmt.Sprintf("%s.Statement[%d]", where, i), s})
			}
		}
		for _, k := range sortedKeys(x) {
			if k != "Statement" {
				out = append(out, policyStatements(x[k], where+"."+k)...)
			}
		}
	case []any:
		for i, e := range x {
			out = append(out, policyStatements(e, fmt.Sprintf("%s[%d]", where, i))...)
		}
	}
	return out
}

// literalStrings lists the strings v can take without knowing parameters: literals, Sub
// templates and both branches of an If.
func literalStrings(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, literalStrings(e)...)
		}
		return out
	case map[string]any:
		if s, ok := x["Fn::Sub"]; ok {
			if l := asSlice(s); l != nil {
				return literalStrings(l[0])
			}
			return literalStrings(s)
		}
		if l := asSlice(x["Fn::If"]); len(l) == 3 {
			return append(literalStrings(l[1]), literalStrings(l[2])...)
		}
		if l := asSlice(x["Fn::Join"]); len(l) == 2 {
			return []string{strings.Join(literalStrings(l[1]), asString(l[0]))}
		}
	}
	return nil
}

func grantsAction(stmt any, action string) bool {
	return slices.ContainsFunc(literalStrings(get(stmt, "Action")), func(p string) bool {
		return iamMatch(strings.ToLower(p), strings.ToLower(action))
	})
}

// allows reports whether resolved statements allow action on resource (IAM wildcards honoured).
func allows(stmts []any, action, resource string) bool {
	for _, s := range stmts {
		if get(s, "Effect") != "Allow" || !grantsAction(s, action) {
			continue
		}
		if slices.ContainsFunc(literalStrings(get(s, "Resource")), func(p string) bool { return iamMatch(p, resource) }) {
			return true
		}
	}
	return false
}

// iamMatch matches IAM's * and ? wildcards.
func iamMatch(pattern, s string) bool {
	re := regexp.QuoteMeta(pattern)
	re = strings.ReplaceAll(re, `\*`, `.*`)
	re = strings.ReplaceAll(re, `\?`, `.`)
	return regexp.MustCompile(`^` + re + `$`).MatchString(s)
}

// functionStatements resolves the statements of a function's role: inline policies and the
// managed policies of this template it attaches. A function without an explicit role would get
// SAM's generated one, whose SQS event policy covers every queue in the account.
func (s *stack) functionStatements(t testing.TB, id string) []any {
	t.Helper()
	roleID, attr, ok := isGetAtt(s.tpl.functionProp(id, "Role"))
	if !ok || attr != "Arn" || s.tpl.typeOf(roleID) != "AWS::IAM::Role" {
		t.Fatalf("%s: Role = %v, want GetAtt <AWS::IAM::Role>.Arn of this template", id, s.tpl.functionProp(id, "Role"))
	}
	role := s.tpl.props(t, roleID)
	var docs []any
	for _, p := range asSlice(role["Policies"]) {
		docs = append(docs, get(p, "PolicyDocument"))
	}
	for _, m := range asSlice(role["ManagedPolicyArns"]) {
		mid, ok := isRef(m)
		if !ok || s.tpl.typeOf(mid) != "AWS::IAM::ManagedPolicy" {
			t.Errorf("%s: role %s attaches %v; only this template's policies are scoped to its resources", id, roleID, m)
			continue
		}
		docs = append(docs, get(s.tpl.props(t, mid), "PolicyDocument"))
	}
	var stmts []any
	for _, d := range docs {
		for _, l := range policyStatements(s.resolve(t, d), "") {
			stmts = append(stmts, l.stmt)
		}
	}
	return stmts
}

// ---- resolver ------------------------------------------------------------------------------

// stack evaluates intrinsic functions for one set of parameter values, with made-up physical
// ids shaped like the real ones.
type stack struct {
	tpl    cfnTemplate
	params map[string]string
}

type noValue struct{}

func newStack(t testing.TB, tpl cfnTemplate, overrides map[string]string) *stack {
	t.Helper()
	params := map[string]string{}
	for name, p := range asMap(tpl["Parameters"]) {
		if d, ok := asMap(p)["Default"]; ok {
			params[name] = fmt.Sprint(d)
		}
	}
	for k, v := range overrides {
		if _, ok := asMap(tpl["Parameters"])[k]; !ok {
			t.Fatalf("template has no parameter %s", k)
		}
		params[k] = v
	}
	for name := range asMap(tpl["Parameters"]) {
		if _, ok := params[name]; !ok {
			t.Fatalf("parameter %s has no default and no test value", name)
		}
	}
	return &stack{tpl: tpl, params: params}
}

func fakeSecretARN(name string) string {
	return fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:%s-AbC123", fakeRegion, fakeAccount, name)
}

func (s *stack) envOf(t testing.TB, id string) func(string) string {
	t.Helper()
	env := map[string]string{}
	for k, v := range s.tpl.functionEnv(id) {
		env[k] = s.str(t, v)
	}
	return func(k string) string { return env[k] }
}

func (s *stack) str(t testing.TB, v any) string {
	t.Helper()
	r := s.resolve(t, v)
	switch r.(type) {
	case string, int, bool, float64:
		return fmt.Sprint(r)
	}
	t.Fatalf("%v resolves to %v, not a string", v, r)
	return ""
}

func (s *stack) resolve(t testing.TB, v any) any {
	t.Helper()
	r, err := s.eval(v)
	if err != nil {
		t.Fatalf("resolve %v: %v", v, err)
	}
	return r
}

func (s *stack) eval(v any) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 1 {
			for k, arg := range x {
				switch k {
				case "Ref":
					return s.ref(asString(arg))
				case "Fn::GetAtt":
					l := asSlice(arg)
					if len(l) != 2 {
						return nil, fmt.Errorf("bad GetAtt %v", arg)
					}
					return s.getAtt(asString(l[0]), asString(l[1]))
				case "Fn::Sub":
					return s.sub(arg)
				case "Fn::If":
					l := asSlice(arg)
					if len(l) != 3 {
						return nil, fmt.Errorf("bad If %v", arg)
					}
					ok, err := s.cond(map[string]any{"Condition": l[0]})
					if err != nil {
						return nil, err
					}
					if ok {
						return s.eval(l[1])
					}
					return s.eval(l[2])
				case "Fn::Join":
					l := asSlice(arg)
					if len(l) != 2 {
						return nil, fmt.Errorf("bad Join %v", arg)
					}
					parts, err := s.eval(l[1])
					if err != nil {
						return nil, err
					}
					var ss []string
					for _, p := range asSlice(parts) {
						ss = append(ss, fmt.Sprint(p))
					}
					return strings.Join(ss, asString(l[0])), nil
				}
			}
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			r, err := s.eval(e)
			if err != nil {
				return nil, err
			}
			if _, skip := r.(noValue); !skip {
				out[k] = r
			}
		}
		return out, nil
	case []any:
		out := make([]any, 0, len(x))
		for _, e := range x {
			r, err := s.eval(e)
			if err != nil {
				return nil, err
			}
			if _, skip := r.(noValue); !skip {
				out = append(out, r)
			}
		}
		return out, nil
	}
	return v, nil
}

func (s *stack) ref(name string) (any, error) {
	switch name {
	case "AWS::StackName":
		return fakeStackName, nil
	case "AWS::Region":
		return fakeRegion, nil
	case "AWS::AccountId":
		return fakeAccount, nil
	case "AWS::Partition":
		return "aws", nil
	case "AWS::URLSuffix":
		return "amazonaws.com", nil
	case "AWS::NoValue":
		return noValue{}, nil
	}
	if v, ok := s.params[name]; ok {
		return v, nil
	}
	if api, ok := strings.CutSuffix(name, ".Stage"); ok && s.tpl.typeOf(api) == "AWS::Serverless::Api" {
		return asString(get(s.tpl.resources(), api, "Properties", "StageName")), nil
	}
	r := asMap(s.tpl.resources()[name])
	if r == nil {
		return nil, fmt.Errorf("Ref to unknown %s", name)
	}
	p := asMap(r["Properties"])
	physical := fakeStackName + "-" + name + "-1A2B3C"
	for _, k := range []string{"FunctionName", "TableName", "QueueName", "LogGroupName", "Name"} {
		if p[k] != nil {
			v, err := s.eval(p[k])
			if err != nil {
				return nil, err
			}
			physical = fmt.Sprint(v)
			break
		}
	}
	switch asString(r["Type"]) {
	case "AWS::SQS::Queue":
		if p["FifoQueue"] == true && !strings.HasSuffix(physical, ".fifo") {
			physical += ".fifo"
		}
		return fmt.Sprintf("https://sqs.%s.amazonaws.com/%s/%s", fakeRegion, fakeAccount, physical), nil
	case "AWS::SecretsManager::Secret":
		return fakeSecretARN(physical), nil
	case "AWS::SNS::Topic":
		return fmt.Sprintf("arn:aws:sns:%s:%s:%s", fakeRegion, fakeAccount, physical), nil
	}
	return physical, nil
}

func (s *stack) getAtt(id, attr string) (any, error) {
	typ := s.tpl.typeOf(id)
	if typ == "" {
		return nil, fmt.Errorf("GetAtt of unknown %s", id)
	}
	refv, err := s.ref(id)
	if err != nil {
		return nil, err
	}
	physical := fmt.Sprint(refv)
	switch typ {
	case "AWS::SQS::Queue":
		physical = physical[strings.LastIndex(physical, "/")+1:]
		if attr == "QueueName" {
			return physical, nil
		}
	case "AWS::SecretsManager::Secret":
		return physical, nil
	}
	if attr != "Arn" {
		return physical + "." + attr, nil
	}
	service := strings.ToLower(strings.Split(typ, "::")[1])
	switch typ {
	case "AWS::DynamoDB::Table":
		physical = "table/" + physical
	case "AWS::Logs::LogGroup":
		physical = "log-group:" + physical + ":*"
	case "AWS::IAM::Role":
		physical = "role/" + physical
	case "AWS::Events::Rule":
		physical = "rule/" + physical
	}
	account := fakeAccount
	region := fakeRegion
	if service == "iam" {
		region = ""
	}
	return fmt.Sprintf("arn:aws:%s:%s:%s:%s", service, region, account, physical), nil
}

var subVar = regexp.MustCompile(`\$\{([^}]*)\}`)

func (s *stack) sub(arg any) (any, error) {
	tmpl, vars := arg, map[string]any{}
	if l := asSlice(arg); l != nil {
		if len(l) != 2 {
			return nil, fmt.Errorf("bad Sub %v", arg)
		}
		tmpl, vars = l[0], asMap(l[1])
	}
	var firstErr error
	out := subVar.ReplaceAllStringFunc(asString(tmpl), func(m string) string {
		name := m[2 : len(m)-1]
		if strings.HasPrefix(name, "!") {
			return "${" + name[1:] + "}"
		}
		var v any
		var err error
		switch {
		case vars[name] != nil:
			v, err = s.eval(vars[name])
		case strings.Contains(name, ".") && !strings.HasPrefix(name, "AWS::"):
			res, attr, _ := strings.Cut(name, ".")
			v, err = s.getAtt(res, attr)
		default:
			v, err = s.ref(name)
		}
		if err != nil && firstErr == nil {
			firstErr = err
		}
		return fmt.Sprint(v)
	})
	return out, firstErr
}

func (s *stack) condition(t testing.TB, name string) bool {
	t.Helper()
	if name == "" {
		return true
	}
	ok, err := s.cond(map[string]any{"Condition": name})
	if err != nil {
		t.Fatalf("condition %s: %v", name, err)
	}
	return ok
}

func (s *stack) cond(v any) (bool, error) {
	m := asMap(v)
	if len(m) != 1 {
		return false, fmt.Errorf("bad condition %v", v)
	}
	for k, arg := range m {
		l := asSlice(arg)
		switch k {
		case "Condition":
			expr, ok := asMap(s.tpl["Conditions"])[asString(arg)]
			if !ok {
				return false, fmt.Errorf("no condition %v", arg)
			}
			return s.cond(expr)
		case "Fn::Equals":
			if len(l) != 2 {
				return false, fmt.Errorf("bad Equals %v", arg)
			}
			a, err := s.eval(l[0])
			if err != nil {
				return false, err
			}
			b, err := s.eval(l[1])
			if err != nil {
				return false, err
			}
			return fmt.Sprint(a) == fmt.Sprint(b), nil
		case "Fn::Not":
			if len(l) != 1 {
				return false, fmt.Errorf("bad Not %v", arg)
			}
			r, err := s.cond(l[0])
			return !r, err
		case "Fn::And", "Fn::Or":
			all := k == "Fn::And"
			for _, c := range l {
				r, err := s.cond(c)
				if err != nil {
					return false, err
				}
				if r != all {
					return r, nil
				}
			}
			return all, nil
		}
		return false, fmt.Errorf("unsupported condition function %s", k)
	}
	return false, nil
}

// ---- plain value helpers -------------------------------------------------------------------

// get walks maps by key and slices by decimal index; nil when absent.
func get(v any, path ...string) any {
	for _, p := range path {
		switch x := v.(type) {
		case map[string]any:
			v = x[p]
		case cfnTemplate:
			v = x[p]
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i < 0 || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

func asMap(v any) map[string]any {
	switch x := v.(type) {
	case map[string]any:
		return x
	case cfnTemplate:
		return x
	}
	return nil
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

func asString(v any) string { s, _ := v.(string); return s }

func asInt(v any) int {
	switch x := v.(type) {
	case int:
		return x
	case int64:
		return int(x)
	case float64:
		return int(x)
	case string:
		n, _ := strconv.Atoi(x)
		return n
	}
	return 0
}

func isRef(v any) (string, bool) {
	m := asMap(v)
	if len(m) != 1 {
		return "", false
	}
	s, ok := m["Ref"].(string)
	return s, ok
}

func isGetAtt(v any) (res, attr string, ok bool) {
	m := asMap(v)
	if len(m) != 1 {
		return "", "", false
	}
	l := asSlice(m["Fn::GetAtt"])
	if len(l) != 2 {
		return "", "", false
	}
	return asString(l[0]), asString(l[1]), true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
