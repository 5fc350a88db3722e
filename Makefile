# okta-aws-sso-sync. `make test` is the project's test command (CI runs it through .ci/run).
SHELL := /bin/bash
GO ?= go
FUNCTIONS := hook sync reconcile
BUILD_DIR ?= .build
GOARCH_LAMBDA ?= arm64
FUZZTIME ?= 5s
BENCHCOUNT ?= 6

.PHONY: all build test test-long lint vet staticcheck cfn-lint unit e2e bench fuzz fuzz-seeds demo invoke local tools clean \
	build-HookFunction build-SyncFunction build-ReconcileFunction okta-hook okta-hook-check plan gen

all: build

## build: the three Lambda bootstraps for the deployment architecture (provided.al2023, arm64)
build:
	@for fn in $(FUNCTIONS); do \
		echo "build $(BUILD_DIR)/$$fn/bootstrap"; \
		CGO_ENABLED=0 GOOS=linux GOARCH=$(GOARCH_LAMBDA) $(GO) build -trimpath -ldflags='-s -w' \
			-o $(BUILD_DIR)/$$fn/bootstrap ./functions/$$fn || exit 1; \
	done

# SAM's Makefile build method (template.yaml: Metadata.BuildMethod: makefile) calls these with
# ARTIFACTS_DIR set; one root go.mod serves all three functions.
build-HookFunction:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags='-s -w' -o $(ARTIFACTS_DIR)/bootstrap ./functions/hook
build-SyncFunction:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags='-s -w' -o $(ARTIFACTS_DIR)/bootstrap ./functions/sync
build-ReconcileFunction:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags='-s -w' -o $(ARTIFACTS_DIR)/bootstrap ./functions/reconcile

## tools: check that what the tests start is installed (moto_server, cfn-lint come with the machine's Python)
tools:
	@command -v moto_server >/dev/null || { echo "moto_server not found: pip install 'moto[server]'" >&2; exit 1; }
	@command -v cfn-lint >/dev/null || { echo "cfn-lint not found: pip install cfn-lint" >&2; exit 1; }
	@$(GO) mod download

## test: vet, staticcheck, cfn-lint, then every test (unit, fuzz seeds, end-to-end) with the race
## detector, except the long scenarios (tests named TestLong*, real time no setting shortens);
## test-long runs exactly those. CI (.ci/run) runs both. README, Development: which tests run where.
LONG_TESTS := ^TestLong
test: tools lint
	$(GO) test -race -count=1 -timeout 40m -skip '$(LONG_TESTS)' ./...

test-long: tools
	$(GO) test -race -count=1 -timeout 60m -run '$(LONG_TESTS)' -v ./...

lint: vet staticcheck cfn-lint
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }

vet:
	$(GO) vet ./...

staticcheck:
	$(GO) tool staticcheck ./...

cfn-lint:
	@if [ -f template.yaml ]; then cfn-lint template.yaml; else echo "no template.yaml yet"; fi

unit:
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v /tests)

e2e:
	$(GO) test -race -count=1 -timeout 40m -v ./tests/...

## gen: the generative end-to-end test (tests/generative_e2e_test.go) with a long budget: GEN_RUNS
## runs of GEN_OPS random Okta operations per token setting, seeds GEN_SEED, GEN_SEED+1, … (default
## a random GEN_SEED, printed). make test runs it with a small budget; a failure prints the command
## that replays exactly the failing run.
GEN_RUNS ?= 50
GEN_OPS ?= 60
gen: tools
	GEN_RUNS=$(GEN_RUNS) GEN_OPS=$(GEN_OPS) $(if $(GEN_SEED),GEN_SEED=$(GEN_SEED)) $(GO) test -race -count=1 -timeout 60m -run '^TestGenerative$$' ./tests/

## bench: every Go benchmark in one run, benchstat-friendly, into $(BUILD_DIR)/bench (see docs/BENCHMARKS.md).
## Micro benchmarks run BENCHCOUNT times for benchstat; the scenario benchmarks (bursts against the
## emulators with 20 ms latency, the 10k-user reconcile, cold starts) report deterministic request
## counts and take minutes each, so they run SCENARIOCOUNT times (default once).
SCENARIO_BENCH ?= SyncBurst|NaiveBurst|ResolveStrategy|Reconcile|HookColdStart|BigDeliveryEnqueue|FailurePaths
SCENARIOCOUNT ?= 1
bench:
	mkdir -p $(BUILD_DIR)/bench
	set -o pipefail; $(GO) test -run '^$$' -bench . -skip '$(SCENARIO_BENCH)' -benchmem -count $(BENCHCOUNT) ./... | tee $(BUILD_DIR)/bench/micro.txt
	set -o pipefail; $(GO) test -run '^$$' -bench '$(SCENARIO_BENCH)' -benchmem -count $(SCENARIOCOUNT) -timeout 60m ./... | tee $(BUILD_DIR)/bench/scenario.txt
	$(GO) tool benchstat $(BUILD_DIR)/bench/micro.txt | tee $(BUILD_DIR)/bench/benchstat.txt

## fuzz: run every fuzz target for FUZZTIME each (make fuzz FUZZTIME=10m for a long run)
fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
			echo "fuzz $$pkg $$f"; \
			dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
			before=$$(ls $$dir/testdata/fuzz/$$f 2>/dev/null | wc -l); \
			if ! $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 3s $$pkg; then \
				after=$$(ls $$dir/testdata/fuzz/$$f 2>/dev/null | wc -l); \
				if [ "$$after" -gt "$$before" ]; then echo "fuzz: $$f found a failing input in $$dir/testdata/fuzz/$$f" >&2; exit 1; fi; \
				echo "fuzz: $$f stopped without a failing input (go1.26 fuzzer 'context deadline exceeded' on loaded machines, golang/go#75804); continuing" >&2; \
			fi; \
		done; \
	done

## demo: no AWS account, no network: the events/ samples through the real hook, queue and sync, a
## reconcile, and a summary (moto_server, SCIM emulator, Okta fake on localhost). V=1 streams the logs.
demo:
	$(GO) run ./tests/cmd/devrun demo $(if $(V),-v)

## invoke: one function once on the local emulators, like sam local invoke (response on stdout, logs
## on stderr): make invoke FN=hook EVENT=events/hook-delivery-membership.json
invoke:
	@$(GO) run ./tests/cmd/devrun invoke -fn '$(FN)' -event '$(EVENT)'

## local: the hook over HTTP like sam local start-api, backed by the emulators (ADDR=127.0.0.1:3000)
local:
	$(GO) run ./tests/cmd/devrun local $(if $(ADDR),-addr '$(ADDR)') $(if $(V),-v)

## okta-hook: create or update the Okta event hook (idempotent; a second run changes nothing):
##   make okta-hook OKTA_ORG_URL=https://<org>.okta.com [STACK_NAME=okta-aws-sso-sync] [ROTATE=1]
## Subscribes exactly the event types the hook handles (oktahook.HandledEventTypes), URL from the
## stack output HookUrl, auth header from the stack's AuthHeader and auth_token_for_okta from the
## secret (output SecretArn), API key (output ApiKeyId) as x-api-key; then activates and verifies.
## Needs AWS credentials for the stack and OKTA_API_TOKEN (an admin token allowed to manage event
## hooks; else okta_api_token from the secret). No secret is typed or printed. ROTATE=1 sends
## auth_token_for_okta again after rotating it (Okta never returns it, so no run can see it changed).
## Without stack access: OKTA_HOOK_FLAGS='-url <HookUrl> -secret-id <SecretArn> -auth-header <AuthHeader>',
## the values from aws cloudformation describe-stacks --stack-name <stack> --query 'Stacks[0].Outputs'.
## okta-hook-check: change nothing, list what the hook lacks (missing or extra event types, wrong URL,
## wrong header name, not ACTIVE, not VERIFIED); exit 2 if it lacks anything.
STACK_NAME ?= okta-aws-sso-sync
OKTA_HOOK_FLAGS ?=
# The API key's value is read with the AWS CLI (the SDK's apigateway module is not in go.mod) into
# HOOK_API_KEY for the command only; set HOOK_API_KEY yourself to skip this.
define okta_hook_api_key
if [ -z "$$HOOK_API_KEY" ]; then \
	if command -v aws >/dev/null; then \
		key_id=$$(aws cloudformation describe-stacks --stack-name '$(STACK_NAME)' \
			--query "Stacks[0].Outputs[?OutputKey=='ApiKeyId'].OutputValue" --output text) || exit 1; \
		if [ -n "$$key_id" ] && [ "$$key_id" != None ]; then \
			HOOK_API_KEY=$$(aws apigateway get-api-key --include-value --api-key "$$key_id" --query value --output text) || exit 1; \
			export HOOK_API_KEY; \
		fi; \
	else echo "okta-hook: aws CLI not found; set HOOK_API_KEY if the stack requires an API key (EnableApiKey=true)" >&2; fi; \
fi
endef
# Built, not go run: go run turns the command's exit status 2 (the hook lacks something) into 1.
okta-hook:
	@$(GO) build -o $(BUILD_DIR)/okta-hook ./cmd/okta-hook
	@$(okta_hook_api_key); $(BUILD_DIR)/okta-hook -org '$(OKTA_ORG_URL)' -stack '$(STACK_NAME)' $(if $(ROTATE),-rotate) $(OKTA_HOOK_FLAGS)
okta-hook-check:
	@$(GO) build -o $(BUILD_DIR)/okta-hook ./cmd/okta-hook
	@$(okta_hook_api_key); $(BUILD_DIR)/okta-hook -check -org '$(OKTA_ORG_URL)' -stack '$(STACK_NAME)' $(OKTA_HOOK_FLAGS)

## plan: what the reconciler would change, changing nothing (docs/RECONCILE.md, "A plan from a laptop"):
##   make plan [STACK_NAME=okta-aws-sso-sync] [GROUPS=AWS_Admins,AWS_Dev] [PLAN_FLAGS='-json -max-removals 50']
## With the operator's AWS credentials (profile, SSO or environment): the stack's settings, the
## secret, the state table only read; the SCIM client and the ledger refuse every write. OFFLINE=1
## plans against in-process emulators seeded with a small drift world (no account needed).
## One row per group (adds, removes, renames, adoptions, blocked removals, identity conflicts), the
## orphans, the totals; exit 0 in sync, 2 drift, 1 error (a group not read, a -group not selected).
PLAN_FLAGS ?=
# Built, not go run: go run turns the exit status 2 (drift) into 1. make itself exits 2 when a
# recipe fails, whatever its status (GNU make manual, "How to Run make": "The exit status is two
# if make encounters any errors"), so scripts run $(BUILD_DIR)/plan for 0/1/2.
plan:
	@$(GO) build -o $(BUILD_DIR)/plan ./cmd/plan
	@$(BUILD_DIR)/plan $(if $(OFFLINE),-offline,-stack '$(STACK_NAME)') $(if $(GROUPS),-group '$(GROUPS)') $(PLAN_FLAGS)

clean:
	rm -rf $(BUILD_DIR)
