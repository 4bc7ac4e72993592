# datamill — one entry point for building, testing and running.
#
#   make check   what CI runs: lint, all tests on the embedded stack, the fuzz targets, then the
#                integration tests, the scaled-stack, chaos and schema-evolution tests again on
#                a real Apache Kafka broker when java and mvn are present, then make
#                compose-test in CI or where a Docker engine answers
#   make test    all tests on the embedded stack (kfake, srfake, throwaway PostgreSQL)
#   make test-security  the security tests alone: each denial and its audit trail
#   make fuzz    every fuzz target for FUZZTIME (30000 executions) each
#   make compose-test  docker-compose.yml for real: up, used, scaled, a loader crashed, down -v
#                (installs the Docker engine and Compose v2 when missing: root)
#   make dev     the whole pipeline on the embedded stack (go run ./cmd/datamill dev)
#   make bench-peers  datamill's bench, then a seed-style Python consumer on the same events
#                (not part of make check)

GO          ?= go
SERVICES    := extractor cleaner loader scorer ecometer lake
# Every module of go.work but tools; ./services/... alone matches nothing, as
# services/ itself is not a module.
MODULES     := schemas pkg $(foreach s,$(SERVICES),services/$(s)) cmd/datamill
PKGS        := $(foreach m,$(MODULES),./$(m)/...)
# Packages whose tests talk to Kafka through testkit.Kafka: they run a second
# time against the real broker.
INTEGRATION := ./pkg/stage/... ./pkg/kafka/...
# Tests of cmd/datamill whose whole stack (datamill dev) runs on the real
# broker too: dev uses KAFKA_BROKERS when it is set.
STACK_TESTS := TestScaledStagesSpreadTheWorkAndMatchOneOfEach|TestChaosLosesNothing|TestAnAddedFieldFlowsThroughWhileOldAndNewProducersRunSideBySide
TEST_FLAGS  ?= -count=1 -timeout 20m
# Every fuzz target, as package:target; make fuzz runs each for FUZZTIME
# (go test takes one -fuzz target per package at a time).
FUZZ        := ./pkg/ingest:FuzzScanCSV ./pkg/ingest:FuzzScanJSON ./pkg/ingest:FuzzScanNDJSON \
	./pkg/serde:FuzzDecode ./services/extractor/internal/source/httpingest:FuzzParseBody \
	./services/extractor/internal/source/httpapi:FuzzRecords \
	./pkg/rules:FuzzDate ./pkg/rules:FuzzCountry \
	./pkg/rules:FuzzEmail ./pkg/rules:FuzzMoney \
	./pkg/rules:FuzzApply ./schemas:FuzzParseDeclaration \
	./services/extractor/internal/source/scrape:FuzzFields \
	./pkg/rules:FuzzCleanText ./pkg/rules:FuzzCompanyKey ./pkg/rules:FuzzParseSalary \
	./pkg/rules:FuzzLocations ./pkg/rules:FuzzParseTitle ./pkg/rules:FuzzApplyJobs \
	./services/scorer:FuzzParseTextArray ./services/lake:FuzzParseAudit ./pkg/lake:FuzzOpen
# A count, not a duration: Go 1.26's fuzzing can fail a timed run at its
# deadline with a bare "context deadline exceeded" and no failing input
# (golang/go#75804, fixed in Go 1.27); a count has no deadline to race.
FUZZTIME    ?= 30000x
BIN         := bin
KAFKA_PORT  ?= 39092
MINIO_PORT  ?= 39900
MINIO_DIR   ?= $(CURDIR)/.cache/minio/run
# The tests that start a MinIO (testkit.MinIO), in their packages.
MINIO_TESTS := MinIO
MINIO_PKGS  := ./pkg/testkit/ ./services/lake/
# The CLI's own fuzz targets.
FUZZ        += ./cmd/datamill/internal/profile:FuzzProfile

.PHONY: all build test test-real test-security minio fuzz lint fmt generate bench bench-peers dev demo check clean compose-images compose-test

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ $(foreach s,$(SERVICES),./services/$(s)) ./cmd/datamill

test:
	$(GO) test $(TEST_FLAGS) $(PKGS)

# The integration suite against a real Apache Kafka broker (scripts/kafka),
# secure (SASL_SSL, SCRAM-SHA-512, ACLs): the tests get the admin's KAFKA_*
# variables and make each service's user and ACLs (testkit.Kafka), so that
# services run as themselves. The lake is on a real MinIO (scripts/minio:
# TLS, SSE-S3, the lake's users): the stack tests get the sink's S3_*
# variables (and DATAMILL_MINIO_DIR, whose reader.env holds the reader's),
# and the MinIO tests run again.
test-real:
	scripts/kafka/broker.sh fetch
	scripts/minio/minio.sh fetch >/dev/null
	trap 'scripts/kafka/broker.sh stop; scripts/minio/minio.sh stop --dir $(MINIO_DIR)' EXIT INT TERM; \
	rm -rf $(MINIO_DIR) && \
	scripts/minio/minio.sh start --dir $(MINIO_DIR) --port $(MINIO_PORT) >/dev/null && \
	scripts/minio/minio.sh provision --dir $(MINIO_DIR) && \
	set -a && . $(MINIO_DIR)/sink.env && set +a && export DATAMILL_MINIO_DIR=$(MINIO_DIR) && \
	kafka_env=$$(scripts/kafka/broker.sh start --secure --port $(KAFKA_PORT)) && \
	env $$kafka_env $(GO) test $(TEST_FLAGS) $(INTEGRATION) && \
	env $$kafka_env $(GO) test $(TEST_FLAGS) -run '^($(STACK_TESTS))$$' ./cmd/datamill/ && \
	CI=true $(GO) test $(TEST_FLAGS) -run '$(MINIO_TESTS)' $(MINIO_PKGS)

# The security test tier: each denial of issue 22 with its real error and
# where it is audited (README, "The security test tier"), as package:regexp.
# These tests run in make test (and TestSecurity in make test-real) as
# well; this target runs them alone, as the evidence. With java and mvn,
# TestSecurity runs again on Apache Kafka, as in test-real: on a secure
# broker it starts itself (DATAMILL_SECURE_REAL_KAFKA=true asks for it, no
# other broker is started), whose kafka-authorizer.log and broker.log it
# reads.
SECURITY_TESTS := \
	'./pkg/kafka:^(TestSecurity|TestACLs|TestREADMEHasTheACLs)$$' \
	'./pkg/pg:^(TestSecurityDenialsAreInThePostgresLog|TestRolesMayDoOnlyWhatTheirGrantsSay|TestBatchAuditIsAppendOnlyEvenForItsOwner|TestREADMEHasTheGrants)$$' \
	'./pkg/embedded:^(TestPostgresRefusesInsecureClients|TestPostgresAuditsDDLAndRoles|TestPostgresLogsNoRolePassword|TestPostgresSecretFiles)$$' \
	'./pkg/service:^(TestAPIAddressServesNoAdminEndpoints|TestServiceWithoutAPIListensOnAdminOnly|TestAPIServesTLSWhenGivenACertificate)$$' \
	'./pkg/telemetry:^TestPprofOnlyWhenAsked$$' \
	'./services/extractor:^(TestSecurityIngestDenialsAreLoggedAndCounted|TestIngestTakesEachProducer|TestIngestLimitsEachProducersRate|TestIngestBodiesAreCappedAndTimedOut|TestIngestAddressServesNoAdminEndpoints|TestOpenIngestOnlyOnLoopbackOrWhenAsked)$$'

test-security:
	@set -e; for t in $(SECURITY_TESTS); do \
		$(GO) test $(TEST_FLAGS) -v -run "$${t#*:}" $${t%%:*}; \
	done
	@if command -v java >/dev/null && command -v mvn >/dev/null; then \
		scripts/kafka/broker.sh fetch && \
		DATAMILL_SECURE_REAL_KAFKA=true $(GO) test $(TEST_FLAGS) -v -run '^TestSecurity$$/^apache-kafka$$' ./pkg/kafka/; \
	else \
		echo "java or mvn missing: TestSecurity did not run on Apache Kafka"; \
	fi

# MinIO and mc, built once with go install at the versions pinned in
# scripts/minio/minio.sh, into $${DATAMILL_CACHE:-~/.cache/datamill}/minio/.
# The MinIO tests run only once they are built (skipped otherwise, failed
# with CI=true).
minio:
	scripts/minio/minio.sh fetch

# A failing input is written to the package's testdata/fuzz/<target>/:
# commit it with the fix, and plain go test replays it from then on. An
# input is minimised for at most FUZZMINIMIZE executions: Go's default, a
# minute, stalled a run for that minute each time a target found a new
# interesting input, with no progress shown.
FUZZMINIMIZE ?= 2000x
fuzz:
	@set -e; for t in $(FUZZ); do \
		echo "fuzz $${t#*:} ($${t%%:*}) for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$${t#*:}\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE) $${t%%:*}; \
	done

# gosec, pinned with its checksums in tools/gosec/go.mod: a module of its
# own, outside go.work, as its dependencies would raise the versions the
# workspace builds with (gonum, yaml/v4, lib/pq…). Built into .cache once.
GOSEC       := $(CURDIR)/.cache/bin/gosec

$(GOSEC): tools/gosec/go.mod tools/gosec/go.sum
	cd tools/gosec && GOWORK=off $(GO) build -o $(GOSEC) github.com/securego/gosec/v2/cmd/gosec

# gosec fails on any finding, test files aside; a finding that is no bug is
# justified where it is, with `// #nosec Gxxx -- why`. go mod verify checks
# each module's downloaded dependencies against go.sum, from the module
# cache: it needs no network.
lint: $(GOSEC)
	$(GO) vet -tags compose $(PKGS)
	$(GO) tool staticcheck -tags compose $(PKGS)
	@out=$$($(GO) tool gofumpt -l schemas pkg services cmd); \
		if [ -n "$$out" ]; then echo "not gofumpt-formatted (run make fmt):"; echo "$$out"; exit 1; fi
	@set -e; for m in $(MODULES); do echo "gosec $$m"; (cd $$m && $(GOSEC) -quiet -tags compose ./...); done
	@set -e; for m in $(MODULES) tools tools/gosec; do \
		echo "go mod verify $$m"; (cd $$m && GOWORK=off $(GO) mod verify); done

fmt:
	$(GO) tool gofumpt -w schemas pkg services cmd

generate:
	cd schemas && $(GO) generate ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

# bench-peers: `datamill bench` on PEERS_EVENTS generated users (PEERS_DIRTY of
# them dirty), then, on the same events of the same run, each of PEERS: the
# seed-style Python consumer of bench/peers (kafka-python, per-record
# cleaning, SQLAlchemy upserts, scikit-learn from a joblib file) in its venv
# (scripts/python/peers.sh: PyPI, pinned, made once in .cache/peers), and
# Benthos v4.27.0 (bench/peers/benthos, built once into .cache/benthos with
# GOWORK=off); prints each beside datamill, and the ratios. Not part of make
# check.
PEERS_EVENTS ?= 300000
PEERS_DIRTY  ?= 0.1
PEERS        ?= python,benthos
bench-peers:
	@python=$$(scripts/python/peers.sh) && \
		$(GO) run ./cmd/datamill bench --events $(PEERS_EVENTS) --dirty $(PEERS_DIRTY) --peer $(PEERS) --peer-python "$$python"

dev:
	$(GO) run ./cmd/datamill dev

demo:
	$(GO) run ./cmd/datamill demo

# check is what .ci/run runs.
check: lint test fuzz
	@tiers="embedded (kfake, srfake, PostgreSQL $$(ls -d /usr/lib/postgresql/*/ 2>/dev/null | xargs -n1 basename | sort -n | tail -1))"; \
	if command -v java >/dev/null && command -v mvn >/dev/null; then \
		$(MAKE) --no-print-directory test-real || exit 1; \
		tiers="$$tiers, real Apache Kafka broker ($$(scripts/kafka/broker.sh version))"; \
	else \
		echo "java or mvn missing: the real-broker tier did not run"; \
	fi; \
	if [ -n "$$CI" ] || docker info >/dev/null 2>&1; then \
		$(MAKE) --no-print-directory compose-test || exit 1; \
		tiers="$$tiers, docker compose ($$(docker compose version --short), engine $$(docker version --format '{{.Server.Version}}'))"; \
	else \
		echo "no Docker engine answers: the compose tier did not run (make compose-test, as root, installs one)"; \
	fi; \
	echo "test tiers that ran: $$tiers"

# compose-images: the Docker engine and Compose v2 when missing
# (scripts/compose/engine.sh), the stand-in images of deploy/ci
# (scripts/compose/images.sh) and the stack's own images (docker compose
# build), under one lock, so that .ci/run can make them in the background
# while the other tests run and compose-test then waits for them. --close:
# the lock stays flock's own, not inherited by the dockerd engine.sh starts
# (which would hold it for as long as it runs).
compose-images:
	@mkdir -p $(HOME)/.cache/datamill
	flock --close $(HOME)/.cache/datamill/compose-images.lock sh -c '\
		scripts/compose/engine.sh && scripts/compose/images.sh && \
		COMPOSE_PROFILES= docker compose --file docker-compose.yml --file deploy/ci/compose.ci.yml --env-file /dev/null build --quiet'

# compose-test: TestComposeUp (cmd/datamill/composeup_test.go) on the
# images of compose-images.
compose-test: compose-images
	$(GO) test -tags compose -run '^TestComposeUp$$' -count=1 -timeout 20m -v ./cmd/datamill

clean:
	rm -rf $(BIN) .dev
