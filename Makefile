# The two commands of the README:
#   make chat   installs everything on first use and opens the terminal chat (SQLite)
#   make test   installs everything on first use and runs the tests
# A question piped on stdin is answered and the chat exits:  echo 受給者証なくした | make chat

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: chat test install kb-check eval clean

# The install log goes to .venv/install.log; it is shown only when the install fails.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing nanbyo-bot into $(VENV) (first run only) ..." >&2
	@$(BIN)/python -m pip install --upgrade pip > $(VENV)/install.log 2>&1 || (cat $(VENV)/install.log; exit 1)
	@$(BIN)/python -m pip install -e ".[test]" >> $(VENV)/install.log 2>&1 || (cat $(VENV)/install.log; exit 1)
	@touch $(STAMP)

install: $(STAMP)

chat: $(STAMP)
	@$(BIN)/nanbyo-bot chat

test: $(STAMP)
	@$(BIN)/python -m pytest

kb-check: $(STAMP)
	@$(BIN)/nanbyo-bot kb check

eval: $(STAMP)
	@$(BIN)/nanbyo-bot eval ../shared/eval/questions.jsonl --spec ../shared/spec/topics.yaml

clean:
	rm -rf $(VENV) build *.egg-info
