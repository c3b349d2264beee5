"""The two event handlers: subscribe-log-group and set-retention, one aspect of the policy each.

Each acts on CloudTrail records of CreateLogGroup and of the calls that can undo its aspect later
(drift: a filter deleted or replaced, retention put or deleted, tags added or removed): it looks the
group up again and asks the same policy. The governor's own calls are ignored; a group another
principal keeps changing back is left alone (``governor.drift``).

EventBridge puts every such record into one encrypted queue per handler; each handler drains its
queue in batches, at most ``GOVERNOR_EVENT_CONCURRENCY`` containers at once, each pacing its CloudWatch Logs calls to its part of the event handlers' quota share. A
burst of new groups waits in the queue instead of throttling the account. A message that fails is
reported in ``batchItemFailures`` and comes back after the queue's visibility timeout; one that fails
again and again ends in the dead-letter queue, whose alarm fires. Invoked with a bare EventBridge
event (by hand, or by an older rule), a handler governs that one group and raises on failure.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from .. import metric_names
from ..aws import DestinationUnavailable, EventQueueSender, FleetBus, RetryLater, LambdaGateway, LogGroupInfo, LogsGateway, Pacer, StateTable, TaggingGateway, retry_budget_s
from ..config import ENV_ASPECT, ENV_FLEET_BUS, METRICS_NAMESPACE, SERVICE_NAME, ConfigError, DestinationKind, Via
from ..controls import REGISTRY
from ..drift import DriftGuard
from ..events import (GROUP_CALLS_BY_ASPECT, IgnoredEvent, is_account_policy_call, is_destination_call, parse_account_policy_call,
                      parse_destination_call, parse_log_group_call)
from ..observability import DESTINATION_ERRORS_METRIC, ERRORS_METRIC, IGNORED_EVENTS_METRIC, record_outcome
from ..pacing import EVENT_MAX_RECEIVE_COUNT, event_handler_rates_tps
from ..policy import Action, Policy, Reason, orphan_candidate
from ..delivery_gaps import ENV_GAP_QUEUE_URL, FirstLines
from ..replay import follows, replay_bounds, replay_is_due, replayable_here
from ..runtime import GuardedPolicies, Settings
from ..service import LOG_GROUP_GONE, Aspect, Governor, LookedUp, Orphans, Outcome
from ..subscription_policy import POLICY_TYPE, SubscriptionPolicyKeeper, listed, with_write

#: Take no new message of a batch with less time left than the longest one API call can take
#: (every retry, every timeout), plus room to answer: the rest go back to the queue untouched.
RECORD_MARGIN_MS = int(retry_budget_s() * 1000) + 5_000
#: Keys a record adds to the log lines; removed before the next record of the batch.
_RECORD_KEYS = ["logGroupName", "eventId", "eventName", "principal", "messageId", "decision", "reason"]

logger = Logger(service=SERVICE_NAME)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)
#: The clock the guard's look-up expires by and the pacer spaces calls by (tests put a simulated one here).
clock = time.monotonic
sleep = time.sleep
#: The wall clock drift windows and conflict holds are measured in (epoch seconds).
wall_clock = time.time


@dataclass(frozen=True)
class EventParts:
    """What a handler keeps for its container's life: nothing in it can change while the container
    lives (the guard's LoggingConfig look-up inside the governor is made afresh for every batch:
    ``_guard_afresh``; conflicts are read from the table before every write, never cached)."""

    governor: Governor
    drift: DriftGuard
    #: Whether a /aws/lambda/<name> group's function is gone (None: not asked by this handler).
    orphaned: Orphans | None = None
    #: subscriptionMode account-policy: keeps the account policy's NOT IN list (None: per-group filters).
    keeper: SubscriptionPolicyKeeper | None = None
    #: Per-group subscriptions with the replay on: the replay queue, where a new group's first lines are asked for (the
    #: replay function reads and sends them, off the subscription path: #31 item 3); None: retention, or no replay.
    replay_queue: EventQueueSender | None = None
    #: The organization's fleet bus: a group subscribed to the archive's CloudWatch Logs destination, whose lines before
    #: the filter the member cannot write there, is handed to the archive, which pulls them (#31; None: not a member).
    pull: FleetBus | None = None


def _parts(aspect: Aspect, policy: Callable[[Settings], Policy | Callable[[], Policy]]) -> EventParts:
    settings = Settings.from_environ(os.environ)
    table = StateTable(settings.require_state_table())
    rates = event_handler_rates_tps(settings.config.api_quotas_tps, settings.config.event_quota_share,
                                    aspect.value, settings.event_concurrency, deployed=settings.config.event_aspects)
    pacer = Pacer(rates, clock=lambda: clock(), sleep=lambda s: sleep(s))
    orphaned = None
    if aspect is Aspect.RETENTION and settings.config.orphan_retention_days is not None:
        lambdas = LambdaGateway()
        def orphaned(info: LogGroupInfo) -> bool | None:
            function = orphan_candidate(info.name, info.created_ms, wall_clock())
            return None if function is None else not lambdas.function_exists(function)
    # The batch's tags in one GetResources call, when the policy reads tags at all.
    tagging = TaggingGateway() if settings.config.tag_keys else None
    governor = Governor(policy(settings), LogsGateway(pacer=pacer), tagging=tagging,
                        keys=None)  # a control's check before a write makes its KMS gateway on first use
    keeper = None
    if aspect is Aspect.SUBSCRIPTION and settings.config.subscription_mode is Via.ACCOUNT_POLICY:
        keeper = SubscriptionPolicyKeeper(lambda: governor.policy, governor.logs, lock=table, clock=lambda: wall_clock(),
                                          sleep=lambda s: sleep(s))
    replay_queue = pull = None
    if aspect is Aspect.SUBSCRIPTION and keeper is None and settings.config.replay_window_minutes is not None:
        if replayable_here(Policy(settings.config).destinations):
            # The replay function replays, or asks the archive for a group whose filter ships there (a rule's destination).
            if not os.environ.get(ENV_GAP_QUEUE_URL):
                raise ConfigError(f"{ENV_GAP_QUEUE_URL} is not set: set it to the replay queue's URL (the stack does this), or "
                                  "replayWindowMinutes to null")
            replay_queue = EventQueueSender(os.environ[ENV_GAP_QUEUE_URL])
        elif os.environ.get(ENV_FLEET_BUS):
            pull = FleetBus(os.environ[ENV_FLEET_BUS])  # every filter ships to the archive, which pulls: no read of this one's
    return EventParts(governor, DriftGuard(settings.config, table, settings.own_principals, clock=lambda: wall_clock()), orphaned, keeper,
                      replay_queue, pull)


@cache
def subscription_parts() -> EventParts:
    """Built on the first invocation and kept for the container's life; its guard is read afresh for every batch."""
    return _parts(Aspect.SUBSCRIPTION, lambda settings: GuardedPolicies(settings, clock=lambda: clock(), ttl_s=None))


def _unguarded(aspect: Aspect) -> EventParts:
    """Retention and the controls rules set (#21) need no guard look-up: setting them on the shipping path's groups
    loops nothing."""
    return _parts(aspect, lambda s: Policy(s.config, protected_log_groups=s.protected_log_groups))


@cache
def retention_parts() -> EventParts:
    return _unguarded(Aspect.RETENTION)


@cache
def control_parts(aspect: Aspect) -> EventParts:
    """A control only rules set (governor.controls): its handler's parts, kept for the container's life."""
    return _unguarded(aspect)


# The Lambda entry points: one per event handler the stack deploys (a rule's control deploys its own).
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def subscribe_log_group(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(event, context, subscription_parts, Aspect.SUBSCRIPTION)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def set_retention(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(event, context, retention_parts, Aspect.RETENTION)


def _control_entry(aspect_of: Callable[[], Aspect]) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    """A Lambda entry point governing the control ``aspect_of`` answers, on its first invocation."""
    @logger.inject_lambda_context(clear_state=True)
    @metrics.log_metrics
    def entry(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        aspect = aspect_of()
        return handle(event, context, lambda: control_parts(aspect), aspect)
    return entry


def control_aspect(environ: Mapping[str, str]) -> Aspect:
    """The control a ``govern`` function governs: its GOVERNOR_ASPECT, which the stack sets from governor.controls."""
    value = environ.get(ENV_ASPECT, "")
    ruled = [c.aspect for c in REGISTRY if c.rule_only]
    if value not in ruled:
        raise ConfigError(f"{ENV_ASPECT}: expected the aspect of a control only rules set, one of {', '.join(ruled)}; got {value!r} "
                          "(the stack sets it: redeploy it)")
    return Aspect(value)


#: Every control only rules set (governor.controls): one entry point, the control named by the function's GOVERNOR_ASPECT.
govern = _control_entry(lambda: control_aspect(os.environ))


def entry_for(aspect: str) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    """``govern`` with its aspect fixed, as a function with GOVERNOR_ASPECT set runs it (tests, the demo)."""
    return _control_entry(lambda: Aspect(aspect))


def handle(event: Any, context: Any, parts: Callable[[], EventParts], aspect: Aspect) -> dict[str, Any]:
    if isinstance(event, Mapping) and isinstance(event.get("Records"), list):
        return handle_queue_batch(event["Records"], context, parts, aspect)
    if aspect is Aspect.SUBSCRIPTION:
        _guard_afresh([event], parts, origin_of(context))
    return handle_log_group_event(event, parts, aspect, origin=origin_of(context), context=context)


def _guard_afresh(events: list[Any], parts: Callable[[], EventParts], origin: tuple[str, str] | None) -> None:
    """The guard reads the destination function's LoggingConfig now, once for the batch (#26), when any of its events may
    subscribe a group (or decide the shipping path's). No look-up a container made before is trusted: a CreateLogGroup of
    the destination's new group usually comes before its UpdateFunctionConfiguration record, and a stale guard would
    subscribe it and replay its first lines into the destination itself. A look-up that fails is not made again in the
    batch: each record that needs the guard fails with its error (and comes back), as it would have alone."""
    if not any(_may_subscribe(event, origin) for event in events):
        return
    try:
        parts().governor.refresh_policy()
    except Exception as error:
        logger.warning("the guard could not read the destination's logging configuration: the batch's records that need it fail",
                       extra={"error": str(error)})


def _may_subscribe(event: Any, origin: tuple[str, str] | None) -> bool:
    if is_account_policy_call(event) or is_destination_call(event):
        return True
    try:
        parse_log_group_call(event, GROUP_CALLS_BY_ASPECT[Aspect.SUBSCRIPTION.value], origin=origin)
    except IgnoredEvent:
        return False
    return True


def origin_of(context: Any) -> tuple[str, str] | None:
    """(account, region) of the function, from the ARN Lambda invoked it by: the only groups it governs."""
    arn = getattr(context, "invoked_function_arn", None)
    parts = arn.split(":") if isinstance(arn, str) else []
    return (parts[4], parts[3]) if len(parts) >= 7 and parts[3] and parts[4] else None


class _NotStarted(Exception):
    """A record left for the next invocation: too little time was left to start it (it goes back to the queue)."""


def handle_queue_batch(records: list[Any], context: Any, parts: Callable[[], EventParts], aspect: Aspect) -> dict[str, Any]:
    """A batch from the handler's queue; answers the partial batch response the event source mapping reads, through
    Powertools' BatchProcessor. Its groups are looked up together first (``_look_up``); a record then looks its group up
    alone only when that look-up did not answer for it. A record not started for lack of time goes back to the queue."""
    # SQS always sends records with a string messageId; a hand-made batch may not, and the loop before Powertools took
    # those too: a record is given one (its place in the batch), and what is no record at all is read as an event alone.
    records, strays = _records(records)
    events = {id(record): _body(record) for record in records}
    for stray in strays:
        events[id(stray)] = _body(stray)
    looked_up = None
    if context.get_remaining_time_in_millis() >= RECORD_MARGIN_MS:
        if aspect is Aspect.SUBSCRIPTION:
            _guard_afresh(list(events.values()), parts, origin_of(context))
        looked_up = _look_up(list(events.values()), parts, aspect, origin_of(context))
    returned = 0

    def handle_record(record: SQSRecord) -> None:
        nonlocal returned
        if context.get_remaining_time_in_millis() < RECORD_MARGIN_MS:
            returned += 1
            raise _NotStarted()
        logger.remove_keys(_RECORD_KEYS)
        logger.append_keys(messageId=record.message_id)
        # logged and counted where it failed; an exception makes the record a batch item failure
        handle_log_group_event(events[id(record.raw_event)], parts, aspect, origin=origin_of(context), context=context,
                               looked_up=looked_up, receive_count=_receive_count(record.raw_event))

    for stray in strays:  # no messageId to return it by: it is handled (an unusable event is finished with a reason)
        try:
            handle_log_group_event(events[id(stray)], parts, aspect, origin=origin_of(context), context=context, looked_up=looked_up,
                                   receive_count=1)
        except Exception:  # noqa: BLE001  (logged and counted where it failed)
            pass
    if not records:  # Powertools refuses an empty batch
        return {"batchItemFailures": []}
    # A whole batch can go back to the queue (time short, or every record refused): that is a partial response too,
    # never the invocation's error (which would alarm HandlerErrors for a batch SQS simply delivers again).
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    with _quiet_batch_logs():
        answer = process_partial_response(event={"Records": records}, record_handler=handle_record, processor=processor, context=context)
    logger.remove_keys(_RECORD_KEYS)
    if returned:
        logger.info("time is short: the rest of the batch goes back to the queue", extra={"returned": returned})
        metrics.add_metric(name="ReturnedToQueue", unit=MetricUnit.Count, value=returned)
    return dict(answer)


def _records(records: list[Any]) -> tuple[list[dict[str, Any]], list[Any]]:
    """The batch's records, each with a string messageId (SQS's own, or its place in the batch), and what is no record."""
    found, strays = [], []
    for index, record in enumerate(records):
        if not isinstance(record, Mapping):
            strays.append(record)
            continue
        message_id = record.get("messageId")
        found.append(record if isinstance(message_id, str) else {**record, "messageId": str(index if message_id is None else message_id)})
    return found, strays


@contextmanager
def _quiet_batch_logs() -> Iterator[None]:
    """Powertools logs each failed record with its traceback; the handler has logged it already, once, with its reason."""
    batch_logger = logging.getLogger("aws_lambda_powertools.utilities.batch.base")
    level = batch_logger.level
    batch_logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        batch_logger.setLevel(level)


def _receive_count(record: Any) -> int:
    """How many times SQS has delivered the message, this time included (1 when it does not say)."""
    attributes = record.get("attributes") if isinstance(record, Mapping) else None
    try:
        return max(1, int(attributes.get("ApproximateReceiveCount", 1))) if isinstance(attributes, Mapping) else 1
    except (TypeError, ValueError):
        return 1


def _body(record: Any) -> Any:
    """The EventBridge event a queue message carries (None when it carries none)."""
    body = record.get("body") if isinstance(record, Mapping) else None
    try:
        return json.loads(body) if isinstance(body, str) else None
    except ValueError:
        return None


def _look_up(events: list[Any], parts: Callable[[], EventParts], aspect: Aspect, origin: tuple[str, str] | None) -> LookedUp | None:
    """The batch's groups at once. A group with a tag change in the batch is left to be looked up alone (the
    tagging API may not show a change made seconds ago; ListTagsForResource does). A look-up that fails costs
    nothing but its call: every record then looks its group up alone, as without it."""
    calls = []
    for event in events:
        try:
            calls.append(parse_log_group_call(event, GROUP_CALLS_BY_ASPECT[aspect.value], origin=origin))
        except IgnoredEvent:
            continue
    retagged = {call.log_group_name for call in calls if call.is_tag_change}
    names = {call.log_group_name for call in calls} - retagged
    if not names:
        return None
    try:
        return parts().governor.look_up(names)
    except Exception as error:
        logger.warning("the batch's bulk look-up failed: each group is looked up alone", extra={"error": str(error), "groups": len(names)})
        return None


def handle_log_group_event(event: Any, parts: Callable[[], EventParts], aspect: Aspect, *,
                           origin: tuple[str, str] | None = None, context: Any = None, looked_up: LookedUp | None = None,
                           receive_count: int = EVENT_MAX_RECEIVE_COUNT) -> dict[str, Any]:
    """``parts`` is a factory, so a malformed event is finished without building anything. ``origin``:
    the function's (account, region); a record of any other is ignored. ``looked_up``: the batch's bulk look-up.
    ``receive_count``: the SQS delivery this is (an event invoked alone has no other coming)."""
    if aspect is Aspect.SUBSCRIPTION and is_account_policy_call(event):
        return _account_policy_event(event, parts, origin)
    if aspect is Aspect.SUBSCRIPTION and is_destination_call(event):
        return _destination_event(event, parts, origin)
    try:
        call = parse_log_group_call(event, GROUP_CALLS_BY_ASPECT[aspect.value], origin=origin)
        if call.event_name != "CreateLogGroup" and parts().drift.is_own(call):
            raise IgnoredEvent("own-call", f"{call.event_name} by the governor's own role {call.principal}")
    except IgnoredEvent as ignored:
        return _ignored(ignored)

    logger.append_keys(logGroupName=call.log_group_name, eventId=call.event_id, eventName=call.event_name, principal=call.principal)
    try:
        handler = parts()
        if handler.keeper is not None:
            outcome = _account_policy_outcome(handler, call.log_group_name, looked_up=looked_up, known_tags=call.created_with_tags)
        else:
            outcome = handler.governor.govern_by_name(call.log_group_name, aspect, before_write=handler.drift.before_write(call, aspect),
                                                      orphaned=handler.orphaned, looked_up=looked_up, known_tags=call.created_with_tags)
        if outcome.reason == Reason.SENDER_ROLE_NOT_ASSUMABLE.value and receive_count < EVENT_MAX_RECEIVE_COUNT:
            # A sender role a StackSet created with these functions can take minutes to propagate: the queue's redeliveries
            # ask again; the last one records the conflict, which alarms with its fix.
            raise RetryLater(f"{outcome.detail} (delivery {receive_count} of {EVENT_MAX_RECEIVE_COUNT}: asked again later)")
        if handler.drift.repaired(call, outcome):
            metrics.add_metric(name=metric_names.DRIFT_REPAIRED, unit=MetricUnit.Count, value=1)
        replay = _replay(handler, outcome)
    except RetryLater as later:
        logger.warning(f"{aspect.value}: AWS refused it for now; the event is retried", extra={"detail": str(later)})
        raise
    except DestinationUnavailable as error:
        # Every new group would meet this: alarm now, and keep the event to govern once it is fixed.
        logger.exception(f"{aspect.value}: the destination refused the subscription; fix the destination (the event is retried)",
                         extra={"error": str(error)})
        metrics.add_metric(name=DESTINATION_ERRORS_METRIC, unit=MetricUnit.Count, value=1)
        metrics.add_metric(name=ERRORS_METRIC, unit=MetricUnit.Count, value=1)
        raise
    except Exception:
        # Throttling past botocore's retries, OperationAbortedException, AccessDenied: fail so the
        # event is retried and, after its retries, lands in the dead-letter queue.
        logger.exception(f"{aspect.value}: failed; the event is retried")
        metrics.add_metric(name=ERRORS_METRIC, unit=MetricUnit.Count, value=1)
        raise
    record_outcome(outcome, logger, metrics)
    return {"status": "done", **outcome.as_dict(), **({"replay": replay} if replay else {})}


def _replay(handler: EventParts, outcome: Outcome) -> dict[str, Any] | None:
    """What a new group held before the governor's filter (#20): asked for on the replay queue, whose function reads the
    filter's creationTime and the events before it and sends them, so this handler reads the group's filters once (#31
    item 3); for a filter to the organization's archive (no destination this account writes to), the archive is asked to
    pull them (#31). A group older than the replay window is history, not a gap: nothing is asked. A request that cannot be
    sent fails the event: its retry finds the filter in place and asks again (the ledger sends nothing twice)."""
    if (handler.replay_queue is None and handler.pull is None) or not follows(outcome.action, outcome.reason):
        return None
    config = handler.governor.policy.config
    now = wall_clock()
    if not replay_is_due(config.replay_window_minutes, outcome.created_ms, now):
        return {"skipped": "the group is older than replayWindowMinutes: history, not a gap"}
    if handler.replay_queue is None:
        assert handler.pull is not None
        # The archive pulls it (#31): it reads the group through this account's read-only role, by the filter's own
        # creationTime, and writes into its stream with this account as owner.
        handler.pull.request_replay(outcome.log_group, config.filter_name, replay_bounds(config), requested_at_ms=int(now * 1000))
        logger.info("the archive was asked to pull what came before the filter", extra={"replay": {"pullRequested": True}})
        metrics.add_metric(name=metric_names.REPLAY_PULL_REQUESTED, unit=MetricUnit.Count, value=1)
        return {"pullRequested": True}
    handler.replay_queue.send(FirstLines(outcome.log_group, outcome.created_ms, int(now * 1000)).body())
    metrics.add_metric(name=metric_names.REPLAY_QUEUED, unit=MetricUnit.Count, value=1)
    return {"queued": True}


def _destination_event(event: Any, parts: Callable[[], EventParts], origin: tuple[str, str] | None) -> dict[str, Any]:
    """The Lambda destination was created or reconfigured: its own logs may now go to a group the
    governor subscribed before. The guard has read the destination afresh for this batch (``_guard_afresh``, after
    the change this record reports) and the policy core decides that group (its filter removed, or its name listed
    in the account policy): no loop waits for a reconcile."""
    try:
        handler = parts()
        destination = handler.governor.policy.config.destination
        if destination is None or destination.kind is not DestinationKind.LAMBDA:
            raise IgnoredEvent("not-a-lambda-destination", "the destination is not a Lambda function")
        call = parse_destination_call(event, destination.name, origin=origin)
    except IgnoredEvent as ignored:
        return _ignored(ignored)
    logger.append_keys(eventId=call.event_id, eventName=call.event_name, principal=call.principal)
    try:
        policy = handler.governor.policy  # the destination's LoggingConfig, read afresh for this batch (_guard_afresh)
        outcomes = [_account_policy_outcome(handler, name) if handler.keeper is not None
                    else handler.governor.govern_by_name(name, Aspect.SUBSCRIPTION) for name in sorted(policy.guarded_names)]
    except Exception:
        logger.exception("subscription: could not check the shipping path's log groups; the event is retried")
        metrics.add_metric(name=ERRORS_METRIC, unit=MetricUnit.Count, value=1)
        raise
    for outcome in outcomes:
        if outcome.applied:
            metrics.add_metric(name=metric_names.DRIFT_REPAIRED, unit=MetricUnit.Count, value=1)
        record_outcome(outcome, logger, metrics)
    return {"status": "done", "guarded": sorted(policy.guarded_names), "outcomes": [o.as_dict() for o in outcomes]}


def _ignored(ignored: IgnoredEvent) -> dict[str, Any]:
    """Retrying cannot fix the event: log it, count it, finish."""
    logger.warning("event ignored", extra={"reason": ignored.reason, "detail": ignored.detail})
    metrics.add_metric(name=IGNORED_EVENTS_METRIC, unit=MetricUnit.Count, value=1)
    return {"status": "ignored", "reason": ignored.reason, "detail": ignored.detail}


def _account_policy_event(event: Any, parts: Callable[[], EventParts], origin: tuple[str, str] | None) -> dict[str, Any]:
    """PutAccountPolicy / DeleteAccountPolicy by someone else: the governor's policy is written back
    from the list it last wrote (the state table), at once, not when the next reconcile finishes."""
    try:
        call = parse_account_policy_call(event, origin=origin)
        handler = parts()
        if handler.keeper is None:
            raise IgnoredEvent("not-account-policy-mode", "subscriptionMode is per-group: the account policy is not the governor's")
        if call.policy_type != POLICY_TYPE or call.policy_name != handler.keeper.name:
            raise IgnoredEvent("not-our-policy", f"{call.event_name} of {call.policy_type} {call.policy_name!r}, not the governor's")
        if call.principal in handler.drift.own_principals:
            raise IgnoredEvent("own-call", f"{call.event_name} by the governor's own role {call.principal}")
    except IgnoredEvent as ignored:
        return _ignored(ignored)
    logger.append_keys(eventId=call.event_id, eventName=call.event_name, principal=call.principal)
    try:
        write = handler.keeper.repair()
    except Exception:
        logger.exception("subscription: could not restore the account policy; the event is retried")
        metrics.add_metric(name=ERRORS_METRIC, unit=MetricUnit.Count, value=1)
        raise
    if write.written:
        logger.warning("the governor's account policy was deleted or changed by another principal: restored",
                       extra={"principal": call.principal, "detail": write.detail})
        metrics.add_metric(name=metric_names.ACCOUNT_POLICY_RESTORED, unit=MetricUnit.Count, value=1)
    decided = Outcome(f"account-policy:{call.policy_name}", Aspect.SUBSCRIPTION, Action.LEAVE, Reason.SHIPPED_BY_ACCOUNT_POLICY.value, "")
    outcome = with_write(decided, write)
    record_outcome(outcome, logger, metrics)
    return {"status": "done", **outcome.as_dict()}


def _account_policy_outcome(handler: EventParts, log_group: str, *, looked_up: LookedUp | None = None,
                            known_tags: Mapping[str, str] | None = None) -> Outcome:
    """subscriptionMode account-policy: the policy core says whether the group must not ship; the
    keeper moves its name into or out of the account policy's NOT IN list (a vanished group goes out)."""
    decided = handler.governor.govern_by_name(log_group, Aspect.SUBSCRIPTION, looked_up=looked_up, known_tags=known_tags)
    write = handler.keeper.place(log_group, listed=decided.reason != LOG_GROUP_GONE and listed(decided))
    if write.size_bytes and not write.refused:
        metrics.add_metric(name=metric_names.SUBSCRIPTION_SELECTION_BYTES, unit=MetricUnit.Bytes, value=write.size_bytes)
    return with_write(decided, write)
