# The two commands a fresh machine needs: `make demo` and `make test`. Both install what they use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CDK := node_modules/.bin/cdk
# Node 20 prints an end-of-life banner on every jsii call; it is noise here, not a failure.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_VERSION_CHECK := 1

.PHONY: demo test unit synth bench clean fidelity-real

demo: .stamp-venv
	$(PY) -m demo

# A file's tests stay in one worker (--dist loadfile): module fixtures (a synth, the demo) run once per file.
test: .stamp-venv .stamp-node
	$(PY) -m pytest -n auto --dist loadfile --durations=10
	$(MAKE) synth

# `cdk synth` of the repository's default cdk.json, through the real CLI; then the organization app
# (org_app.py): the central archive and the StackSet rollout, with an example organization.
synth: .stamp-venv .stamp-node
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(CDK) synth --quiet --no-notices
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(CDK) synth --quiet --no-notices -a "python org_app.py" -o cdk.out.org \
		-c archive:organizationId=o-exampleorg1 -c 'archive:regions=["eu-west-1"]' -c rollout:centralAccount=111111111111 \
		-c 'rollout:regions=["eu-west-1"]' -c 'rollout:waves=[["ou-exam-11111111"]]'

# localaws's rules against a real sandbox account (credentials and region from the usual chain):
# tests/fidelity creates and deletes only what it names under /log-group-governor-fidelity/.
fidelity-real: .stamp-venv
	LOG_GROUP_GOVERNOR_FIDELITY=real $(PY) -m pytest tests/fidelity -v

bench: .stamp-venv
	$(PY) -m bench

.stamp-venv: requirements.txt requirements-dev.txt lambdas/ship_logs/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

.stamp-node: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

clean:
	rm -rf $(VENV) node_modules cdk.out cdk.out.org .cache .stamp-venv .stamp-node .pytest_cache .hypothesis
