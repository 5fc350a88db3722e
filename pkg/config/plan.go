package config

import "strings"

// Plan is the configuration of cmd/plan: the reconciler's settings for a read-only run from an
// operator's machine. It is the reconcile function's configuration, found where an operator has
// it: flags, the environment (the function's variable names), and the deployed stack.
type Plan struct {
	SecretID, ScimURL, OktaOrgURL string
	// StateTable is the sync worker's ordering table, read (never written) so the plan leaves
	// changes a newer Okta event decided to the sync worker, as a run would; "" reads none.
	StateTable                     string
	Selection                      Selection
	MaxRemovals, Concurrency       int
	CreateGroups, AllowEmptyGroups bool
}

// NoStateTable as STATE_TABLE (-state-table none) makes a plan read no ordering marks, e.g. for
// credentials without DynamoDB access.
const NoStateTable = "none"

// stackSettings maps template.yaml's parameters and outputs to the reconcile function's
// variables they feed (ReconcileFunction's Environment, and the outputs SecretArn and
// StateTableName).
var stackSettings = map[string]string{
	"ScimUrl":              envScimURL,
	"OktaOrgUrl":           envOktaOrgURL,
	"GroupPrefix":          envGroupPrefix,
	"GroupRegex":           envGroupRegex,
	"MaxRemovals":          envMaxRemovals,
	"CreateGroups":         envCreateGroups,
	"ReconcileConcurrency": envConcurrency,
	"SecretArn":            envSecretID,
	"StateTableName":       envStateTable,
}

// StackEnv turns a stack's parameters and outputs (by key) into the variables of the reconcile
// function they set, for [LoadPlan].
func StackEnv(parameters, outputs map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range []map[string]string{parameters, outputs} {
		for k, v := range m {
			if name, ok := stackSettings[k]; ok && strings.TrimSpace(v) != "" {
				out[name] = v
			}
		}
	}
	return out
}

// LoadPlan reads the plan's configuration from layers of variables named as the reconcile
// function's (SECRET_ID, SCIM_URL, OKTA_ORG_URL, GROUP_PREFIX, GROUP_REGEX, MAX_REMOVALS,
// CREATE_GROUPS, ALLOW_EMPTY_GROUPS, RECONCILE_CONCURRENCY, STATE_TABLE), first layer first:
// typically the command's flags, the environment, then the stack ([StackEnv]). Each variable
// comes from the first layer that sets it, except the selection: GROUP_PREFIX and GROUP_REGEX
// come together from the first layer that sets either, so -prefix on the command line is not
// overridden by the stack's GroupRegex. Values are validated as the function's are.
func LoadPlan(layers ...func(string) string) (Plan, error) {
	sel := func(string) string { return "" }
	for _, l := range layers {
		if l(envGroupPrefix) != "" || l(envGroupRegex) != "" {
			sel = l
			break
		}
	}
	getenv := func(name string) string {
		if name == envGroupPrefix || name == envGroupRegex {
			return sel(name)
		}
		for _, l := range layers {
			if v := strings.TrimSpace(l(name)); v != "" {
				return v
			}
		}
		return ""
	}
	e := env{getenv: getenv}
	c := e.common()
	p := Plan{
		SecretID:         c.SecretID,
		Selection:        c.Selection,
		ScimURL:          e.url(envScimURL, true),
		OktaOrgURL:       e.url(envOktaOrgURL, true),
		StateTable:       e.str(envStateTable, ""),
		CreateGroups:     e.boolean(envCreateGroups, true),
		AllowEmptyGroups: e.boolean(envAllowEmptyGroups, false),
		MaxRemovals:      e.intRange(envMaxRemovals, DefaultMaxRemovals, 0, 1<<31),
		Concurrency:      e.intRange(envConcurrency, DefaultReconcileConcurrency, 1, maxReconcileConcurrency),
	}
	if strings.EqualFold(p.StateTable, NoStateTable) {
		p.StateTable = ""
	}
	return p, e.err()
}

// Layer returns m as a layer for [LoadPlan].
func Layer(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}
