# pricefeed — the two commands a newcomer needs: `make demo` and `make test`. Everything installs itself.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(abspath $(VENV)/bin)
STAMP := $(VENV)/.installed-$(shell cat requirements/dev-lock.txt pyproject.toml | sha1sum | cut -c1-12)
SAM_VENV := .venv-sam
SAM_STAMP := $(SAM_VENV)/.installed-$(shell sha1sum < requirements/sam.txt | cut -c1-12)
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(shell sha1sum < requirements/checkov.txt | cut -c1-12)
ASL_LINT := tools/asl-lint/node_modules/.bin/asl-validator
# Headless Chromium from Debian's packages: the report and the scripted login are checked in a real browser.
CHROMIUM ?= /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
DATE ?=
TICKERS ?= ticker_list/nse_tickers.csv

.PHONY: demo test lint unit integration e2e bench bench-ingest bench-aggregate bench-soak bench-scale bench-scale-large venv sam-venv checkov-venv chromium clean lock audit sbom

$(STAMP):
	rm -f $(VENV)/.installed-*
	test -x $(VENV)/bin/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements/dev-lock.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e .
	touch $@

venv: $(STAMP)

$(ASL_LINT): tools/asl-lint/package-lock.json | $(STAMP)
	cd tools/asl-lint && PATH="$(BIN):$$PATH" npm ci --no-audit --no-fund --loglevel=error
	touch $@

# A tool whose pins clash with the dev lock gets a virtualenv of its own: $(1) its stamp, $(2) the venv, $(3) the pins.
define pinned_venv
$(1): $(3)
	rm -f $(2)/.installed-*
	test -x $(2)/bin/python || $$(PY) -m venv $(2)
	$(2)/bin/python -m pip install -q --disable-pip-version-check -r $(3)
	touch $$@
endef
$(eval $(call pinned_venv,$(SAM_STAMP),$(SAM_VENV),requirements/sam.txt))
$(eval $(call pinned_venv,$(CHECKOV_STAMP),$(CHECKOV_VENV),requirements/checkov.txt))

sam-venv: $(SAM_STAMP)

checkov-venv: $(CHECKOV_STAMP)

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null
	test -x $@

chromium: $(CHROMIUM)

## make demo: the whole workflow for one trading day on the local stack + Fyers simulator; exports ./lake
demo: $(STAMP)
	$(BIN)/pricefeed local run $(if $(DATE),--date $(DATE)) --tickers $(TICKERS) --export lake

lint: $(STAMP) $(ASL_LINT) $(CHECKOV_STAMP)
	$(BIN)/ruff check src functions glue tests bench
	$(BIN)/cfn-lint template.yaml
	$(CHECKOV_VENV)/bin/checkov --config-file .checkov.yaml
	PATH="$(BIN):$$PATH" $(ASL_LINT) --json-path statemachine/ingest_pipeline.asl.json
	$(BIN)/zizmor --offline --min-severity medium --no-progress .github/workflows/

## make test: lint + the whole suite (unit, integration on emulated AWS, e2e, SAM validate/build)
test: lint $(SAM_STAMP) $(CHROMIUM)
	PRICEFEED_SAM=$(abspath $(SAM_VENV)/bin/sam) PRICEFEED_CHECKOV=$(abspath $(CHECKOV_VENV)/bin/checkov) \
	PRICEFEED_CHROMIUM=$(CHROMIUM) PATH="$(BIN):$$PATH" $(BIN)/pytest -q -p no:cacheprovider

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

e2e: $(STAMP)
	$(BIN)/pytest -q tests/e2e

## make bench-ingest: the real workflow against the simulator at real Fyers limits (≥ 300 tickers, ~2 min)
bench-ingest: $(STAMP)
	$(BIN)/python bench/bench_ingest.py

## make bench-aggregate: raw JSON -> 4 timeframes + ledger, ours vs an in-process DuckDB reference (BENCH_SCALE=0.05: quick)
bench-aggregate: $(STAMP)
	$(BIN)/python bench/bench_aggregate.py

## make bench-soak: 1,000 tickers x 5 days of backfill at real limits: 429s, lost symbol-days, memory (10-17 min)
bench-soak: $(STAMP)
	$(BIN)/python bench/bench_soak.py

## make bench-scale: a 20 x 60 symbol-day slice through the real workflow, AWS calls counted per step, modeled at
## the NSE universe since 2017 against every hard limit, plus per-day vs compacted queries (~5 min)
bench-scale: $(STAMP)
	$(BIN)/python bench/bench_scale.py

## make bench-scale-large: the same at 200 x 100 = 20,000 symbol-days, AWS's latency model injected on every call
## and every local limit enforced: the real run SUCCEEDS (~45-60 min on 2 cores)
bench-scale-large: $(STAMP)
	BENCH_SYMBOLS=200 BENCH_DAYS=100 BENCH_LATENCY=1 $(BIN)/python bench/bench_scale.py

bench: bench-ingest bench-aggregate bench-soak bench-scale

## make audit: known vulnerabilities (PyPI's advisory data) in every pinned dependency: the dev tools
## (requirements/dev-lock.txt), the Lambda layer (src/requirements.txt) and the Glue job's --additional-python-modules.
## Needs only PyPI's JSON API; fails on a vulnerability and on any package PyPI could not be asked about.
AUDIT_DIR := $(VENV)/audit
AUDIT_SUMMARY = import json, sys; deps = json.load(open(sys.argv[1]))["dependencies"]; \
	vulns = sorted({(d["name"], d["version"], v["id"], ", ".join(v["fix_versions"]) or "no fix yet") for d in deps for v in d.get("vulns", [])}); \
	skipped = sorted({d["name"] for d in deps if d.get("skip_reason")}); \
	audited = {(d["name"], d.get("version")) for d in deps if not d.get("skip_reason")}; \
	[print(f"VULNERABLE {n}=={ver}: {i} (fixed in {fix})") for n, ver, i, fix in vulns]; \
	print(f"pip-audit: {len(audited)} pinned packages audited, {len(vulns)} known vulnerabilities, {len(skipped)} not audited"); \
	skipped and print("NOT AUDITED (PyPI gave no answer for them): " + ", ".join(skipped)); \
	sys.exit(1 if vulns or skipped else 0)

audit: $(STAMP)
	@mkdir -p $(AUDIT_DIR) && rm -f $(AUDIT_DIR)/report.json
	sed -n 's/.*--additional-python-modules: "\([^"]*\)".*/\1/p' template.yaml | tr ',' '\n' > $(AUDIT_DIR)/glue-requirements.txt
	test -s $(AUDIT_DIR)/glue-requirements.txt
	-$(BIN)/pip-audit --vulnerability-service pypi --no-deps --disable-pip --progress-spinner off \
		--format json --output $(AUDIT_DIR)/report.json \
		-r requirements/dev-lock.txt -r src/requirements.txt -r $(AUDIT_DIR)/glue-requirements.txt
	@$(BIN)/python -c '$(AUDIT_SUMMARY)' $(AUDIT_DIR)/report.json

## make sbom: CycloneDX bills of materials of every pinned dependency set, in ./sbom (no network needed): the dev tools,
## the Lambda layer, the SAM CLI, checkov and the Glue job's --additional-python-modules; the workflow keeps them.
sbom: $(STAMP)
	@rm -rf sbom && mkdir -p sbom
	sed -n 's/.*--additional-python-modules: "\([^"]*\)".*/\1/p' template.yaml | tr ',' '\n' > sbom/glue-requirements.txt
	test -s sbom/glue-requirements.txt
	for part in dev:requirements/dev-lock.txt lambda-layer:src/requirements.txt sam-cli:requirements/sam.txt \
	            checkov:requirements/checkov.txt glue-job:sbom/glue-requirements.txt; do \
		$(BIN)/cyclonedx-py requirements --pyproject pyproject.toml --output-reproducible --of JSON \
			-o sbom/$${part%%:*}.cdx.json $${part#*:} 2>/dev/null || exit 1; \
	done
	rm sbom/glue-requirements.txt
	@ls sbom

lock: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^pricefeed' > requirements/dev-lock.txt

clean:
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) tools/asl-lint/node_modules .aws-sam lake sbom
