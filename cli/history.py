"""`plan|apply --replay-hours N`: the last N hours of the groups a run leaves subscribed, sent to the destination
once (#20). A new group's gap is the event handlers' to replay; a group that existed before the governor (found by a
backfill) holds history, which is sent only when asked, after a plan that says how much.

The replay itself is the event handlers' (``governor.replay.Replayer``): the same selection by ingestion time (only
what was ingested before the governor's filter: the rest is the subscription's), the same bounds per group, and the
same record in the stack's state table, so a run resumed, run twice, or meeting a group the handlers replayed sends
no event twice.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from governor.aws import ReplayWriter, StateTable, client_config
from governor.config import PolicyConfig, Via
from governor.drift import InMemoryLedger
from governor.policy import Action, Policy
from governor.replay import DELIVERY_BUDGET_S, REPLAY_CALL_ATTEMPTS, REPLAY_SLICE_S, MAX_DOCUMENT_BYTES, Replayer, follows
from governor.service import Aspect, Outcome

from cli.errors import CliError, Exit

#: What a history replay may reach back to: the state table keeps a group's replay record 7 days
#: (StateTable.REPLAY_KEEP_S), and an event's timestamp can run 2 hours ahead of its ingestion; past this, a group
#: whose earlier replay is forgotten could be sent again.
MAX_REPLAY_HOURS = 7 * 24 - 24


def check(hours: float | None, config: PolicyConfig, *, mode: str, stack_name: str | None) -> None:
    """Refuse what a history replay cannot do, before any call: exit 2 with the way out."""
    if hours is None:
        return
    if not 0 < hours <= MAX_REPLAY_HOURS:
        raise CliError(Exit.BAD_INPUT, f"--replay-hours {hours:g}: expected more than 0 and at most {MAX_REPLAY_HOURS}",
                       f"ask for at most {MAX_REPLAY_HOURS} hours (replay records are kept 7 days)")
    if config.subscription_mode is Via.ACCOUNT_POLICY:
        raise CliError(Exit.BAD_INPUT, "--replay-hours needs per-group filters: under subscriptionMode account-policy no filter of the "
                                       "governor's tells what was shipped", "run it with subscriptionMode per-group")
    assert config.destination is not None
    if config.destination.kind not in MAX_DOCUMENT_BYTES:
        raise CliError(Exit.BAD_INPUT, f"--replay-hours: {config.destination.arn} is another account's CloudWatch Logs destination, which "
                                       "the governor never writes into (a member must not write records that claim an account)",
                       "replay to a same-account Lambda, Kinesis or Firehose destination, or leave --replay-hours out")
    if mode == "apply" and not stack_name:
        raise CliError(Exit.BAD_INPUT, "apply --replay-hours needs --stack-name: what was replayed is recorded in the stack's state "
                                       "table, so a resumed or repeated run, or the event handlers, send nothing twice",
                       "pass --stack-name <the deployed stack>")


@dataclass
class HistoryReplay:
    """Follows a run's subscription outcomes: measures (plan) or sends (apply) each group's last ``hours``."""

    replayer: Replayer
    ledger: Any
    hours: float
    owner: str
    dry_run: bool
    clock: Callable[[], float] = time.time
    totals: dict[str, int] = field(default_factory=lambda: {"groups": 0, "events": 0, "bytes": 0, "truncated": 0})

    @property
    def since_ms(self) -> int:
        return int((self.clock() - self.hours * 3600) * 1000)

    def on_group(self, outcomes: list[Outcome]) -> None:
        for outcome in outcomes:
            if outcome.aspect is Aspect.SUBSCRIPTION and follows(outcome.action, outcome.reason):
                self._one(outcome)

    def _one(self, outcome: Outcome) -> None:
        # What an earlier run or the group's own replay sent is in the ledger: the replayer sends (or measures) the rest.
        if self.dry_run:
            in_place = None if outcome.action is Action.SUBSCRIBE else self.replayer.own_filter(outcome.log_group)
            measured = self.replayer.measure(outcome.log_group, outcome.created_ms, since_ms=self.since_ms, in_place=in_place,
                                             pattern=outcome.filter_pattern or "")
            self._count(measured.events, measured.bytes, measured.truncated)
            return
        holder, sent = f"cli-{os.getpid()}-{id(self)}", 0
        while True:
            now = self.clock()
            # The lease outlasts the slice and the longest delivery started in it.
            result = self.replayer.history(outcome.log_group, outcome.created_ms, since_ms=self.since_ms, owner=self.owner, holder=holder,
                                           now_s=now, lease_until_s=now + REPLAY_SLICE_S + DELIVERY_BUDGET_S, stop_by_s=now + REPLAY_SLICE_S)
            sent += result.replayed
            if not result.unfinished:
                break
        self._count(sent, 0, result.truncated)

    def _count(self, events: int, size: int, truncated: int) -> None:
        if events or truncated:
            self.totals["groups"] += 1
        self.totals["events"] += events
        self.totals["bytes"] += size
        self.totals["truncated"] += truncated

    def summary(self) -> dict[str, Any]:
        verb = "wouldSend" if self.dry_run else "sent"
        found: dict[str, Any] = {"hours": self.hours, verb: {k: v for k, v in self.totals.items() if k != "bytes" or self.dry_run}}
        return found


def history_replay(hours: float, logs: Any, session: Any, endpoint_url: str | None, *, owner: str, dry_run: bool,
                   state_table: str | None, policy: Callable[[], Policy]) -> HistoryReplay:
    """The run's history replay: its reads through the run's paced CloudWatch Logs gateway, its writes to the destination."""
    # Each delivery and its record within REPLAY_CALL_ATTEMPTS, so that both end within the lease (DELIVERY_BUDGET_S).
    config = client_config(REPLAY_CALL_ATTEMPTS)
    ledger: Any = (StateTable(state_table, session.client("dynamodb", endpoint_url=endpoint_url, config=config))
                   if state_table else InMemoryLedger())
    writer = ReplayWriter(lambda service: session.client(service, endpoint_url=endpoint_url, config=config))
    return HistoryReplay(Replayer(policy, logs, writer, ledger), ledger, hours, owner, dry_run)
