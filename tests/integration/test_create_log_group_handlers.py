"""subscribe-log-group and set-retention, driven through their Lambda entry points with CloudTrail events."""

from __future__ import annotations

import io
import re
import time
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from governor.config import ConfigError, parse_policy_config
from governor.handlers import create_log_group as handlers
from governor.handlers.create_log_group import RECORD_MARGIN_MS, set_retention, subscribe_log_group
from governor.runtime import GUARD_LOOKUP_TTL_S
from localaws.account import LocalAccount
from localaws.events import create_log_group_event, log_group_call_event, sqs_batch
from localaws.lambda_runtime import SimulatedClock, invoke
from tests.conftest import SHIPPER, call, call_failing

FILTER = "log-group-governor"


def test_new_lambda_log_group_is_subscribed_and_retained(account: LocalAccount, shipper_arn: str, configure: Any) -> None:
    account.create_log_group("/aws/lambda/orders-api")
    event = create_log_group_event("/aws/lambda/orders-api")

    subscribed = call(subscribe_log_group, event)
    retained = call(set_retention, event)

    assert subscribed.result["action"] == "subscribe" and subscribed.result["applied"] is True
    assert retained.result["action"] == "set-retention" and retained.result["applied"] is True
    assert account.snapshot("/aws/lambda/orders-api") == {"class": "STANDARD", "retention": 30, "filters": {FILTER: shipper_arn}}
    assert subscribed.metrics()[("Subscribed", None)] == 1
    assert retained.metrics()[("RetentionSet", None)] == 1


def test_every_log_line_names_the_log_group_and_the_outcome_line_the_decision(account: LocalAccount, configure: Any) -> None:
    account.create_log_group("/aws/lambda/orders-api")

    invocation = call(subscribe_log_group, create_log_group_event("/aws/lambda/orders-api"))

    assert invocation.logs, "the handler logged nothing"
    assert all(line["logGroupName"] == "/aws/lambda/orders-api" for line in invocation.logs)
    outcome_line = invocation.logs[-1]
    assert (outcome_line["decision"], outcome_line["reason"], outcome_line["service"]) == ("subscribe", "not-subscribed", "log-group-governor")


def test_replayed_and_duplicate_events_change_nothing_the_second_time(account: LocalAccount, shipper_arn: str, configure: Any) -> None:
    account.create_log_group("/aws/lambda/orders-api")
    event = create_log_group_event("/aws/lambda/orders-api")
    call(subscribe_log_group, event)
    call(set_retention, event)
    writes_before = account.calls["logs.PutSubscriptionFilter"], account.calls["logs.PutRetentionPolicy"]

    again = [call(subscribe_log_group, event), call(set_retention, event)]

    assert [i.result["action"] for i in again] == ["leave", "leave"]
    assert [i.result["reason"] for i in again] == ["filter-compliant", "retention-compliant"]
    assert (account.calls["logs.PutSubscriptionFilter"], account.calls["logs.PutRetentionPolicy"]) == writes_before
    assert account.snapshot("/aws/lambda/orders-api")["filters"] == {FILTER: shipper_arn}


def test_failed_create_call_for_an_existing_group_is_still_governed(account: LocalAccount, shipper_arn: str, configure: Any) -> None:
    # CloudTrail records failed calls too; ResourceAlreadyExists means the group is there to govern.
    account.create_log_group("/ecs/payments")

    invocation = call(subscribe_log_group, create_log_group_event("/ecs/payments", error_code="ResourceAlreadyExistsException"))

    assert invocation.result["action"] == "subscribe"
    assert account.snapshot("/ecs/payments")["filters"] == {FILTER: shipper_arn}


# --- the guard ----------------------------------------------------------------------------------

def test_destination_functions_own_log_group_is_never_subscribed(account: LocalAccount, configure: Any) -> None:
    account.create_log_group(f"/aws/lambda/{SHIPPER}")

    invocation = call(subscribe_log_group, create_log_group_event(f"/aws/lambda/{SHIPPER}"))
    retention = call(set_retention, create_log_group_event(f"/aws/lambda/{SHIPPER}"))

    assert (invocation.result["action"], invocation.result["reason"]) == ("skip", "shipping-path")
    assert account.snapshot(f"/aws/lambda/{SHIPPER}") == {"class": "STANDARD", "retention": 30, "filters": {}}
    assert retention.result["action"] == "set-retention"  # retention on the shipper's own group is harmless
    assert invocation.metrics()[("Skipped", "shipping-path")] == 1


def test_destination_with_a_custom_log_group_in_its_logging_config_is_guarded(account: LocalAccount, configure: Any) -> None:
    custom_shipper = account.create_function("custom-shipper", log_group="/platform/shipper")
    configure(destinationArn=custom_shipper)
    account.create_log_group("/platform/shipper")

    invocation = call(subscribe_log_group, create_log_group_event("/platform/shipper"))

    assert (invocation.result["action"], invocation.result["reason"]) == ("skip", "shipping-path")
    assert account.snapshot("/platform/shipper")["filters"] == {}


def test_a_destination_re_pointed_at_a_subscribed_group_loses_that_loop_at_once(account: LocalAccount, configure: Any) -> None:
    """The group was subscribed before the destination wrote to it; its UpdateFunctionConfiguration
    record (named with Lambda's API version) makes the guard look again and the filter go (#18)."""
    from localaws.events import lambda_call_event

    shipper = account.create_function("custom-shipper", log_group="/platform/log-shipper")
    configure(destinationArn=shipper)
    account.create_log_group("/platform/shared-logs")
    assert call(subscribe_log_group, create_log_group_event("/platform/shared-logs")).result["action"] == "subscribe"

    account.set_function_log_group("custom-shipper", "/platform/shared-logs")  # now the shipper writes there: a loop
    invocation = call(subscribe_log_group, lambda_call_event("UpdateFunctionConfiguration20150331v2", "custom-shipper",
                                                             logging_group="/platform/shared-logs"))

    [removed] = [o for o in invocation.result["outcomes"] if o["logGroup"] == "/platform/shared-logs"]
    assert (removed["action"], removed["reason"], removed["applied"]) == ("remove-filter", "shipping-path", True)
    assert account.snapshot("/platform/shared-logs")["filters"] == {}
    assert invocation.metrics()[("DriftRepaired", None)] == 1
    # Another function's change is not the destination's.
    other = call(subscribe_log_group, lambda_call_event("UpdateFunctionConfiguration20150331v2", "orders-api"))
    assert other.result["reason"] == "not-the-destination"


def test_a_warm_container_sees_the_destinations_new_log_group(account: LocalAccount, configure: Any,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The destination's LoggingConfig changes after deploy; a container that already ran must not
    subscribe the new group to its own shipper (the loop the guard exists for)."""
    clock = SimulatedClock()
    monkeypatch.setattr(handlers, "clock", clock.monotonic)
    shipper = account.create_function("custom-shipper", log_group="/platform/log-shipper")
    configure(destinationArn=shipper)
    account.create_log_group("/aws/lambda/orders-api")
    assert call(subscribe_log_group, create_log_group_event("/aws/lambda/orders-api")).result["action"] == "subscribe"

    account.set_function_log_group("custom-shipper", "/platform/log-shipper-v2")
    account.create_log_group("/platform/log-shipper-v2")
    clock.sleep(GUARD_LOOKUP_TTL_S)  # the same container, a moment later
    invocation = call(subscribe_log_group, create_log_group_event("/platform/log-shipper-v2"))

    assert (invocation.result["action"], invocation.result["reason"]) == ("skip", "shipping-path")
    assert account.snapshot("/platform/log-shipper-v2")["filters"] == {}


def test_issue26_a_warm_container_never_subscribes_the_destinations_new_group_before_its_update_record(
        account: LocalAccount, configure: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The destination is re-pointed at a new group and writes its first lines there; CreateLogGroup of that group comes
    before the function's UpdateFunctionConfiguration record, in one batch, to a container whose guard looked the
    destination up a moment ago. The batch reads the LoggingConfig afresh (once): the group is never subscribed, nothing
    of it is replayed into the destination itself."""
    from localaws.events import lambda_call_event

    clock = SimulatedClock()
    monkeypatch.setattr(handlers, "clock", clock.monotonic)
    shipper = account.create_function("custom-shipper", log_group="/platform/log-shipper")
    configure(destinationArn=shipper)
    account.create_log_group("/aws/lambda/orders-api")
    assert call(subscribe_log_group, create_log_group_event("/aws/lambda/orders-api")).result["action"] == "subscribe"  # warm

    account.set_function_log_group("custom-shipper", "/platform/log-shipper-v2")
    account.logs.create_log_group(logGroupName="/platform/log-shipper-v2")  # the shipper's first invocation after the update
    account.logs.create_log_stream(logGroupName="/platform/log-shipper-v2", logStreamName="first")
    account.logs.put_log_events(logGroupName="/platform/log-shipper-v2", logStreamName="first",
                                logEvents=[{"timestamp": int(time.time() * 1000), "message": "START RequestId: 1"}])
    for name in ("/aws/lambda/fn-a", "/aws/lambda/fn-b"):
        account.create_log_group(name)
    account.calls.clear()
    batch = sqs_batch([create_log_group_event("/platform/log-shipper-v2"), create_log_group_event("/aws/lambda/fn-a"),
                       create_log_group_event("/aws/lambda/fn-b"),
                       lambda_call_event("UpdateFunctionConfiguration20150331v2", "custom-shipper", logging_group="/platform/log-shipper-v2")])

    invocation = call(subscribe_log_group, batch)

    assert invocation.result == {"batchItemFailures": []}
    assert account.calls["logs.PutSubscriptionFilter"] == 2  # fn-a and fn-b; the shipper's new group never, not even for a moment
    assert account.calls["logs.DeleteSubscriptionFilter"] == 0 and account.calls["lambda.Invoke"] == 0  # nothing replayed into it
    assert account.snapshot("/platform/log-shipper-v2")["filters"] == {}
    assert account.calls["lambda.GetFunctionConfiguration"] == 1  # one look-up for the batch, not one per record
    decided = {(line["decision"], line["reason"]) for line in invocation.logs if line.get("logGroupName") == "/platform/log-shipper-v2"
               and line.get("decision")}
    assert decided == {("skip", "shipping-path")}  # its CreateLogGroup, and the update record's check of the shipping path


def test_configured_shipping_path_names_and_prefixes_are_guarded(account: LocalAccount, configure: Any) -> None:
    configure(shippingPathLogGroups=["/aws/kinesisfirehose/logs-to-opensearch", "/aws/lambda/log-transform-*"])
    for name in ("/aws/kinesisfirehose/logs-to-opensearch", "/aws/lambda/log-transform-json"):
        account.create_log_group(name)

        invocation = call(subscribe_log_group, create_log_group_event(name))

        assert (invocation.result["action"], invocation.result["reason"]) == ("skip", "shipping-path"), name
        assert account.snapshot(name)["filters"] == {}


# --- exclusions and classes ---------------------------------------------------------------------

@pytest.mark.parametrize(
    ("name", "tags", "reason"),
    [
        ("/aws/lambda/sandbox-thing", None, "excluded-prefix"),
        ("/app/debug-2026", None, "excluded-pattern"),
        ("/aws/lambda/noisy", {"log-group-governor:opt-out": "true"}, "excluded-tag"),
    ],
)
def test_excluded_groups_are_left_alone_with_a_reason(account: LocalAccount, configure: Any, name: str, tags: dict | None, reason: str) -> None:
    configure(excludePrefixes=["/aws/lambda/sandbox-"], excludePatterns=[r"/debug-\d{4}$"])
    account.create_log_group(name, tags=tags)

    results = [call(handler, create_log_group_event(name)).result for handler in (subscribe_log_group, set_retention)]

    assert [(r["action"], r["reason"]) for r in results] == [("skip", reason), ("skip", reason)]
    assert account.snapshot(name) == {"class": "STANDARD", "retention": None, "filters": {}}


def test_infrequent_access_group_gets_retention_but_no_subscription(account: LocalAccount, configure: Any) -> None:
    account.create_log_group("/archive/audit", log_group_class="INFREQUENT_ACCESS")
    event = create_log_group_event("/archive/audit", log_group_class="INFREQUENT_ACCESS")

    subscribed, retained = call(subscribe_log_group, event), call(set_retention, event)

    assert (subscribed.result["action"], subscribed.result["reason"]) == ("skip", "unsupported-class")
    assert "INFREQUENT_ACCESS" in subscribed.result["detail"]
    assert retained.result["action"] == "set-retention"
    assert account.snapshot("/archive/audit") == {"class": "INFREQUENT_ACCESS", "retention": 30, "filters": {}}


def test_delivery_group_is_left_alone(account: LocalAccount, configure: Any) -> None:
    account.create_log_group("/aws/vendedlogs/delivery", log_group_class="DELIVERY")
    event = create_log_group_event("/aws/vendedlogs/delivery")

    results = [call(h, event).result for h in (subscribe_log_group, set_retention)]

    assert [(r["action"], r["reason"]) for r in results] == [("skip", "unsupported-class"), ("skip", "fixed-retention-class")]
    assert account.calls["logs.PutSubscriptionFilter"] == account.calls["logs.PutRetentionPolicy"] == 0


def test_class_is_looked_up_not_taken_from_the_event(account: LocalAccount, configure: Any) -> None:
    account.create_log_group("/archive/cold", log_group_class="INFREQUENT_ACCESS")

    invocation = call(subscribe_log_group, create_log_group_event("/archive/cold", log_group_class="STANDARD"))

    assert invocation.result["reason"] == "unsupported-class"


# --- foreign filters ----------------------------------------------------------------------------

def test_full_group_is_reported_as_a_conflict_and_foreign_filters_stay(account: LocalAccount, configure: Any) -> None:
    vendor = account.create_function("vendor-forwarder")
    siem = account.create_stream("siem")
    account.create_log_group("/aws/lambda/checkout", filters=[("vendor", vendor), ("siem", siem)])

    invocation = call(subscribe_log_group, create_log_group_event("/aws/lambda/checkout"))

    assert (invocation.result["action"], invocation.result["reason"]) == ("conflict", "no-free-slot")
    assert "'vendor'" in invocation.result["detail"] and "'siem'" in invocation.result["detail"]
    assert account.snapshot("/aws/lambda/checkout")["filters"] == {"vendor": vendor, "siem": siem}
    assert invocation.metrics()[("Conflicts", "no-free-slot")] == 1
    assert invocation.logs[-1]["level"] == "WARNING"


def test_one_foreign_filter_leaves_a_slot_for_ours(account: LocalAccount, shipper_arn: str, configure: Any) -> None:
    vendor = account.create_function("vendor-forwarder")
    account.create_log_group("/aws/lambda/checkout", filters=[("vendor", vendor)])

    invocation = call(subscribe_log_group, create_log_group_event("/aws/lambda/checkout"))

    assert invocation.result["action"] == "subscribe"
    assert account.snapshot("/aws/lambda/checkout")["filters"] == {"vendor": vendor, FILTER: shipper_arn}


def test_our_filter_with_an_old_pattern_is_updated_in_place(account: LocalAccount, shipper_arn: str, configure: Any) -> None:
    account.create_log_group("/aws/lambda/checkout", filters=[(FILTER, shipper_arn)])
    configure(filterPattern="?ERROR ?WARN")

    invocation = call(subscribe_log_group, create_log_group_event("/aws/lambda/checkout"))

    assert invocation.result["action"] == "update-filter"
    current = account.logs.describe_subscription_filters(logGroupName="/aws/lambda/checkout")["subscriptionFilters"]
    assert [(f["filterName"], f["filterPattern"]) for f in current] == [(FILTER, "?ERROR ?WARN")]


def test_another_filter_already_shipping_to_the_destination_is_enough(account: LocalAccount, shipper_arn: str, configure: Any) -> None:
    account.create_log_group("/aws/lambda/checkout", filters=[("hand-made", shipper_arn)])

    invocation = call(subscribe_log_group, create_log_group_event("/aws/lambda/checkout"))

    assert (invocation.result["action"], invocation.result["reason"]) == ("leave", "shipped-by-other-filter")
    assert account.calls["logs.PutSubscriptionFilter"] == 1  # the one the test made


def test_kinesis_destination_is_subscribed_with_its_role(account: LocalAccount, configure: Any) -> None:
    stream, role = account.create_stream("central-logs"), account.logs_delivery_role()
    configure(destinationArn=stream, destinationRoleArn=role)
    account.create_log_group("/ecs/payments")

    call(subscribe_log_group, create_log_group_event("/ecs/payments"))

    [subscription] = account.logs.describe_subscription_filters(logGroupName="/ecs/payments")["subscriptionFilters"]
    assert (subscription["destinationArn"], subscription["roleArn"]) == (stream, role)


# --- retention ----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("current", "settings", "expected_action", "expected_retention"),
    [
        (None, {}, "set-retention", 30),
        (7, {}, "set-retention", 30),
        (30, {}, "leave", 30),
        (365, {}, "leave", 365),
        (365, {"shortenRetention": True}, "set-retention", 30),
        (None, {"retentionOverrides": {"/aws/lambda/prod-": 400}}, "set-retention", 400),
        (None, {"retentionOverrides": {"/aws/lambda/": None}}, "leave", None),
        (None, {"defaultRetentionDays": None}, "leave", None),
    ],
)
def test_retention(account: LocalAccount, configure: Any, current: int | None, settings: dict, expected_action: str, expected_retention: int | None) -> None:
    configure(**settings)
    account.create_log_group("/aws/lambda/prod-orders", retention_days=current)

    invocation = call(set_retention, create_log_group_event("/aws/lambda/prod-orders"))

    assert invocation.result["action"] == expected_action
    assert account.snapshot("/aws/lambda/prod-orders")["retention"] == expected_retention


# --- events that cannot be governed -------------------------------------------------------------

def test_group_deleted_before_we_got_to_it_is_finished_not_retried(account: LocalAccount, configure: Any) -> None:
    invocation = call(subscribe_log_group, create_log_group_event("/aws/lambda/short-lived"))

    assert (invocation.result["action"], invocation.result["reason"]) == ("skip", "log-group-gone")
    assert invocation.metrics()[("Skipped", "log-group-gone")] == 1


def _without(path: tuple[str, ...]) -> dict:
    event = create_log_group_event("/aws/lambda/x")
    target = event
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return event


def _with(path: tuple[str, ...], value: Any) -> dict:
    event = create_log_group_event("/aws/lambda/x")
    target = event
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return event


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (_with(("detail", "eventName"), "CreateLogStream"), "not-for-this-handler"),
        (_with(("detail-type",), "Scheduled Event"), "not-a-log-group-call"),
        (_with(("detail", "eventSource"), "s3.amazonaws.com"), "not-a-log-group-call"),
        (_without(("detail",)), "malformed-event"),
        (_with(("detail",), "CreateLogGroup"), "malformed-event"),
        (_without(("detail", "requestParameters")), "malformed-event"),
        (_with(("detail", "requestParameters"), None), "malformed-event"),
        (_without(("detail", "requestParameters", "logGroupName")), "malformed-event"),
        (_with(("detail", "requestParameters", "logGroupName"), 42), "malformed-event"),
        (_with(("detail", "requestParameters", "logGroupName"), ""), "malformed-event"),
        (_with(("detail", "requestParameters", "logGroupName"), "x" * 513), "malformed-event"),
        ([], "malformed-event"),
        (None, "malformed-event"),
        ("CreateLogGroup", "malformed-event"),
    ],
)
def test_unusable_events_are_logged_and_finished(account: LocalAccount, configure: Any, event: Any, reason: str) -> None:
    for handler in (subscribe_log_group, set_retention):
        invocation = call(handler, event)

        assert invocation.result["status"] == "ignored" and invocation.result["reason"] == reason
        assert invocation.logs[-1]["level"] == "WARNING"
        assert invocation.metrics()[("IgnoredEvents", None)] == 1
    assert account.calls["logs.DescribeLogGroups"] == 0


# --- failures that must be retried --------------------------------------------------------------

@pytest.mark.parametrize("code", ["ThrottlingException", "OperationAbortedException", "ServiceUnavailableException"])
def test_retryable_errors_fail_the_invocation_so_lambda_retries(account: LocalAccount, configure: Any, code: str) -> None:
    account.create_log_group("/aws/lambda/orders-api")
    _answer_with_error(account, "PutSubscriptionFilter", code)

    error, invocation = call_failing(subscribe_log_group, create_log_group_event("/aws/lambda/orders-api"))

    assert isinstance(error, ClientError) and error.response["Error"]["Code"] == code
    assert invocation.metrics()[("Errors", None)] == 1
    assert invocation.logs[-1]["level"] == "ERROR"


def test_missing_configuration_fails_with_a_message_that_says_what_to_set(account: LocalAccount, configure: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    configure(defaultRetentionDays=45)

    error, _ = call_failing(set_retention, create_log_group_event("/aws/lambda/orders-api"))

    assert isinstance(error, ConfigError)
    assert "GOVERNOR_CONFIG: defaultRetentionDays: 45" in str(error) and "1, 3, 5, 7, 14, 30" in str(error)


def _answer_with_error(account: LocalAccount, operation: str, code: str) -> None:
    """Make every ``operation`` call answer ``code``, as AWS does under load."""
    import boto3

    def answer(**_: Any) -> tuple[Any, dict]:
        return _HttpResponse(), {"Error": {"Code": code, "Message": "simulated"}, "ResponseMetadata": {"HTTPStatusCode": 400}}

    boto3.DEFAULT_SESSION.events.register_first(f"before-call.logs.{operation}", answer)


class _HttpResponse:
    status_code = 400
    headers: dict = {}
    raw = None
    content = b""
    text = ""


def test_log_groups_the_stack_marks_as_the_shipping_path_are_guarded(account: LocalAccount, configure: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # What the stack sets when ship-logs is the destination: its own log group and its archive's error log group.
    monkeypatch.setenv("GOVERNOR_PROTECTED_LOG_GROUPS", '["LogGroupGovernor-ShipLogsFunctionLogs1A2B3C", "LogGroupGovernor-ArchiveDeliveryErrors9Z8Y"]')
    configure()
    account.create_log_group("LogGroupGovernor-ShipLogsFunctionLogs1A2B3C")

    invocation = call(subscribe_log_group, create_log_group_event("LogGroupGovernor-ShipLogsFunctionLogs1A2B3C"))

    assert (invocation.result["action"], invocation.result["reason"]) == ("skip", "shipping-path")


def test_a_malformed_protected_list_fails_with_a_message(account: LocalAccount, configure: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOVERNOR_PROTECTED_LOG_GROUPS", '{"not": "a list"}')
    configure()

    error, _ = call_failing(subscribe_log_group, create_log_group_event("/aws/lambda/x"))

    assert isinstance(error, ConfigError) and "GOVERNOR_PROTECTED_LOG_GROUPS: expected a JSON list" in str(error)


# --- the queue in front of the handlers -----------------------------------------------------------

def test_a_queue_batch_is_governed_and_only_failed_messages_come_back(account: LocalAccount, shipper_arn: str, configure: Any) -> None:
    for name in ("/aws/lambda/a", "/aws/lambda/b"):
        account.create_log_group(name)
    batch = sqs_batch([create_log_group_event("/aws/lambda/a"), {"detail-type": "Scheduled Event", "detail": {}},
                       create_log_group_event("/aws/lambda/b")])
    batch["Records"].append({**batch["Records"][0], "messageId": "not-json", "body": "{not json"})

    invocation = call(subscribe_log_group, batch)

    assert invocation.result == {"batchItemFailures": []}  # an unusable message is finished, not retried
    assert account.snapshot("/aws/lambda/a")["filters"] == account.snapshot("/aws/lambda/b")["filters"] == {FILTER: shipper_arn}
    assert invocation.metrics()[("Subscribed", None)] == 2 and invocation.metrics()[("IgnoredEvents", None)] == 2
    assert {line["logGroupName"] for line in invocation.logs if "logGroupName" in line} == {"/aws/lambda/a", "/aws/lambda/b"}


def test_a_message_that_fails_is_returned_to_the_queue_alone(account: LocalAccount, shipper_arn: str, configure: Any) -> None:
    account.create_log_group("/aws/lambda/a")
    account.create_log_group("/aws/lambda/busy")
    batch = sqs_batch([create_log_group_event("/aws/lambda/busy"), create_log_group_event("/aws/lambda/a")])

    def conflicting_operation(params: dict, **_: Any) -> None:
        if params["logGroupName"] == "/aws/lambda/busy":
            raise ClientError({"Error": {"Code": "OperationAbortedException", "Message": "A conflicting operation is currently in progress"}},
                              "PutSubscriptionFilter")

    boto3.DEFAULT_SESSION.events.register("provide-client-params.logs.PutSubscriptionFilter", conflicting_operation)
    invocation = call(subscribe_log_group, batch)

    assert invocation.result == {"batchItemFailures": [{"itemIdentifier": batch["Records"][0]["messageId"]}]}
    assert account.snapshot("/aws/lambda/a")["filters"] == {FILTER: shipper_arn}
    assert invocation.metrics()[("Errors", None)] == 1


def test_issue28_a_batch_whose_every_message_fails_is_a_partial_response_not_an_error(account: LocalAccount, shipper_arn: str,
                                                                                        configure: Any) -> None:
    """Powertools' BatchProcessor raises when every record fails, unless told not to: the batch goes back to the queue as
    a partial response, and the invocation (its HandlerErrors alarm) does not fail for what SQS delivers again anyway."""
    for name in ("/aws/lambda/busy-1", "/aws/lambda/busy-2"):
        account.create_log_group(name)
    batch = sqs_batch([create_log_group_event("/aws/lambda/busy-1"), create_log_group_event("/aws/lambda/busy-2")])

    def conflicting_operation(params: dict, **_: Any) -> None:
        raise ClientError({"Error": {"Code": "OperationAbortedException", "Message": "A conflicting operation is currently in progress"}},
                          "PutSubscriptionFilter")

    boto3.DEFAULT_SESSION.events.register("provide-client-params.logs.PutSubscriptionFilter", conflicting_operation)
    invocation = call(subscribe_log_group, batch)

    assert invocation.result == {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in batch["Records"]]}
    assert invocation.metrics()[("Errors", None)] == 2


def test_issue28_review_a_hand_made_batch_is_taken_as_the_loop_before_powertools_took_it(account: LocalAccount, shipper_arn: str,
                                                                                          configure: Any) -> None:
    """No messageId, a number for one, something that is no record, an empty batch: each handled, never an invocation error."""
    for name in ("/aws/lambda/a", "/aws/lambda/b", "/aws/lambda/c"):
        account.create_log_group(name)
    batch = sqs_batch([create_log_group_event("/aws/lambda/a"), create_log_group_event("/aws/lambda/b"),
                       create_log_group_event("/aws/lambda/c")])
    del batch["Records"][0]["messageId"]
    batch["Records"][1]["messageId"] = 7
    batch["Records"].insert(2, "junk")

    invocation = call(subscribe_log_group, batch)

    assert invocation.result == {"batchItemFailures": []}
    assert all(account.snapshot(f"/aws/lambda/{n}")["filters"] == {FILTER: shipper_arn} for n in "abc")
    assert call(subscribe_log_group, {"Records": []}).result == {"batchItemFailures": []}


def test_a_batch_stops_taking_messages_before_the_timeout(account: LocalAccount, configure: Any) -> None:
    account.create_log_group("/aws/lambda/a")
    batch = sqs_batch([create_log_group_event("/aws/lambda/a"), create_log_group_event("/aws/lambda/b")])
    out = io.StringIO()

    result = invoke(subscribe_log_group, batch, function_name="governor", out=out, timeout_ms=RECORD_MARGIN_MS - 1)

    assert result == {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in batch["Records"]]}
    assert account.calls["logs.DescribeLogGroups"] == 0


@pytest.mark.parametrize("name", [" leading-space", "/app/*", "/app/tab\there", "/app/ünïcode", "x" * 513])
def test_a_name_aws_would_refuse_is_ignored_with_a_reason(account: LocalAccount, configure: Any, name: str) -> None:
    """CloudTrail records refused CreateLogGroup calls too; moto would accept these names, AWS does not."""
    event = create_log_group_event(name, error_code="InvalidParameterException")

    invocation = call(subscribe_log_group, event)

    assert invocation.result["status"] == "ignored"
    assert invocation.result["reason"] in ("invalid-log-group-name", "malformed-event")
    assert account.calls["logs.DescribeLogGroups"] == 0


def test_a_slot_taken_between_look_up_and_write_is_a_conflict_not_retried(account: LocalAccount, configure: Any) -> None:
    vendor = account.create_function("vendor-forwarder")
    siem = account.create_function("siem-forwarder")
    account.create_log_group("/aws/lambda/checkout", filters=[("vendor", vendor)])
    attempts = []
    raced = []

    def another_tool_takes_the_last_slot(**_: Any) -> None:
        if not raced:
            raced.append(True)
            account.logs.put_subscription_filter(logGroupName="/aws/lambda/checkout", filterName="siem",
                                                 filterPattern="", destinationArn=siem)

    events = boto3.DEFAULT_SESSION.events
    events.register("before-send.cloudwatch-logs.PutSubscriptionFilter", lambda **kw: attempts.append(1))
    events.register("after-call.cloudwatch-logs.DescribeSubscriptionFilters", another_tool_takes_the_last_slot)

    invocation = call(subscribe_log_group, create_log_group_event("/aws/lambda/checkout"))

    assert (invocation.result["action"], invocation.result["reason"]) == ("conflict", "no-free-slot")
    assert len(attempts) == 1  # LimitExceededException is not retried as a throttle
    assert invocation.metrics()[("Conflicts", "no-free-slot")] == 1


def test_issue27_limit_exceeded_on_a_group_with_a_free_slot_is_asked_again_not_a_conflict(account: LocalAccount, configure: Any) -> None:
    """#27 item 7: AWS has answered "LimitExceededException: Resource limit exceeded." from PutSubscriptionFilter under load
    on a group with a free slot (SumoLogic/sumologic-aws-lambda#109). The governor counts the filters before it calls the
    group full: with a slot free the event fails and comes back, and its retry subscribes the group."""
    account.create_log_group("/aws/lambda/checkout")
    refused: list[int] = []

    def under_load(**_: Any) -> Any:  # a test instrument (as localaws G8): AWS's answer on the first attempt
        if not refused:
            refused.append(1)
            return (type("Http", (), {"status_code": 400, "headers": {}})(),
                    {"Error": {"Code": "LimitExceededException", "Message": "Resource limit exceeded."}, "ResponseMetadata": {"HTTPStatusCode": 400}})
        return None

    boto3.DEFAULT_SESSION.events.register("before-call.cloudwatch-logs.PutSubscriptionFilter", under_load)
    batch = sqs_batch([create_log_group_event("/aws/lambda/checkout")])

    first = call(subscribe_log_group, batch)
    again = call(subscribe_log_group, batch)

    assert first.result["batchItemFailures"] and first.metrics().get(("Conflicts", "no-free-slot")) is None
    assert again.result == {"batchItemFailures": []}
    [ours] = account.logs.describe_subscription_filters(logGroupName="/aws/lambda/checkout")["subscriptionFilters"]
    assert ours["filterName"] == "log-group-governor"


def test_a_missing_destination_is_an_error_that_alarms_not_a_gone_group(account: LocalAccount, configure: Any) -> None:
    configure(destinationArn="arn:aws:logs:eu-west-1:123456789012:destination:deleted-central-destination")
    account.create_log_group("/aws/lambda/orders")

    error, invocation = call_failing(subscribe_log_group, create_log_group_event("/aws/lambda/orders"))

    assert "deleted-central-destination" in str(error)
    assert invocation.metrics()[("DestinationErrors", None)] == 1 and invocation.metrics()[("Errors", None)] == 1
    assert account.snapshot("/aws/lambda/orders")["filters"] == {}


def test_a_deleted_lambda_destination_is_an_error_too(account: LocalAccount, configure: Any) -> None:
    configure(destinationArn="arn:aws:lambda:eu-west-1:123456789012:function:deleted-shipper")
    account.create_log_group("/aws/lambda/orders")

    batch = sqs_batch([create_log_group_event("/aws/lambda/orders")])
    invocation = call(subscribe_log_group, batch)

    assert invocation.result["batchItemFailures"] == [{"itemIdentifier": batch["Records"][0]["messageId"]}]
    assert invocation.metrics()[("DestinationErrors", None)] == 1


def test_essentials_group_gets_retention_but_no_subscription(account: LocalAccount, configure: Any) -> None:
    account.create_log_group("/essentials/app", log_group_class="ESSENTIALS")
    event = create_log_group_event("/essentials/app", log_group_class="ESSENTIALS")

    subscribed, retained = call(subscribe_log_group, event), call(set_retention, event)

    assert (subscribed.result["action"], subscribed.result["reason"]) == ("skip", "unsupported-class")
    assert retained.result["action"] == "set-retention"
    assert account.snapshot("/essentials/app") == {"class": "ESSENTIALS", "retention": 30, "filters": {}}
    assert account.calls["logs.PutSubscriptionFilter"] == 0


# --- a batch's groups looked up at once (#20, item 4) --------------------------------------------

OPT_OUT = {"log-group-governor:opt-out": "true"}


def test_a_batch_is_looked_up_in_one_call_of_each_kind_not_one_per_group(account: LocalAccount, shipper_arn: str, configure: Any) -> None:
    names = [f"/aws/lambda/fn-{i:02d}" for i in range(12)]
    for name in names:
        account.create_log_group(name, tags=OPT_OUT if name.endswith("03") else {"team": "orders"} if name.endswith("04") else None)
    account.calls.clear()

    invocation = call(subscribe_log_group, sqs_batch([create_log_group_event(name) for name in names]))

    assert invocation.result == {"batchItemFailures": []}
    assert account.calls["logs.DescribeLogGroups"] == 1 and account.calls["resource-groups-tagging-api.GetResources"] == 1
    assert account.calls["logs.ListTagsForResource"] == 0
    subscribed = {name for name in names if account.snapshot(name)["filters"] == {FILTER: shipper_arn}}
    assert subscribed == set(names) - {"/aws/lambda/fn-03"}  # the opted-out group, told apart by the bulk look-up's tags


def test_tags_given_at_creation_count_even_when_the_tagging_api_does_not_show_them_yet(account: LocalAccount, configure: Any) -> None:
    account.create_log_group("/aws/lambda/private", tags=OPT_OUT)
    account.create_log_group("/aws/lambda/public")
    assert account.gaps is not None
    account.gaps.ever_tagged.clear()  # GetResources lags behind the creation: it lists neither group yet
    created = create_log_group_event("/aws/lambda/private")
    created["detail"]["requestParameters"]["tags"] = dict(OPT_OUT)

    call(subscribe_log_group, sqs_batch([created, create_log_group_event("/aws/lambda/public")]))

    assert account.snapshot("/aws/lambda/private")["filters"] == {}
    assert FILTER in account.snapshot("/aws/lambda/public")["filters"]
    assert account.calls["logs.ListTagsForResource"] == 0


def test_a_tag_change_in_the_batch_is_looked_up_alone(account: LocalAccount, configure: Any) -> None:
    """The tagging API may not show a tag added seconds ago; ListTagsForResource does."""
    account.create_log_group("/aws/lambda/a")
    account.create_log_group("/aws/lambda/b")
    account.logs.tag_resource(resourceArn=f"arn:aws:logs:{account.region}:{account.account_id}:log-group:/aws/lambda/a", tags=OPT_OUT)
    account.gaps.ever_tagged.clear()  # not in GetResources yet
    account.calls.clear()

    call(subscribe_log_group, sqs_batch([create_log_group_event("/aws/lambda/a"), create_log_group_event("/aws/lambda/b"),
                                         log_group_call_event("TagResource", "/aws/lambda/a", tags=OPT_OUT)]))

    assert account.calls["logs.ListTagsForResource"] == 2 and account.calls["logs.DescribeLogGroups"] == 3  # b in bulk, a alone twice
    assert account.snapshot("/aws/lambda/a")["filters"] == {}
    assert FILTER in account.snapshot("/aws/lambda/b")["filters"]


def test_a_group_named_twice_in_a_batch_is_looked_up_alone_the_second_time(account: LocalAccount, configure: Any) -> None:
    account.create_log_group("/aws/lambda/a")
    account.calls.clear()
    batch = sqs_batch([create_log_group_event("/aws/lambda/a"), log_group_call_event("PutRetentionPolicy", "/aws/lambda/a", retentionInDays=1)])
    account.logs.put_retention_policy(logGroupName="/aws/lambda/a", retentionInDays=1)

    invocation = call(set_retention, batch)

    assert invocation.result == {"batchItemFailures": []}
    assert account.calls["logs.DescribeLogGroups"] == 2 and account.calls["logs.PutRetentionPolicy"] == 2  # 1 by the test, 1 by the governor
    assert account.snapshot("/aws/lambda/a")["retention"] == 30


def test_a_bulk_look_up_that_fails_leaves_each_group_to_be_looked_up_alone(account: LocalAccount, shipper_arn: str, configure: Any) -> None:
    for name in ("/aws/lambda/a", "/aws/lambda/b"):
        account.create_log_group(name)
    account.calls.clear()

    def refused(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not authorized to perform: tag:GetResources"}}, "GetResources")

    boto3.DEFAULT_SESSION.events.register("provide-client-params.resource-groups-tagging-api.GetResources", refused)
    invocation = call(subscribe_log_group, sqs_batch([create_log_group_event("/aws/lambda/a"), create_log_group_event("/aws/lambda/b")]))

    assert invocation.result == {"batchItemFailures": []}
    assert all(account.snapshot(n)["filters"] == {FILTER: shipper_arn} for n in ("/aws/lambda/a", "/aws/lambda/b"))
    assert account.calls["logs.ListTagsForResource"] == 2
    assert any("bulk look-up failed" in line.get("message", "") for line in invocation.logs)


# --- issue 26: one answer per group ------------------------------------------------------------------

def _redelivered(batch: dict) -> dict:
    """The same SQS messages again (the queue's at-least-once delivery): same ids and bodies, received twice."""
    return {"Records": [{**record, "attributes": {**record["attributes"], "ApproximateReceiveCount": "2"}} for record in batch["Records"]]}


def test_issue26_a_create_log_group_delivered_twice_gets_one_retention_and_a_rule_beyond_the_clamp_is_refused(
        account: LocalAccount, configure: Any) -> None:
    clamp = {"retentionMode": "clamp", "retentionMinDays": 1, "retentionMaxDays": 400, "defaultRetentionDays": 30}
    audit = {"name": "audit", "match": {"namePrefixes": ["/audit/"]}, "retention": {"days": 3653}}
    account.create_log_group("/audit/trail")
    account.create_log_group("/aws/lambda/orders")
    batch = sqs_batch([create_log_group_event("/audit/trail"), create_log_group_event("/aws/lambda/orders")])

    # A rule that inherits retentionMode clamp yet asks for more than retentionMaxDays has no answer that holds: it set 3653 on
    # the first delivery and the clamp's 400 on the redelivery. It is refused, naming the key, before any group is touched.
    with pytest.raises(ConfigError, match=re.escape("rules[0] 'audit'.retention.days: 3653 days lies outside retentionMinDays.."
                                                   "retentionMaxDays (1..400)")):
        parse_policy_config({**configure(**clamp, rules=[audit])})
    refused = call(set_retention, batch)
    assert refused.result == {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in batch["Records"]]}
    assert all("rules[0] 'audit'.retention.days" in line.get("exception", "") for line in refused.logs if line["level"] == "ERROR")
    assert account.calls["logs.PutRetentionPolicy"] == 0

    # Said with its own mode, the rule decides its groups whatever the flat bounds: one answer on every delivery.
    configure(**clamp, rules=[{**audit, "retention": {"days": 3653, "mode": "exact"}}])
    first = call(set_retention, batch)
    after_first = account.snapshot("/audit/trail")["retention"], account.snapshot("/aws/lambda/orders")["retention"]
    again = call(set_retention, _redelivered(batch))

    assert first.result == again.result == {"batchItemFailures": []}
    assert after_first == (3653, 30)
    assert (account.snapshot("/audit/trail")["retention"], account.snapshot("/aws/lambda/orders")["retention"]) == (3653, 30)
    assert account.calls["logs.PutRetentionPolicy"] == 2  # the redelivery wrote nothing
    assert [(line["decision"], line["reason"]) for line in again.logs if "decision" in line] == [("leave", "retention-compliant"),
                                                                                                ("leave", "retention-within-bounds")]
