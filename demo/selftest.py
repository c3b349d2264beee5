"""Act 7 of `make demo`: after a deploy, `python -m cli selftest --stack-name LogGroupGovernor` proves the
path (#17): the governor deployed in the local account as `cdk deploy` leaves it (localaws.deployment),
the self-test passing, then failing on a trail someone stopped, with the step and the fix."""

from __future__ import annotations

from typing import Any, TextIO

from cli.selftest import SelfTest
from localaws.account import LocalAccount
from localaws.deployment import deploy_governor
from localaws.lambda_runtime import SimulatedClock
from stacks.settings import DeploymentSettings

STACK = "LogGroupGovernor"


#: A region of the account the earlier acts left untouched (their account policy would ship the canary too).
REGION = "eu-central-1"


def selftest_act(home: LocalAccount, context: dict[str, Any], out: TextIO) -> None:
    print(f"\n7. After every deploy: python -m cli selftest --stack-name {STACK} (in {REGION}: a canary log group through the real handlers)\n")
    account = LocalAccount(REGION, home.calls)
    account.gaps = home.gaps
    shipper = account.create_function(context["governor:destinationArn"].rsplit(":", 1)[-1])
    settings = DeploymentSettings.from_context({**context, "governor:destinationArn": shipper})
    deployment = deploy_governor(account, stack_name=STACK, config=settings.policy.to_json_dict(), alarm_email="oncall@example.com")
    deployment.confirm_alarm_email()
    with deployment.running():
        _report(account, "the deployment as cdk deploy leaves it")
        deployment.stop_trail()
        _report(account, "someone stopped the trail (aws cloudtrail stop-logging)")
    out.write(deployment.output.getvalue())


def _report(account: LocalAccount, what: str) -> None:
    # The CLI's code with a simulated clock: the waits of a failing run pass in no time.
    clock = SimulatedClock()
    report = SelfTest(account.client, stack_name=STACK, region=account.region, clock=clock.monotonic, sleep=clock.sleep).run()
    print(f"   {what}: exit {0 if report.passed else 1}")
    print("\n".join(f"     {line}" for line in report.text().splitlines()))
