"""`python -m cli plan|apply|remove-filters|migrate|status|fleet-status|retention-policies|selftest|redrive`: a one-off
backfill from a laptop, with the stack's configuration; the latest coverage of an account and region; the native
retention policies the configuration compiles to; the self-test of a deployed governor; the replay of ship-logs'
dead-letter queue.

It reads cdk.json (and ``-c`` overrides) exactly as `cdk synth` does, runs the same policy core as the
functions against whatever account your credentials reach (or a moto server via ``--endpoint-url``),
writes every decision as JSON lines or CSV, shows progress with an ETA from the API quotas, and ends
with a summary. With ``--checkpoint FILE`` an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "lambdas"))

import boto3  # noqa: E402

from governor.aws import DestinationUnavailable, LambdaGateway, LogsGateway, Pacer, S3RunStore, client_config  # noqa: E402
from ship_logs.aws import LambdaInvoker, QueueGateway  # noqa: E402
from governor import coverage  # noqa: E402
from governor.backfill import Backfill, BackfillRequest, BadRequest, Progress, start_or_resume  # noqa: E402
from governor.config import CONTEXT_PREFIX, ConfigError, Via  # noqa: E402
from governor.policy import Policy  # noqa: E402
from governor.subscription_policy import SubscriptionPolicyKeeper  # noqa: E402
from governor.runtime import GuardedPolicies, Settings  # noqa: E402
from governor.service import Governor, Outcome  # noqa: E402
from ship_logs.redrive import redrive  # noqa: E402
from stacks.settings import DeploymentSettings  # noqa: E402
from cli import native, selftest  # noqa: E402
from fleet import rollup  # noqa: E402
from fleet.store import FleetTable  # noqa: E402

CSV_COLUMNS = ("logGroup", "aspect", "action", "reason", "detail", "applied")
PROGRESS_REDRAW_S = 0.25



def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    aws = argparse.ArgumentParser(add_help=False)
    aws.add_argument("--profile", help="AWS profile (default: the usual credential chain)")
    aws.add_argument("--region", help="AWS region (default: the profile's or AWS_DEFAULT_REGION)")
    aws.add_argument("--endpoint-url", help="send AWS calls here instead (e.g. a moto server)")
    parser = argparse.ArgumentParser(prog="python -m cli", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="mode", required=True,
                                     metavar="{plan,apply,remove-filters,migrate,status,fleet-status,retention-policies,selftest,redrive}")
    for mode, summary in (("plan", "change nothing; report what apply would do"), ("apply", "bring every log group into line"),
                          ("remove-filters", "remove the governor's own filters (by name) from every log group, before an uninstall"),
                          ("migrate", "switch subscriptionMode, resumably: the new mode's full run, then the old mode's filters "
                                      "(or account policy) removed, only the governor's, by name")):
        command = commands.add_parser(mode, parents=[aws], help=summary, description=summary)
        if mode == "apply":
            command.add_argument("--allow-shortening", action="store_true",
                                 help="retentionVia account-policy: write native retention policies even where they shorten a group's retention")
        if mode == "migrate":
            command.add_argument("--to", required=True, choices=[v.value for v in Via], help="the subscriptionMode to switch to")
        command.add_argument("--context", type=Path, default=REPO / "cdk.json", help="cdk.json to read the configuration from (default: the repository's)")
        command.add_argument("-c", "--config", action="append", default=[], metavar="KEY=VALUE",
                             help="override a configuration key, as `cdk deploy -c` does (the governor: prefix is optional)")
        command.add_argument("--stack-name", help="the deployed stack: its DestinationArn and DestinationRoleArn outputs fill in "
                                                  "the destination (the built-in one's ARN is known only once deployed)")
        command.add_argument("--prefix", default="", help="only log groups whose names start with this")
        command.add_argument("--output", type=Path, help="write decisions here (default: standard output)")
        command.add_argument("--format", choices=["jsonl", "csv"], default="jsonl", help="decision format (default: jsonl)")
        command.add_argument("--checkpoint", type=Path, help="save progress here after every page; an existing unfinished checkpoint is resumed")
        command.add_argument("--no-count", action="store_true", help="skip the first pass that counts log groups (no ETA then)")
        command.add_argument("--quota-scale", type=float, default=1.0,
                             help="multiply the configured API quotas (governor:apiQuotasTps), e.g. for a scaled test server")
        command.add_argument("--no-progress", action="store_true", help="no progress line on standard error")
    status_help = "print the latest coverage of an account and region (from the last finished full run)"
    command = commands.add_parser("status", parents=[aws], help=status_help, description=status_help)
    where = command.add_mutually_exclusive_group(required=True)
    where.add_argument("--stack-name", help="the deployed stack (its ReportsBucket output is read)")
    where.add_argument("--bucket", help="the ReportsBucket output")
    command.add_argument("--json", action="store_true", help="print the coverage as JSON instead of a table")
    native_help = ("the native account-level retention policies the configuration compiles to, or why it cannot; "
                   "with --dry-run, what each would do to the account's groups (nothing is written)")
    command = commands.add_parser("retention-policies", parents=[aws], help=native_help, description=native_help)
    command.add_argument("--context", type=Path, default=REPO / "cdk.json", help="cdk.json to read the configuration from (default: the repository's)")
    command.add_argument("-c", "--config", action="append", default=[], metavar="KEY=VALUE", help="override a configuration key")
    command.add_argument("--dry-run", action="store_true", help="ask the account (PutAccountPolicy with dryRun) how many groups each policy would shorten")
    fleet_help = "print each member governor's latest coverage and alarms, per account and region, and who stopped reporting (central account)"
    command = commands.add_parser("fleet-status", parents=[aws], help=fleet_help, description=fleet_help)
    where = command.add_mutually_exclusive_group(required=True)
    where.add_argument("--stack-name", help="the archive stack of a region (its FleetTableName output is read)")
    where.add_argument("--table", help="the FleetTableName output")
    command.add_argument("--stale-hours", type=float, default=60.0, help="flag a member silent after this long without a report (default 60)")
    command.add_argument("--forget", metavar="ACCOUNT/REGION", help="remove a member's rows (it left, or was reported by mistake) and exit")
    command.add_argument("--json", action="store_true", help="print the statuses as JSON instead of a table")
    selftest_help = ("after a deploy: prove the governor works here (trail, alarm topic, a canary log group subscribed and retained, "
                     "a line delivered), say which step failed and what to fix; the canary is deleted at the end")
    command = commands.add_parser("selftest", parents=[aws], help=selftest_help, description=selftest.__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    command.add_argument("--stack-name", required=True, help="the deployed governor stack (LogGroupGovernor, or a member's StackSet instance)")
    command.add_argument("--timeout", type=float, default=selftest.DEFAULT_TIMEOUT_S,
                         help=f"seconds to wait for each of the governor's actions and for delivery (default {selftest.DEFAULT_TIMEOUT_S:.0f})")
    command.add_argument("--json", action="store_true", help="print the report as JSON (for CI)")
    redrive_help = "replay ship-logs' dead-letter queue to the function (the stack outputs name both)"
    command = commands.add_parser("redrive", parents=[aws], help=redrive_help, description=redrive_help)
    command.add_argument("--queue-url", required=True, help="the ShipLogsDeadLetterQueueUrl output")
    command.add_argument("--function-name", required=True, help="the ShipLogsFunctionName output")
    return parser.parse_args(argv)


def redrive_command(args: argparse.Namespace, session: boto3.Session, stderr: TextIO) -> int:
    sqs = session.client("sqs", endpoint_url=args.endpoint_url, config=client_config())
    invoker = LambdaInvoker(args.function_name, session.client("lambda", endpoint_url=args.endpoint_url, config=client_config()))
    result = redrive(QueueGateway(args.queue_url, sqs), invoker)
    print(json.dumps({"replayed": result.replayed, "failed": result.failed, "leftCorrupt": result.left_corrupt,
                      "leftForNextRedrive": result.left_new}, indent=2), file=stderr)
    return 1 if result.failed else 0


def stack_outputs(args: argparse.Namespace, session: boto3.Session) -> dict[str, str]:
    """The deployed stack's outputs (--stack-name), by key."""
    cloudformation = session.client("cloudformation", endpoint_url=args.endpoint_url, config=client_config())
    outputs = cloudformation.describe_stacks(StackName=args.stack_name)["Stacks"][0].get("Outputs", [])
    return {o["OutputKey"]: o["OutputValue"] for o in outputs}


def _named(args: argparse.Namespace, session: boto3.Session, given: str | None, output_key: str, flag: str, stderr: TextIO) -> str | None:
    """``given``, or the deployed stack's output ``output_key`` (--stack-name); None (said why) when it has none."""
    if not args.stack_name:
        return given
    found = stack_outputs(args, session).get(output_key)
    if not found:
        print(f"log-group-governor: stack {args.stack_name} has no {output_key} output; pass {flag}", file=stderr)
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


def status_command(args: argparse.Namespace, session: boto3.Session, stdout: TextIO, stderr: TextIO) -> int:
    bucket = _named(args, session, args.bucket, "ReportsBucket", "--bucket", stderr)
    if not bucket:
        return 2
    store = S3RunStore(bucket, session.client("s3", endpoint_url=args.endpoint_url, config=client_config()))
    latest = store.load_json(COVERAGE_KEY)
    if latest is None:
        print(f"log-group-governor: no coverage in s3://{bucket}/{COVERAGE_KEY} yet: it is written when a reconcile "
              f"(or a backfill over every group) finishes", file=stderr)
        return 1
    if args.json:
        print(json.dumps(latest, indent=2), file=stdout)
        return 0
    print(coverage.table(latest, region=session.region_name or "?"), file=stdout)
    return 0


def fleet_status_command(args: argparse.Namespace, session: boto3.Session, stdout: TextIO, stderr: TextIO) -> int:
    """Exit 1 when a member is silent or alarming, so a scheduled check can page on it."""
    table_name = _named(args, session, args.table, "FleetTableName", "--table", stderr)
    if not table_name:
        return 2
    table = FleetTable(table_name, session.client("dynamodb", endpoint_url=args.endpoint_url, config=client_config()))
    if args.forget:
        account, _, region = args.forget.partition("/")
        if not account.isdigit() or len(account) != 12 or not region:
            print(f"log-group-governor: --forget takes ACCOUNT/REGION (123456789012/eu-west-1); got {args.forget!r}", file=stderr)
            return 2
        removed = table.forget(account, region)
        print(f"forgot {account}/{region}: {removed} rows removed" if removed else f"no rows of {account}/{region} in {table_name}", file=stderr)
        return 0 if removed else 1
    now = time.time()
    rows = rollup.statuses(*table.contents(), now=now, stale_after_s=args.stale_hours * 3600)
    if not rows:
        print(f"log-group-governor: no member has reported to {table_name} yet: members report when their reconcile finishes", file=stderr)
        return 1
    if args.json:
        print(json.dumps([r.as_dict() for r in rows], indent=2), file=stdout)
    else:
        print(rollup.table(rows, now=now), file=stdout)
    return 1 if any(r.silent or r.alarming for r in rows) else 0


def selftest_command(args: argparse.Namespace, session: boto3.Session, stdout: TextIO, stderr: TextIO) -> int:
    region = session.region_name
    if not region:
        print("log-group-governor: selftest needs a region: pass --region or set AWS_REGION", file=stderr)
        return 2
    report = selftest.SelfTest(lambda name: session.client(name, endpoint_url=args.endpoint_url, config=client_config()),
                               stack_name=args.stack_name, region=region, timeout_s=args.timeout).run()
    print(json.dumps(report.as_dict(), indent=2) if args.json else report.text(), file=stdout)
    return 0 if report.passed else 1


def retention_policies_command(args: argparse.Namespace, session: boto3.Session, stdout: TextIO, stderr: TextIO) -> int:
    try:
        settings = load_settings(args.context, args.config, require_destination=False)
    except ConfigError as error:
        print(f"log-group-governor: invalid configuration: {error}", file=stderr)
        return 2
    compiled = native.compiled_or_refusals(settings.policy, stderr)
    if compiled is None:
        return 2
    if not args.dry_run:
        for policy in compiled.policies:
            print(native.describe(policy), file=stdout)
        return 0
    for impact in native.impacts(session.client("logs", endpoint_url=args.endpoint_url, config=client_config()), compiled):
        print(native.describe(impact.policy), file=stdout)
        native.print_impact(impact, stdout)
    return 0


def load_settings(context_file: Path, overrides: Sequence[str], *, require_destination: bool = True) -> DeploymentSettings:
    try:
        context = json.loads(context_file.read_text())["context"]
    except (OSError, ValueError, KeyError) as error:
        raise ConfigError(f"--context {context_file}: cannot read a cdk.json with a context object ({error})") from None
    for override in overrides:
        key, sep, value = override.partition("=")
        if not sep:
            raise ConfigError(f"-c {override!r}: expected KEY=VALUE")
        context[key if key.startswith(CONTEXT_PREFIX) else CONTEXT_PREFIX + key] = value
    settings = DeploymentSettings.from_context(context)
    if require_destination and settings.policy.destination is None:
        raise ConfigError(
            "destinationArn: the CLI needs the destination; pass --stack-name <the deployed stack> (its DestinationArn output), "
            "or -c destinationArn=<ARN>"
        )
    return settings


class FileSink:
    """Decisions to a file or stdout; a resumed run first cuts a file back to its last finished page."""

    def __init__(self, out: TextIO, fmt: str, *, truncatable: bool) -> None:
        self.out, self.fmt, self.truncatable = out, fmt, truncatable
        if fmt == "csv" and (not truncatable or out.tell() == 0):
            csv.writer(out).writerow(CSV_COLUMNS)

    def write_page(self, run_id: str, page_number: int, outcomes: list[Outcome], position: int) -> int:
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
    def __init__(self, path: Path | None) -> None:
        self.path = path

    def load(self, run_id: str) -> dict[str, Any] | None:
        if self.path is None or not self.path.exists():
            return None
        return json.loads(self.path.read_text())

    def save(self, run_id: str, checkpoint: Any) -> None:
        if self.path is not None:
            temporary = self.path.with_suffix(self.path.suffix + ".tmp")
            temporary.write_text(json.dumps(checkpoint))
            temporary.replace(self.path)  # atomic: a crash never leaves half a checkpoint


class ProgressLine:
    """`[####------] 1,234/5,000 groups · changed 800 · skipped 300 · errors 0 · ETA 12m30s` on stderr."""

    def __init__(self, stream: TextIO, total: int | None, quotas_tps: dict[str, float], enabled: bool) -> None:
        self.stream, self.total, self.quotas_tps, self.enabled = stream, total, quotas_tps, enabled
        self.changed = self.skipped = self.conflicts = self.groups_done = 0
        self._last_draw = 0.0

    def on_group(self, outcomes: list[Outcome], logs: LogsGateway) -> None:
        self.groups_done += 1
        self.changed += any(o.action.writes for o in outcomes)
        self.skipped += all(o.action.value == "skip" for o in outcomes)
        self.conflicts += any(o.action.value == "conflict" for o in outcomes)
        now = time.monotonic()
        if self.enabled and now - self._last_draw >= PROGRESS_REDRAW_S:
            self._last_draw = now
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


def count_groups(logs: LogsGateway, prefix: str) -> int:
    total, token = 0, None
    while True:
        page = logs.page_log_groups(token, prefix=prefix or None)
        total += len(page.groups)
        token = page.next_token
        if not token:
            return total


def main(argv: Sequence[str] | None = None, *, stderr: TextIO = sys.stderr, stdout: TextIO = sys.stdout) -> int:
    args = parse_args(argv)
    if args.mode == "redrive":
        return redrive_command(args, boto3.Session(profile_name=args.profile, region_name=args.region), stderr)
    if args.mode == "status":
        return status_command(args, boto3.Session(profile_name=args.profile, region_name=args.region), stdout, stderr)
    if args.mode == "fleet-status":
        return fleet_status_command(args, boto3.Session(profile_name=args.profile, region_name=args.region), stdout, stderr)
    if args.mode == "selftest":
        return selftest_command(args, boto3.Session(profile_name=args.profile, region_name=args.region), stdout, stderr)
    if args.mode == "retention-policies":
        return retention_policies_command(args, boto3.Session(profile_name=args.profile, region_name=args.region), stdout, stderr)
    session = boto3.Session(profile_name=args.profile, region_name=args.region)
    # The stack's destination first; -c given by hand wins over it.
    overrides = [*destination_from_stack(args, session), *args.config]
    overrides = [*overrides, f"subscriptionMode={args.to}"] if args.mode == "migrate" else overrides
    try:
        settings = load_settings(args.context, overrides)
    except ConfigError as error:
        print(f"log-group-governor: invalid configuration: {error}", file=stderr)
        return 2
    if args.mode == "migrate":
        return migrate_command(args, session, settings, stdout, stderr)
    if args.mode in ("plan", "apply") and settings.policy.retention_via is Via.ACCOUNT_POLICY:
        logs = session.client("logs", endpoint_url=args.endpoint_url, config=client_config())
        answer = native.plan_and_apply(logs, settings.policy, apply=args.mode == "apply", allow_shortening=getattr(args, "allow_shortening", False),
                                       out=stderr, stderr=stderr)
        if answer:
            return answer
    return run(args, session, settings, mode=args.mode, checkpoint=args.checkpoint, stdout=stdout, stderr=stderr)


def migrate_command(args: argparse.Namespace, session: boto3.Session, settings: DeploymentSettings, stdout: TextIO, stderr: TextIO) -> int:
    """Switch subscriptionMode, resumably (each step keeps its checkpoint, and a finished step is not
    done again). To account-policy: a full run writes the account policy with its whole NOT IN list,
    then a removal run deletes the governor's per-group filters by name (until it passes a group, its
    events arrive twice, never not at all). To per-group: a full run subscribes every group, then the
    governor's account policy is deleted."""
    if args.checkpoint is None:
        print("log-group-governor: migrate needs --checkpoint FILE: it is two long runs, each resumed from its own checkpoint", file=stderr)
        return 2
    outputs = {step: args.output.with_suffix(f".{step}{args.output.suffix}") if args.output else None for step in ("1-apply", "2-remove-filters")}
    first = run(args, session, settings, mode="apply", checkpoint=args.checkpoint.with_suffix(".1-apply.json"), stdout=stdout, stderr=stderr,
                output=outputs["1-apply"])
    if first:
        return first
    if args.to == Via.ACCOUNT_POLICY.value:
        return run(args, session, settings, mode="remove-filters", checkpoint=args.checkpoint.with_suffix(".2-remove-filters.json"),
                   stdout=stdout, stderr=stderr, output=outputs["2-remove-filters"])
    logs = LogsGateway(session.client("logs", endpoint_url=args.endpoint_url, config=client_config()))
    retired = SubscriptionPolicyKeeper(lambda: Policy(settings.policy), logs).retire()
    print(f"migrate: {retired.detail}", file=stderr)
    return 0


def run(args: argparse.Namespace, session: boto3.Session, settings: DeploymentSettings, *, mode: str, checkpoint: Path | None,
        stdout: TextIO, stderr: TextIO, output: Path | None = None) -> int:
    """One backfill run (plan, apply or remove-filters) from this process, resumable with ``checkpoint``;
    decisions to ``output`` (default: --output, else standard output)."""
    output = output or args.output
    clients = {name: session.client(name, endpoint_url=args.endpoint_url, config=client_config()) for name in ("logs", "lambda")}
    quotas = {op: tps * args.quota_scale for op, tps in settings.policy.backfill_rates_tps().items()}
    pacer = Pacer(quotas)  # one pacer for every call this process makes
    logs = LogsGateway(clients["logs"], pacer=pacer)
    governor = Governor(GuardedPolicies(Settings(config=settings.policy), LambdaGateway(clients["lambda"])), logs)
    keeper = None
    if settings.policy.subscription_mode is Via.ACCOUNT_POLICY and mode != "remove-filters":
        keeper = SubscriptionPolicyKeeper(lambda: governor.policy, logs)  # one process: no lock

    store = FileRunStore(checkpoint)
    run_id = (store.load("") or {}).get("run_id") or time.strftime("cli-%Y%m%dT%H%M%S")
    try:
        request = BackfillRequest(run_id=run_id, dry_run=mode == "plan", prefix=args.prefix, remove_filters=mode == "remove-filters")
        progress = start_or_resume(request, store)
    except BadRequest as error:
        print(f"log-group-governor: --checkpoint {checkpoint}: {error}", file=stderr)
        return 2
    if progress.done:
        print(f"run {run_id} in {checkpoint} is finished; remove the checkpoint to start again", file=stderr)
        print(json.dumps(progress.summary(), indent=2), file=stderr)
        return 0

    total = None if args.no_count else count_groups(LogsGateway(clients["logs"], pacer=pacer), args.prefix)
    display = ProgressLine(stderr, total, quotas, enabled=not args.no_progress)
    resumed = progress.sessions > 0
    out = output.open("r+" if resumed and output.exists() else "w", newline="") if output else stdout
    if resumed and output:
        out.seek(0, io.SEEK_END)
    sink = FileSink(out, args.format, truncatable=output is not None)

    def save(p: Progress) -> None:
        store.save(p.run_id, p.to_json())
        display.groups_done = p.groups  # a page's groups are final once it is saved

    engine = Backfill(governor, sink, save=save, on_group=lambda p, outcomes: display.on_group(outcomes, logs), keeper=keeper)
    display.groups_done = progress.groups
    try:
        engine.run_to_end(progress, on_retry=lambda error, pause_s: print(
            f"\n{type(error).__name__} after botocore's retries; page {progress.pages + 1} again in {pause_s:.0f} s", file=stderr))
    except KeyboardInterrupt:
        display.draw(logs, end="\n")
        hint = f"resume with the same command (checkpoint {checkpoint})" if checkpoint else "use --checkpoint FILE to make runs resumable"
        print(f"interrupted after {progress.pages} finished pages; {hint}", file=stderr)
        return 130
    except DestinationUnavailable as error:
        display.draw(logs, end="\n")
        print(f"log-group-governor: the destination refused a subscription, so every group would: {error}\n"
              f"fix the destination (or destinationArn) and run again; finished pages are kept with --checkpoint", file=stderr)
        return 1
    finally:
        if output:
            out.close()
    display.draw(logs, end="\n")
    print(json.dumps(progress.summary(), indent=2), file=stderr)
    return 1 if progress.error_count else 0


if __name__ == "__main__":
    sys.exit(main())
