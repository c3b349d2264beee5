"""`log-group-governor plan|apply|remove-filters|migrate|status|fleet-status|retention-policies|rules|selftest|redrive`:
a one-off backfill from a laptop, with the stack's configuration; the latest coverage of an account and region; the
native retention policies the configuration compiles to; the governance rules the configuration amounts to; the
self-test of a deployed governor; the replay of ship-logs' dead-letter queue.

It reads cdk.json (and ``-c`` overrides) exactly as `cdk synth` does, runs the same policy core as the
functions against whatever account your credentials reach (or a moto server via ``--endpoint-url``),
shows progress with an ETA from the API quotas, and ends with a summary: "3 to change, 120 unchanged" and
a table of the changes (``--json``: every decision, then the summary, as JSON lines; ``--out-file FILE``
writes every decision as JSON lines or CSV). With ``--checkpoint FILE`` an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import argparse
import csv
import difflib
import io
import json
import os
import re
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

REPO = Path(__file__).resolve().parent.parent
# The console script runs from anywhere: the repository's packages, and the Lambda code under lambdas/.
sys.path[:0] = [p for p in (str(REPO), str(REPO / "lambdas")) if p not in sys.path]

import boto3  # noqa: E402
import botocore.session  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.exceptions import NoRegionError  # noqa: E402

from governor.aws import DestinationUnavailable, KmsGateway, LambdaGateway, LogsGateway, Pacer, S3RunStore, client_config  # noqa: E402
from ship_logs.aws import LambdaInvoker, QueueGateway  # noqa: E402
from governor import coverage, savings, storage_cost  # noqa: E402
from governor.backfill import Backfill, BackfillRequest, BadRequest, Progress, start_or_resume  # noqa: E402
from governor.config import CONTEXT_PREFIX, ConfigError, Via  # noqa: E402
from governor.controls import PLUGGED, WRITE_ACTIONS  # noqa: E402
from governor.controls.kms_key import CREATE_KEY, NAME as KMS_KEY  # noqa: E402  (the keys the stack creates: its RuleKeyArns)
from governor.policy import Action, Policy  # noqa: E402
from governor.subscription_policy import SubscriptionPolicyKeeper  # noqa: E402
from governor.runtime import GuardedPolicies, Settings  # noqa: E402
from governor.service import Governor, Outcome  # noqa: E402
from ship_logs.redrive import redrive  # noqa: E402
from shared.config import override_key  # noqa: E402
from stacks.org_settings import ARCHIVE, ROLLOUT  # noqa: E402
from stacks.settings import GOVERNOR, DeploymentSettings  # noqa: E402
from cli import __version__, history, native, rules, selftest  # noqa: E402
from cli.errors import CliError, Exit, explain  # noqa: E402
from fleet import rollup  # noqa: E402
from fleet.store import FleetTable  # noqa: E402

CSV_COLUMNS = ("logGroup", "aspect", "action", "reason", "detail", "applied")
PROGRESS_REDRAW_S = 0.25
PROG = "log-group-governor"
#: The first call (STS GetCallerIdentity, under a second on AWS) is tried twice with a short read timeout: an endpoint
#: that never answers fails within about ten seconds, not a minute.
PREFLIGHT_ATTEMPTS = 2
PREFLIGHT_READ_TIMEOUT_S = 4
EXIT_CODES_HELP = ("exit codes: 0 done; 1 done, some log groups had errors (or a check failed); 2 bad input; "
                   "3 AWS credentials or access; 4 not found (stack, bucket, queue...); 5 AWS endpoint unreachable; "
                   f"{Exit.CHANGES_PENDING:d} plan --detailed-exitcode: changes pending; 130 interrupted")



#: How many kinds of change the human summary lists (largest first) before "... and N more".
SUMMARY_ROWS = 10
#: How many retention changes the human summary lists, the largest groups first (--json: governor.savings.LARGEST_KEPT).
SAVINGS_ROWS = 5


class Parser(argparse.ArgumentParser):
    """argparse's parser, whose usage errors name the nearest command or option ("did you mean --region?")."""

    def error(self, message: str) -> NoReturn:
        choice = re.match(r"argument .*: invalid choice: '([^']*)' \(choose from (.*)\)$", message)
        if choice:
            message += _did_you_mean(choice[1], re.findall(r"'([^']*)'", choice[2]))
        super().error(message)


def _did_you_mean(word: str, known: Sequence[str]) -> str:
    near = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    return f" (did you mean {near[0]}?)" if near else ""


def _unrecognized(parser: argparse.ArgumentParser, extra: Sequence[str]) -> NoReturn:
    """argparse's "unrecognized arguments", with the nearest option of the command for each mistyped flag."""
    hints = []
    options = [o for action in parser._actions for o in action.option_strings if o.startswith("--")]
    for word in extra:
        flag = word.split("=", 1)[0]
        if flag.startswith("-"):
            near = difflib.get_close_matches(flag if flag.startswith("--") else f"-{flag}", options, n=1, cutoff=0.6)
            hints += [f"{flag}: did you mean {near[0]}?"] if near else []
    parser.error(f"unrecognized arguments: {' '.join(extra)}" + (f" ({'; '.join(hints)})" if hints else ""))


def add_member_arguments(command: argparse.ArgumentParser) -> None:
    """A member's configuration under the organization app's rollout:overrides (#30 item 8)."""
    command.add_argument("--member", metavar="ACCOUNT", help="the configuration a member account gets from rollout:overrides: its OU's "
                                                         "overrides (--ou), then its account's, over the governor: keys")
    command.add_argument("--ou", metavar="OU", help="the OU (listed in rollout:waves) the member was deployed through")



def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    aws = argparse.ArgumentParser(add_help=False)
    aws.add_argument("--profile", help="AWS profile (default: the usual credential chain)")
    aws.add_argument("--region", help="AWS region (default: the profile's or AWS_REGION)")
    aws.add_argument("--endpoint-url", help="send AWS calls here instead (e.g. a moto server)")
    aws.add_argument("--json", action="store_true", help="print the result (or the error) as one JSON document on standard output")
    aws.add_argument("--debug", action="store_true", help="print the traceback of a failure, not only its one line")
    parser = Parser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=EXIT_CODES_HELP)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="mode", required=True, parser_class=Parser,
                                     metavar="{plan,apply,remove-filters,migrate,status,fleet-status,retention-policies,rules,selftest,redrive}")
    for mode, summary in (("plan", "change nothing; report what apply would do"), ("apply", "bring every log group into line"),
                          ("remove-filters", "remove the governor's own filters (by name) from every log group, before an uninstall"),
                          ("migrate", "switch subscriptionMode, resumably: the new mode's full run, then the old mode's filters "
                                      "(or account policy) removed, only the governor's, by name")):
        command = commands.add_parser(mode, parents=[aws], help=summary, description=summary, epilog=EXIT_CODES_HELP)
        if mode == "plan":
            command.add_argument("--explain", metavar="LOG_GROUP", help="look this one group up and say which rule decided each "
                                 "control, why each rule before it did not, and what apply would do (no run)")
            command.add_argument("--detailed-exitcode", action="store_true",
                                 help=f"exit {Exit.CHANGES_PENDING:d} when apply would change something, 0 when nothing (for CI gates)")
        if mode == "apply":
            command.add_argument("--allow-shortening", action="store_true",
                                 help="retentionVia account-policy: write native retention policies even where they shorten a group's retention")
        if mode in ("plan", "apply"):
            command.add_argument("--replay-hours", type=float, metavar="N",
                                 help="send what the groups the run leaves subscribed held in the last N hours, before the governor's "
                                      "filter, to the destination, once (plan: count the events and bytes); apply needs --stack-name")
        if mode == "migrate":
            command.add_argument("--to", required=True, choices=[v.value for v in Via], help="the subscriptionMode to switch to")
        command.add_argument("--context", type=Path, default=REPO / "cdk.json", help="cdk.json to read the configuration from (default: the repository's)")
        command.add_argument("-c", "--config", action="append", default=[], metavar="KEY=VALUE",
                             help="override a configuration key, as `cdk deploy -c` does (the governor: prefix is optional)")
        command.add_argument("--stack-name", help="the deployed stack: its DestinationArn and DestinationRoleArn outputs fill in "
                                                  "the destination (the built-in one's ARN is known only once deployed)")
        add_member_arguments(command)
        command.add_argument("--prefix", default="", help="only log groups whose names start with this")
        command.add_argument("--out-file", type=Path, metavar="FILE",
                             help="write every decision here, as JSON lines or CSV (--format); standard output then shows only the summary")
        command.add_argument("--output", type=Path, dest="output_deprecated", help=argparse.SUPPRESS)  # the old name of --out-file
        command.add_argument("--format", choices=["jsonl", "csv"], help="the format of --out-file (default: jsonl)")
        command.add_argument("--checkpoint", type=Path, help="save progress here after every page; an existing unfinished checkpoint "
                                                             "is resumed (only against the account, region and destination it was written for)")
        command.add_argument("--no-count", action="store_true", help="skip the first pass that counts log groups (no ETA then)")
        command.add_argument("--quota-scale", type=float, default=1.0,
                             help="multiply the configured API quotas (governor:apiQuotasTps), e.g. for a scaled test server")
        command.add_argument("--progress", choices=["auto", "always", "never"], default="auto",
                             help="the progress line on standard error (default auto: only on a terminal)")
        command.add_argument("--no-progress", dest="progress", action="store_const", const="never", help="the same as --progress never")
    status_help = "print the latest coverage of an account and region (from the last finished full run)"
    command = commands.add_parser("status", parents=[aws], help=status_help, description=status_help, epilog=EXIT_CODES_HELP)
    where = command.add_mutually_exclusive_group(required=True)
    where.add_argument("--stack-name", help="the deployed stack (its ReportsBucket output is read)")
    where.add_argument("--bucket", help="the ReportsBucket output")
    native_help = ("the native account-level retention policies the configuration compiles to, or why it cannot; "
                   "with --dry-run, what each would do to the account's groups (nothing is written)")
    command = commands.add_parser("retention-policies", parents=[aws], help=native_help, description=native_help, epilog=EXIT_CODES_HELP)
    command.add_argument("--context", type=Path, default=REPO / "cdk.json", help="cdk.json to read the configuration from (default: the repository's)")
    command.add_argument("-c", "--config", action="append", default=[], metavar="KEY=VALUE", help="override a configuration key")
    command.add_argument("--dry-run", action="store_true", help="ask the account (PutAccountPolicy with dryRun) how many groups each policy would shorten")
    rules_help = ("print the governance rules the configuration amounts to: governor:rules, then the flat keys as the rules "
                  "they compile into, and the scope (exclusions) before them; no AWS call")
    command = commands.add_parser("rules", parents=[aws], help=rules_help, description=rules_help, epilog=EXIT_CODES_HELP)
    command.add_argument("--context", type=Path, default=REPO / "cdk.json", help="cdk.json to read the configuration from (default: the repository's)")
    command.add_argument("-c", "--config", action="append", default=[], metavar="KEY=VALUE", help="override a configuration key")
    add_member_arguments(command)
    fleet_help = "print each member governor's latest coverage and alarms, per account and region, and who stopped reporting (central account)"
    command = commands.add_parser("fleet-status", parents=[aws], help=fleet_help, description=fleet_help, epilog=EXIT_CODES_HELP)
    where = command.add_mutually_exclusive_group(required=True)
    where.add_argument("--stack-name", help="the archive stack of a region (its FleetTableName output is read)")
    where.add_argument("--table", help="the FleetTableName output")
    command.add_argument("--stale-hours", type=float, default=60.0, help="flag a member silent after this long without a report (default 60)")
    command.add_argument("--forget", metavar="ACCOUNT/REGION", help="remove a member's rows (it left, or was reported by mistake) and exit")
    selftest_help = ("after a deploy: prove the governor works here (trail, alarm topic, a canary log group subscribed and retained, "
                     "a line delivered), say which step failed and what to fix; the canary is deleted at the end")
    command = commands.add_parser("selftest", parents=[aws], help=selftest_help, description=selftest.__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    command.add_argument("--stack-name", required=True, help="the deployed governor stack (LogGroupGovernor, or a member's StackSet instance)")
    command.add_argument("--timeout", type=float, default=selftest.DEFAULT_TIMEOUT_S,
                         help=f"seconds to wait for each of the governor's actions and for delivery (default {selftest.DEFAULT_TIMEOUT_S:.0f})")
    redrive_help = "replay ship-logs' dead-letter queue to the function (the stack outputs name both)"
    command = commands.add_parser("redrive", parents=[aws], help=redrive_help, description=redrive_help, epilog=EXIT_CODES_HELP)
    command.add_argument("--stack-name", help="the deployed stack: its ShipLogsDeadLetterQueueUrl and ShipLogsFunctionName outputs")
    command.add_argument("--queue-url", help="the ShipLogsDeadLetterQueueUrl output (instead of --stack-name)")
    command.add_argument("--function-name", help="the ShipLogsFunctionName output (instead of --stack-name)")
    args, extra = parser.parse_known_args(argv)
    if extra:
        _unrecognized(commands.choices[args.mode], extra)
    if getattr(args, "output_deprecated", None) is not None:
        if args.out_file is not None:
            commands.choices[args.mode].error("--output is the old name of --out-file: pass only --out-file")
        args.out_file, args.deprecations = args.output_deprecated, ["--output FILE is deprecated (in the AWS CLI --output is a format); "
                                                                    "pass --out-file FILE; --output goes in the next release"]
    if getattr(args, "json", False) and getattr(args, "format", None) == "csv" and getattr(args, "out_file", None) is None:
        commands.choices[args.mode].error("--format csv needs --out-file FILE (with --json, standard output carries JSON lines)")
    return args


def redrive_command(args: argparse.Namespace, session: boto3.Session, stdout: TextIO, stderr: TextIO) -> int:
    queue_url = _named(args, session, args.queue_url, "ShipLogsDeadLetterQueueUrl", "--queue-url")
    function_name = _named(args, session, args.function_name, "ShipLogsFunctionName", "--function-name")
    sqs = session.client("sqs", endpoint_url=args.endpoint_url, config=client_config())
    invoker = LambdaInvoker(function_name, session.client("lambda", endpoint_url=args.endpoint_url, config=client_config()))
    result = redrive(QueueGateway(queue_url, sqs), invoker)
    report = {"replayed": result.replayed, "failed": result.failed, "leftCorrupt": result.left_corrupt, "leftForNextRedrive": result.left_new}
    code = Exit.WORK_ERRORS if result.failed else Exit.OK
    print(json.dumps({**report, "exitCode": int(code)} if args.json else report, indent=2), file=stdout if args.json else stderr)
    return code


def stack_outputs(args: argparse.Namespace, session: boto3.Session) -> dict[str, str]:
    """The deployed stack's outputs (--stack-name), by key; read once per command."""
    cached = getattr(args, "_outputs", None)
    if cached is None:
        cloudformation = session.client("cloudformation", endpoint_url=args.endpoint_url, config=client_config())
        outputs = cloudformation.describe_stacks(StackName=args.stack_name)["Stacks"][0].get("Outputs", [])
        cached = args._outputs = {o["OutputKey"]: o["OutputValue"] for o in outputs}
    return cached


def _named(args: argparse.Namespace, session: boto3.Session, given: str | None, output_key: str, flag: str) -> str:
    """``given``, or the deployed stack's output ``output_key`` (--stack-name)."""
    if given:
        return given
    if not args.stack_name:
        raise CliError(Exit.BAD_INPUT, f"{args.mode} needs {flag} or --stack-name", f"pass --stack-name <the deployed stack>, or {flag}")
    found = stack_outputs(args, session).get(output_key)
    if not found:
        raise CliError(Exit.NOT_FOUND, f"stack {args.stack_name} has no {output_key} output",
                       f"deploy this version of the stack (or the stack that has it), or pass {flag}")
    return found


def destination_from_stack(args: argparse.Namespace, session: boto3.Session) -> list[str]:
    """-c overrides for the destination the deployed stack names (its DestinationArn / DestinationRoleArn outputs)."""
    if not getattr(args, "stack_name", None):
        return []
    outputs = stack_outputs(args, session)
    found = [f"destinationArn={outputs['DestinationArn']}"] if outputs.get("DestinationArn") else []
    if outputs.get("DestinationRoleArn") not in (None, "", "-"):
        found.append(f"destinationRoleArn={outputs['DestinationRoleArn']}")
    return found


COVERAGE_KEY = "coverage/latest.json"


def rule_keys_from_stack(args: argparse.Namespace, session: boto3.Session) -> list[str]:
    """A -c override of governor:rules whose ``"kmsKeyArn": "create"`` carry the keys the deployed stack created (its
    RuleKeyArns output); nothing when no rule asks the stack for a key."""
    try:
        rules = json.loads(args.context.read_text())["context"].get(f"{CONTEXT_PREFIX}rules") or []
    except (OSError, ValueError, KeyError, AttributeError):
        return []  # load_settings says what is wrong with the file
    wanted = [i for i, rule in enumerate(rules) if isinstance(rule, dict) and rule.get(KMS_KEY) == CREATE_KEY]
    if not wanted or not getattr(args, "stack_name", None):
        return []
    created = json.loads(stack_outputs(args, session).get("RuleKeyArns") or "{}")
    for index in wanted:
        if str(index) in created:
            rules[index] = {**rules[index], KMS_KEY: created[str(index)]}
    return [f"rules={json.dumps(rules)}"]


def status_command(args: argparse.Namespace, session: boto3.Session, stdout: TextIO, stderr: TextIO) -> int:
    bucket = _named(args, session, args.bucket, "ReportsBucket", "--bucket")
    store = S3RunStore(bucket, session.client("s3", endpoint_url=args.endpoint_url, config=client_config()))
    latest = store.load_json(COVERAGE_KEY)
    if latest is None:
        raise CliError(Exit.NOT_FOUND, f"no coverage in s3://{bucket}/{COVERAGE_KEY} yet",
                       "wait for the reconcile (or a backfill over every group) to finish: it writes the coverage")
    if args.json:
        print(json.dumps(latest, indent=2), file=stdout)
        return Exit.OK
    print(coverage.table(latest, region=session.region_name or "?"), file=stdout)
    return Exit.OK


def fleet_status_command(args: argparse.Namespace, session: boto3.Session, stdout: TextIO, stderr: TextIO) -> int:
    """Exit 1 when a member is silent or alarming, so a scheduled check can page on it."""
    table_name = _named(args, session, args.table, "FleetTableName", "--table")
    table = FleetTable(table_name, session.client("dynamodb", endpoint_url=args.endpoint_url, config=client_config()))
    if args.forget:
        account, _, region = args.forget.partition("/")
        if not account.isdigit() or len(account) != 12 or not region:
            raise CliError(Exit.BAD_INPUT, f"--forget takes ACCOUNT/REGION; got {args.forget!r}", "pass e.g. --forget 123456789012/eu-west-1")
        removed = table.forget(account, region)
        print(f"forgot {account}/{region}: {removed} rows removed" if removed else f"no rows of {account}/{region} in {table_name}", file=stderr)
        if args.json:
            print(json.dumps({"forgotten": f"{account}/{region}", "rowsRemoved": removed}), file=stdout)
        return Exit.OK if removed else Exit.NOT_FOUND
    now = time.time()
    rows = rollup.statuses(*table.contents(), now=now, stale_after_s=args.stale_hours * 3600)
    if not rows:
        raise CliError(Exit.NOT_FOUND, f"no member has reported to {table_name} yet", "members report when their reconcile finishes: wait for one")
    if args.json:
        print(json.dumps([r.as_dict() for r in rows], indent=2), file=stdout)
    else:
        print(rollup.table(rows, now=now), file=stdout)
    return Exit.WORK_ERRORS if any(r.silent or r.alarming for r in rows) else Exit.OK


def selftest_command(args: argparse.Namespace, session: boto3.Session, stdout: TextIO, stderr: TextIO) -> int:
    report = selftest.SelfTest(lambda name: session.client(name, endpoint_url=args.endpoint_url, config=client_config()),
                               stack_name=args.stack_name, region=session.region_name, timeout_s=args.timeout).run()
    print(json.dumps(report.as_dict(), indent=2) if args.json else report.text(), file=stdout)
    return Exit.OK if report.passed else Exit.WORK_ERRORS


def retention_policies_command(args: argparse.Namespace, session: boto3.Session, stdout: TextIO, stderr: TextIO) -> int:
    settings = load_settings(args.context, args.config, require_destination=False)
    compiled = native.compiled_or_refusals(settings.policy, stderr)
    if compiled is None:
        return Exit.BAD_INPUT
    found = native.impacts(session.client("logs", endpoint_url=args.endpoint_url, config=client_config()), compiled) if args.dry_run else []
    if args.json:
        print(json.dumps({"policies": [native.as_dict(p, impact) for p, impact in
                                       zip(compiled.policies, found or [None] * len(compiled.policies))]}, indent=2), file=stdout)
        return Exit.OK
    for policy, impact in zip(compiled.policies, found or [None] * len(compiled.policies)):
        print(native.describe(policy), file=stdout)
        if impact:
            native.print_impact(impact, stdout)
    return Exit.OK


def cli_over(member: rules.Member | None, overrides: Sequence[str]) -> rules.Member | None:
    """The member, with the keys ``-c`` sets over its configuration named (they win, as over cdk.json)."""
    if member is None:
        return None
    keys = {}
    for override in overrides:
        key, sep, value = override.partition("=")
        if sep:
            try:
                keys[override_key(key, GOVERNOR, (ARCHIVE, ROLLOUT))] = value
            except ConfigError:
                continue  # load_settings refuses it, naming the nearest key
    return member.with_cli(keys)


def load_settings(context_file: Path, overrides: Sequence[str], *, require_destination: bool = True,
                  member: rules.Member | None = None) -> DeploymentSettings:
    """cdk.json's context, then a member's rollout:overrides (``member``), then ``-c`` (by hand, or the stack's keys)."""
    try:
        try:
            context = json.loads(context_file.read_text())["context"]
        except (OSError, ValueError, KeyError) as error:
            raise ConfigError(f"--context {context_file}: cannot read a cdk.json with a context object ({error})") from None
        if member is not None:
            context = dict(member.resolved.context)
        for override in overrides:
            key, sep, value = override.partition("=")
            if not sep:
                raise ConfigError(f"-c {override!r}: expected KEY=VALUE")
            context[override_key(key, GOVERNOR, (ARCHIVE, ROLLOUT))] = value  # the synth's rule: a mistyped key names the nearest
        settings = DeploymentSettings.from_context(context)
    except ConfigError as error:
        raise CliError(Exit.BAD_INPUT, f"invalid configuration: {error}", "correct the key in cdk.json or -c (docs/configuration.md)") from None
    if require_destination and settings.policy.destination is None:
        raise CliError(Exit.BAD_INPUT, "no destination: the shipped cdk.json names none (the built-in one's ARN exists once deployed)",
                       "pass --stack-name <the deployed stack> (its DestinationArn output), or -c destinationArn=<ARN>")
    return settings


class FileSink:
    """Decisions to a file or stdout; a resumed run first cuts a file back to its last finished page."""

    def __init__(self, out: TextIO | None, fmt: str, *, truncatable: bool) -> None:
        self.out, self.fmt, self.truncatable = out, fmt, truncatable
        if out is not None and fmt == "csv" and (not truncatable or out.tell() == 0):
            csv.writer(out).writerow(CSV_COLUMNS)

    def write_page(self, run_id: str, page_number: int, outcomes: list[Outcome], position: int) -> int:
        if self.out is None:  # --json without --output: the summary is the output
            return position + 1
        if self.truncatable and position and self.out.tell() != position:
            self.out.seek(position)
            self.out.truncate()
        for outcome in outcomes:
            row = outcome.as_dict()
            if self.fmt == "csv":
                buffer = io.StringIO()
                csv.writer(buffer).writerow([str(row[c]).lower() if isinstance(row[c], bool) else row[c] for c in CSV_COLUMNS])
                self.out.write(buffer.getvalue())
            else:
                self.out.write(json.dumps(row, separators=(",", ":")) + "\n")
        self.out.flush()
        return self.out.tell() if self.truncatable else position + 1


class FileRunStore:
    """The checkpoint file. It records whom it was written for (account, region, destination): resuming it
    against anything else would answer with the old run's summary, or mix two accounts' decisions."""

    def __init__(self, path: Path | None, identity: Mapping[str, str]) -> None:
        self.path, self.identity = path, dict(identity)
        #: The groups of the finished pages by what the run does to them (for the summary's "3 to change, 120 unchanged").
        self.tally: dict[str, int] = {}

    def load(self, run_id: str) -> dict[str, Any] | None:
        if self.path is None or not self.path.exists():
            return None
        try:
            raw = json.loads(self.path.read_text())
        except ValueError as error:
            raise CliError(Exit.BAD_INPUT, f"--checkpoint {self.path} is not a checkpoint ({error})",
                           "pass the file an earlier run wrote, or a new path") from None
        written_for = raw.pop("identity", None)
        self.tally = raw.pop("groupsBy", None) or {}
        if written_for is not None and written_for != self.identity:
            differs = ", ".join(f"{k} {written_for.get(k)!r} (now {v!r})" for k, v in self.identity.items() if written_for.get(k) != v)
            raise CliError(Exit.BAD_INPUT, f"--checkpoint {self.path} belongs to another run: {differs}",
                           "resume it with the account, region and destination it was written for, or pass a new --checkpoint")
        return raw

    def save(self, run_id: str, checkpoint: Any) -> None:
        if self.path is not None:
            temporary = self.path.with_suffix(self.path.suffix + ".tmp")
            temporary.write_text(json.dumps({**checkpoint, "identity": self.identity, "groupsBy": self.tally}))
            temporary.replace(self.path)  # atomic: a crash never leaves half a checkpoint


class ProgressLine:
    """`[####------] 1,234/5,000 groups · changed 800 · skipped 300 · errors 0 · ETA 12m30s` on stderr."""

    def __init__(self, stream: TextIO, quotas_tps: dict[str, float], enabled: bool, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream, self.quotas_tps, self.enabled, self.clock = stream, quotas_tps, enabled, clock
        self.total: int | None = None
        self.changed = self.skipped = self.conflicts = self.groups_done = 0
        self._last_draw: float | None = None

    def _due(self) -> bool:
        now = self.clock()
        if self._last_draw is not None and now - self._last_draw < PROGRESS_REDRAW_S:
            return False
        self._last_draw = now
        return True

    def on_counted(self, counted: int) -> None:
        """While the first pass counts (an hour at a million groups), say how far it got."""
        if self.enabled and self._due():
            self.stream.write(f"counting log groups: {counted:,} so far (--no-count skips this; no ETA then)   \r")
            self.stream.flush()

    def on_group(self, outcomes: list[Outcome], logs: LogsGateway) -> None:
        self.groups_done += 1
        self.changed += any(o.action.writes for o in outcomes)
        self.skipped += all(o.action.value == "skip" for o in outcomes)
        self.conflicts += any(o.action.value == "conflict" for o in outcomes)
        if self.enabled and self._due():
            self.draw(logs)

    def seconds_per_group(self, groups_done: int, logs: LogsGateway) -> float:
        """The bottleneck API's time per group at its quota, from the mix of calls seen so far."""
        if groups_done == 0:
            return 1.0 / self.quotas_tps["DescribeSubscriptionFilters"]
        return max(calls / groups_done / self.quotas_tps.get(op, float("inf")) for op, calls in logs.calls.items())

    def draw(self, logs: LogsGateway, end: str = "\r") -> None:
        if not self.enabled:
            return
        groups_done = self.groups_done
        if self.total:
            filled = min(10, groups_done * 10 // max(self.total, 1))
            bar = f"[{'#' * filled}{'-' * (10 - filled)}] {groups_done:,}/{self.total:,} groups"
            eta = f" · ETA {_duration(max(0, self.total - groups_done) * self.seconds_per_group(groups_done, logs))}"
        else:
            bar, eta = f"{groups_done:,} groups", ""
        self.stream.write(f"{bar} · changed {self.changed:,} · skipped {self.skipped:,} · conflicts {self.conflicts:,}{eta}   {end}")
        self.stream.flush()


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def count_groups(logs: LogsGateway, prefix: str, on_counted: Callable[[int], None] = lambda n: None) -> int:
    total, token = 0, None
    while True:
        page = logs.page_log_groups(token, prefix=prefix or None)
        total += len(page.groups)
        on_counted(total)
        token = page.next_token
        if not token:
            return total


def caller_identity(args: argparse.Namespace, session: boto3.Session) -> str:
    """The account the credentials reach, asked first: a missing or refused credential, or an endpoint that
    never answers, fails here in seconds with its one line, before any work."""
    config = client_config(max_attempts=PREFLIGHT_ATTEMPTS).merge(Config(read_timeout=PREFLIGHT_READ_TIMEOUT_S))
    sts = session.client("sts", endpoint_url=args.endpoint_url, config=config)
    return sts.get_caller_identity()["Account"]


COMMANDS: dict[str, Callable[[argparse.Namespace, boto3.Session, TextIO, TextIO], int]] = {
    "redrive": redrive_command, "status": status_command, "fleet-status": fleet_status_command,
    "selftest": selftest_command, "retention-policies": retention_policies_command,
}


def main(argv: Sequence[str] | None = None, *, stderr: TextIO = sys.stderr, stdout: TextIO = sys.stdout,
         clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
         now: Callable[[], float] = time.time) -> int:
    """``clock`` and ``sleep`` pace the run (tests pass a simulated clock's); ``now``, the wall clock (epoch seconds), ages
    the groups for the estimate of what retention changes expire. A reader that closes the pipe early
    (``| head``) ends the run quietly, with exit 0."""
    args = parse_args(argv)
    for warning in getattr(args, "deprecations", []):
        print(f"{PROG}: warning: {warning}", file=stderr)
    try:
        code = int(dispatch(args, stdout, stderr, clock, sleep, now))
        stdout.flush()  # a closed pipe is found here, not at the interpreter's exit
        return code
    except BrokenPipeError:
        _quiet_closed_stdout(stdout)
        return Exit.OK
    except KeyboardInterrupt:
        print("interrupted", file=stderr)
        return Exit.INTERRUPTED
    except Exception as error:  # every failure ends in one line; --debug shows where
        failure = error if isinstance(error, CliError) else explain(error, endpoint_url=args.endpoint_url, profile=args.profile)
        if failure is None or args.debug:
            traceback.print_exc(file=stderr)
        if failure is None:
            return Exit.WORK_ERRORS
        print(failure.line(), file=stderr)
        if args.json:
            print(json.dumps(failure.as_dict()), file=stdout)
        return failure.code


def _quiet_closed_stdout(stdout: TextIO) -> None:
    """The standard answer to a reader that went away (Python's signal docs, "Note on SIGPIPE"): point the standard
    output's descriptor at devnull, so that the interpreter's last flush does not fail again on the closed pipe."""
    try:
        fileno = stdout.fileno()
    except (OSError, ValueError, AttributeError):
        return  # not a file (a test's StringIO): nothing to flush at exit
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fileno)
    os.close(devnull)


def known_regions() -> list[str]:
    """Every region botocore's partition data lists (aws, aws-cn, aws-us-gov, the isolated partitions)."""
    loader = botocore.session.get_session()
    found = {region for partition in loader.get_data("endpoints")["partitions"] for region in partition.get("regions", {})}
    try:
        found |= {region for partition in loader.get_data("partitions")["partitions"] for region in partition.get("regions", {})}
    except Exception:  # an older botocore has no partitions.json
        pass
    return sorted(r for r in found if not r.endswith("-global"))


def check_region(region: str) -> None:
    """A region no partition lists is a typo (eu-wset-1), not an endpoint to try: said as such, with the nearest one."""
    regions = known_regions()
    if region in regions:
        return
    near = difflib.get_close_matches(region, regions, n=1, cutoff=0.5)
    raise CliError(Exit.BAD_INPUT, f"unknown region {region}" + (f" (the nearest is {near[0]})" if near else ""),
                   (f"pass --region {near[0]}" if near else "pass --region <a region>") +
                   "; a region newer than botocore needs `pip install -U botocore`")


def dispatch(args: argparse.Namespace, stdout: TextIO, stderr: TextIO, clock: Callable[[], float], sleep: Callable[[float], None],
             now: Callable[[], float] = time.time) -> int:
    session = boto3.Session(profile_name=args.profile, region_name=args.region)
    if args.mode == "retention-policies" and not args.dry_run:
        return retention_policies_command(args, session, stdout, stderr)  # no AWS call: the configuration alone
    if args.mode == "rules":
        member = cli_over(rules.member_of(args.context, args.member, args.ou, stderr), args.config)
        return rules.print_rules(load_settings(args.context, args.config, require_destination=False, member=member).policy, stdout, member=member)
    if not session.region_name:
        raise explain(NoRegionError())
    check_region(session.region_name)
    account = caller_identity(args, session)
    if args.mode in COMMANDS:
        return COMMANDS[args.mode](args, session, stdout, stderr)
    # The stack's destination and rule keys first; -c given by hand wins over them.
    overrides = [*destination_from_stack(args, session), *rule_keys_from_stack(args, session), *args.config]
    overrides = [*overrides, f"subscriptionMode={args.to}"] if args.mode == "migrate" else overrides
    member = cli_over(rules.member_of(args.context, args.member, args.ou, stderr), args.config)
    settings = load_settings(args.context, overrides, member=member)
    try:
        Policy(settings.policy)  # what only a deployed stack can fill in ("kmsKeyArn": "create") is refused here, before any run
    except ConfigError as error:
        raise CliError(Exit.BAD_INPUT, f"invalid configuration: {error}", "pass --stack-name <the deployed stack>") from None
    if getattr(args, "explain", None):
        clients = {name: session.client(name, endpoint_url=args.endpoint_url, config=client_config()) for name in ("logs", "lambda")}
        policy = GuardedPolicies(Settings(config=settings.policy), LambdaGateway(clients["lambda"]))()
        return rules.explain(policy, LogsGateway(clients["logs"]), args.explain, as_json=args.json, stdout=stdout, member=member)
    history.check(getattr(args, "replay_hours", None), settings.policy, mode=args.mode, stack_name=args.stack_name)
    identity = {"account": account, "region": session.region_name, "destination": settings.policy.destination.arn}
    runner = Runner(args, session, settings, identity, stdout=stdout, stderr=stderr, clock=clock, sleep=sleep, now=now)
    if args.mode == "migrate":
        return migrate_command(args, session, settings, runner)
    if args.mode in ("plan", "apply") and settings.policy.retention_via is Via.ACCOUNT_POLICY:
        logs = session.client("logs", endpoint_url=args.endpoint_url, config=client_config())
        answer = native.plan_and_apply(logs, settings.policy, apply=args.mode == "apply", allow_shortening=getattr(args, "allow_shortening", False),
                                       out=stderr, stderr=stderr)
        if answer.code:
            return answer.code
        runner.native_changes = answer.changes
    for control in (c for c in PLUGGED if c.native_form is not None and settings.policy.via(c.name) is Via.ACCOUNT_POLICY):
        if args.mode not in ("plan", "apply"):
            break
        logs = session.client("logs", endpoint_url=args.endpoint_url, config=client_config())
        answer = native.account_form_plan_and_apply(logs, settings.policy, control, apply=args.mode == "apply", out=stderr, stderr=stderr)
        if answer.code:
            return answer.code
        runner.native_changes += answer.changes
    code, summary = runner.run(mode=args.mode, checkpoint=args.checkpoint)
    return runner.finish(code, summary)


def migrate_command(args: argparse.Namespace, session: boto3.Session, settings: DeploymentSettings, runner: Runner) -> int:
    """Switch subscriptionMode, resumably (each step keeps its checkpoint, and a finished step is not
    done again). To account-policy: a full run writes the account policy with its whole NOT IN list,
    then a removal run deletes the governor's per-group filters by name (until it passes a group, its
    events arrive twice, never not at all). To per-group: a full run subscribes every group, then the
    governor's account policy is deleted."""
    if args.checkpoint is None:
        raise CliError(Exit.BAD_INPUT, "migrate needs --checkpoint FILE (it is two long runs, each resumed from its own checkpoint)",
                       "pass --checkpoint migrate.json")
    outputs = {step: args.out_file.with_suffix(f".{step}{args.out_file.suffix}") if args.out_file else None for step in ("1-apply", "2-remove-filters")}
    code, first = runner.run(mode="apply", checkpoint=args.checkpoint.with_suffix(".1-apply.json"), output=outputs["1-apply"])
    steps: list[dict[str, Any]] = [first]
    if code:
        return runner.finish(code, {"steps": steps})
    if args.to == Via.ACCOUNT_POLICY.value:
        code, second = runner.run(mode="remove-filters", checkpoint=args.checkpoint.with_suffix(".2-remove-filters.json"),
                                  output=outputs["2-remove-filters"])
        return runner.finish(code, {"steps": [*steps, second]})
    logs = LogsGateway(session.client("logs", endpoint_url=args.endpoint_url, config=client_config()))
    retired = SubscriptionPolicyKeeper(lambda: Policy(settings.policy), logs).retire()
    print(f"migrate: {retired.detail}", file=runner.stderr)
    return runner.finish(Exit.OK, {"steps": [*steps, {"accountSubscriptionPolicy": retired.as_dict()}]})


class Runner:
    """Backfill runs (plan, apply or remove-filters) from this process, resumable with a checkpoint."""

    def __init__(self, args: argparse.Namespace, session: boto3.Session, settings: DeploymentSettings, identity: Mapping[str, str], *,
                 stdout: TextIO, stderr: TextIO, clock: Callable[[], float], sleep: Callable[[float], None],
                 now: Callable[[], float] = time.time) -> None:
        self.args, self.session, self.settings, self.identity = args, session, settings, identity
        self.stdout, self.stderr, self.clock, self.sleep, self.now = stdout, stderr, clock, sleep, now
        #: Changes the native retention policies would make (retentionVia account-policy), for --detailed-exitcode.
        self.native_changes = 0
        #: Where each run's decisions went (for the summary), and whether standard output carries decisions (CSV).
        self.out_files: list[Path | None] = []
        self.decisions_on_stdout = False

    def finish(self, code: int, summary: dict[str, Any]) -> int:
        """The exit code, and the summary: for people on standard output ("3 to change, 120 unchanged" and a table of
        the changes; on standard error when the decisions go to standard output as CSV), or with --json as the last
        JSON line on standard output, after the decisions."""
        if code == Exit.OK and self.args.mode == "plan" and self.args.detailed_exitcode and changes_pending(summary, self.native_changes):
            code = Exit.CHANGES_PENDING
        if self.args.json:
            print(json.dumps({**summary, "changesPending": changes_pending(summary, self.native_changes), "exitCode": int(code)},
                             separators=(",", ":")), file=self.stdout)
        else:
            steps = summary.get("steps", [summary])
            text = "\n\n".join(human_summary(step, mode=self._step_mode(step), native_changes=self.native_changes if i == 0 else 0,
                                             out_file=self.out_files[i] if i < len(self.out_files) else None)
                               for i, step in enumerate(steps) if "logGroups" in step)
            extra = [f"{self.args.mode}: {json.dumps(step)}" for step in steps if "logGroups" not in step]  # migrate's account policy
            print("\n".join(filter(None, [text, *extra])), file=self.stderr if self.decisions_on_stdout else self.stdout)
        return code

    def _step_mode(self, step: Mapping[str, Any]) -> str:
        return "plan" if step.get("dryRun") else "remove-filters" if step.get("removeFilters") else "apply"

    def progress_enabled(self) -> bool:
        return self.args.progress == "always" or (self.args.progress == "auto" and self.stderr.isatty())

    def run(self, *, mode: str, checkpoint: Path | None, output: Path | None = None) -> tuple[int, dict[str, Any]]:
        """One run; decisions to ``output`` (default: --out-file; without it, standard output carries them only as
        --json's JSON lines, or as CSV with --format csv)."""
        args, stderr = self.args, self.stderr
        output = output or args.out_file
        self.out_files.append(output)
        clients = {name: self.session.client(name, endpoint_url=args.endpoint_url, config=client_config()) for name in ("logs", "lambda")}
        quotas = {op: tps * args.quota_scale for op, tps in self.settings.policy.backfill_rates_tps().items()}
        pacer = Pacer(quotas, clock=self.clock, sleep=self.sleep)  # one pacer for every call this process makes
        logs = LogsGateway(clients["logs"], pacer=pacer)
        keys = KmsGateway(self.session.client("kms", endpoint_url=args.endpoint_url, config=client_config()))  # a rule's kmsKeyArn (#21)
        governor = Governor(GuardedPolicies(Settings(config=self.settings.policy), LambdaGateway(clients["lambda"])), logs, keys=keys)
        keeper = None
        if self.settings.policy.subscription_mode is Via.ACCOUNT_POLICY and mode != "remove-filters":
            keeper = SubscriptionPolicyKeeper(lambda: governor.policy, logs)  # one process: no lock

        store = FileRunStore(checkpoint, self.identity)
        run_id = (store.load("") or {}).get("run_id") or time.strftime("cli-%Y%m%dT%H%M%S")
        try:
            request = BackfillRequest(run_id=run_id, dry_run=mode == "plan", prefix=args.prefix, remove_filters=mode == "remove-filters")
            progress = start_or_resume(request, store)
        except BadRequest as error:
            raise CliError(Exit.BAD_INPUT, f"--checkpoint {checkpoint}: {error}", "run the command that wrote it, or pass a new --checkpoint") from None
        if progress.done:
            print(f"run {run_id} in {checkpoint} is finished; remove the checkpoint to start again", file=stderr)
            return Exit.OK, {**progress.summary(), "groupsBy": store.tally}

        display = ProgressLine(stderr, quotas, enabled=self.progress_enabled(), clock=self.clock)
        if not args.no_count:
            display.total = count_groups(LogsGateway(clients["logs"], pacer=pacer), args.prefix, display.on_counted)
        resumed = progress.sessions > 0
        out: TextIO | None
        if output:
            out = output.open("r+" if resumed and output.exists() else "w", newline="")
            if resumed:
                out.seek(0, io.SEEK_END)
        elif args.json or args.format == "csv":
            out, self.decisions_on_stdout = self.stdout, not args.json
        else:
            out = None  # for people: the summary alone
        sink = FileSink(out, args.format or "jsonl", truncatable=output is not None)
        tally = Counter(store.tally)  # groups by what the run does to them: to change, unchanged, conflict, error

        def save(p: Progress) -> None:
            store.tally = dict(tally)
            store.save(p.run_id, p.to_json())
            display.groups_done = p.groups  # a page's groups are final once it is saved

        replaying = None
        if getattr(args, "replay_hours", None) and mode in ("plan", "apply"):
            state_table = _named(args, self.session, None, "StateTableName", "--stack-name") if args.stack_name else None
            replaying = history.history_replay(args.replay_hours, logs, self.session, args.endpoint_url, owner=self.identity["account"],
                                               dry_run=mode == "plan", state_table=state_table, policy=lambda: governor.policy)

        def on_group(p: Progress, outcomes: list[Outcome]) -> None:
            tally["changed" if any(o.action.writes for o in outcomes) else "unchanged"] += 1
            tally["conflict"] += any(o.action is Action.CONFLICT for o in outcomes)
            display.on_group(outcomes, logs)
            if replaying is not None:
                replaying.on_group(outcomes)

        engine = Backfill(governor, sink, save=save, on_group=on_group, keeper=keeper, now=self.now)
        display.groups_done = progress.groups
        try:
            engine.run_to_end(progress, sleep=self.sleep, on_retry=lambda error, pause_s: print(
                f"\n{type(error).__name__} after botocore's retries; page {progress.pages + 1} again in {pause_s:.0f} s", file=stderr))
        except KeyboardInterrupt:
            display.draw(logs, end="\n")
            hint = f"resume with the same command (checkpoint {checkpoint})" if checkpoint else "use --checkpoint FILE to make runs resumable"
            print(f"interrupted after {progress.pages} finished pages; {hint}", file=stderr)
            return Exit.INTERRUPTED, {**progress.summary(), "groupsBy": store.tally}
        except DestinationUnavailable as error:
            display.draw(logs, end="\n")
            raise CliError(Exit.WORK_ERRORS, f"the destination refused a subscription, so every group would: {error}",
                           "fix the destination (or destinationArn) and run again; finished pages are kept with --checkpoint") from None
        finally:
            if output and out is not None:
                out.close()
        display.draw(logs, end="\n")
        store.tally = dict(tally)
        summary = {**progress.summary(), "groupsBy": store.tally, **({"replay": replaying.summary()} if replaying is not None else {})}
        return (Exit.WORK_ERRORS if progress.error_count else Exit.OK), summary


def human_summary(summary: Mapping[str, Any], *, mode: str, native_changes: int = 0, out_file: Path | None = None) -> str:
    """A run for people: "plan: 123 log groups: 3 to change, 120 unchanged", then the changes by kind, largest first,
    the conflicts and errors, and where the decisions are."""
    groups = summary.get("logGroups", 0)
    tally = summary.get("groupsBy") or {}
    changed = tally.get("changed", 0)
    verb = "to change" if mode == "plan" else "filters removed from" if mode == "remove-filters" else "changed"
    head = (f"{mode}: {groups:,} log groups: {changed:,} {verb}, {groups - changed:,} unchanged" if mode != "remove-filters"
            else f"{mode}: {groups:,} log groups: {verb} {changed:,}, {groups - changed:,} unchanged")
    notes = [f"{tally['conflict']:,} with a conflict" if tally.get("conflict") else "",
             f"{summary.get('errorCount', 0):,} with an error" if summary.get("errorCount") else "",
             "nothing was written" if mode == "plan" else ""]
    lines = [head + "".join(f"; {n}" for n in notes if n)]
    if mode in ("plan", "apply") and summary.get("storage"):
        lines += storage_lines(summary["storage"], mode=mode)
    writes = WRITE_ACTIONS
    rows = [(count, f"{key} ({reason})") for key, reasons in summary.get("byReason", {}).items() for reason, count in reasons.items()
            if key.split(" ")[-1] in writes or key.split(" ")[-1] == Action.CONFLICT.value]
    rows.sort(key=lambda row: (-row[0], row[1]))
    if rows:
        width = max(len(what) for _, what in rows[:SUMMARY_ROWS])
        lines.append(f"  {'change (reason)' if mode == 'plan' else 'what (reason)':<{width}}  log groups")
        lines += [f"  {what:<{width}}  {count:>10,}" for count, what in rows[:SUMMARY_ROWS]]
        if len(rows) > SUMMARY_ROWS:
            lines.append(f"  ... and {len(rows) - SUMMARY_ROWS} more kinds (--json or --out-file lists every decision)")
    for error in summary.get("errors", [])[:5]:
        lines.append(f"  error: {error.get('logGroup', '?') if isinstance(error, dict) else ''} {error.get('error', error) if isinstance(error, dict) else error}")
    if native_changes:
        lines.append(f"  native account policies: {native_changes:,} {'to change' if mode == 'plan' else 'changed'}")
    replay = summary.get("replay", {})
    would = replay.get("wouldSend") or replay.get("sent")
    if would:
        lines.append(f"  replay: {'would send' if mode == 'plan' else 'sent'} {would.get('events', 0):,} events "
                     f"({would.get('bytes', 0):,} bytes) of {would.get('groups', 0):,} groups")
    lines.append(f"  every decision: {out_file}" if out_file else "  every decision: --out-file FILE (JSON lines or CSV), or --json")
    return "\n".join(lines)


def storage_lines(storage: Mapping[str, Any], *, mode: str) -> list[str]:
    """"stored: 12.3 GB under governance, ...; the retention changes would expire an estimated 5.2 GB, saving about $0.16 a
    month (estimate: ...)", then the retention changes of the largest groups first."""
    would = "would expire" if mode == "plan" else "expire"
    lines = [f"  stored: {savings.size(storage['storedBytes'])} under governance, {savings.size(storage['neverExpireStoredBytes'])} "
             f"of it in groups that never expire; the retention changes {would} an estimated {savings.size(storage['estimatedExpiringBytes'])}, "
             f"saving {storage_cost.about(storage['estimatedMonthlySavingsUsd'])} a month (estimate: {storage['estimateAssumption']})"]
    changes = storage.get("largestChanges") or []
    if changes:
        width = max(len("retention change, largest groups first"), *(len(c["logGroup"]) for c in changes[:SAVINGS_ROWS]))
        lines.append(f"  {'retention change, largest groups first':<{width}}  {'days':>5}  {'stored':>10}  {'expiring (est.)':>15}  {'$/month (est.)':>14}")
        lines += [f"  {c['logGroup']:<{width}}  {c['retentionDays']:>5}  {savings.size(c['storedBytes']):>10}  "
                  f"{savings.size(c['estimatedExpiringBytes']):>15}  {storage_cost.monthly_storage_usd(c['estimatedExpiringBytes']):>14,.2f}"
                  for c in changes[:SAVINGS_ROWS]]
    return lines


def changes_pending(summary: Mapping[str, Any], native_changes: int = 0) -> bool:
    """Whether apply would write: a subscribe, filter update or removal, or a retention set (or a native policy)."""
    steps = summary.get("steps", [summary])
    writes = WRITE_ACTIONS
    would_replay = any(step.get("replay", {}).get("wouldSend", {}).get("events") for step in steps)
    return native_changes > 0 or would_replay or any(count for step in steps for key, count in step.get("byAction", {}).items()
                                     if key.split(" ")[-1] in writes)


if __name__ == "__main__":
    sys.exit(main())
