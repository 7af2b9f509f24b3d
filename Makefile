# The list of developer commands. CI and the README call these same targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help demo test bench check lint fmt typecheck contracts docs clean

help:            ## list the targets
	@grep -E '^[a-z]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "Warden needs Python 3.11 or newer; found $$($(PYTHON) --version)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=23"
	$(BIN)/python -m pip install --quiet -e '.[dev,bench,models,server,postgres,mcp,langchain,openai-agents,pydantic-ai]'
	touch $(STAMP)

demo: $(STAMP)   ## a support desk's ticket queue worked by an agent under Warden, on SQLite
	$(BIN)/warden demo

test: $(STAMP)   ## run the whole test suite
	$(BIN)/python -m pytest -n 2 -q

bench: $(STAMP)  ## benchmarks: prints ratios against the baselines, writes bench/results.json
	$(BIN)/python -m bench

lint: $(STAMP)   ## ruff lint and format check
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples

fmt: $(STAMP)    ## format the code
	$(BIN)/ruff format src tests bench examples
	$(BIN)/ruff check --fix src tests bench examples

typecheck: $(STAMP)  ## pyright strict on src/
	$(BIN)/pyright

contracts: $(STAMP)  ## import-linter layer contracts
	$(BIN)/lint-imports

docs: $(STAMP)   ## regenerate the generated docs (error pages, CLI reference)
	$(BIN)/python -m warden.cli.docgen docs

check: lint typecheck contracts test  ## everything CI checks

clean:
	rm -rf $(VENV) .warden build dist
