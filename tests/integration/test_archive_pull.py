"""#31 item 1: the organization's archive pulls what a member's new group held before its filter.

Through the real entry points on moto's accounts (localaws.organization): the member's subscribe handler puts its
filter to the archive's CloudWatch Logs destination and its replay request on the fleet bus (EventBridge sets the
event's ``account``); the archive's function takes the bus's event in (a FIFO message grouped by that account), then
the FIFO batch: it assumes the member's reader role (whose trust names the archive's function role alone), reads the
group through it and writes into the archive's stream, which ship-logs reads like any other record."""

from __future__ import annotations

import base64
import gzip
import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from governor import archive_names, archive_pull as pulling
from governor.aws import FleetBus
from governor.handlers import archive_pull as pull
from governor.config import ENV_FLEET_BUS
from governor.handlers.create_log_group import subscribe_log_group
from localaws.account import LocalAccount
from localaws.events import create_log_group_event, sqs_batch
from localaws.organization import Organization
from ship_logs.payload import decode_kinesis_record
from stacks.archive import ArchiveSettings, destination_policy
from tests.conftest import STATE_TABLE, call

ORG_ID = "o-a1b2c3d4e5"
CENTRAL, MEMBER, OTHER = "111111111111", "210987654321", "345678901234"
REGION = "eu-west-1"  # localaws's default region, where the handlers' clients are made
GROUP = "/aws/lambda/checkout-api"
STREAM = "2026/12/06/[$LATEST]00aa11bb22cc33dd"
BUS = f"arn:aws:events:{REGION}:{CENTRAL}:event-bus/log-group-governor-fleet"
PULLER_ROLE = f"arn:aws:iam::{CENTRAL}:role/log-group-governor-archive-replay-{REGION}"
LEDGER = "archive-replay-ledger"


class Archive:
    """The central side: the stream, the destination, the bus (its policy as stacks/fleet.py writes it), the ledger, the
    FIFO queue and the pull function's role."""

    def __init__(self, organization: Organization, account: LocalAccount) -> None:
        self.organization = organization
        with organization.as_account(CENTRAL):
            kinesis = boto3.client("kinesis")
            kinesis.create_stream(StreamName="log-archive", ShardCount=1)
            self.stream = kinesis.describe_stream_summary(StreamName="log-archive")["StreamDescriptionSummary"]["StreamARN"]
            self.queue = boto3.client("sqs").create_queue(QueueName="archive-replay.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
            account.create_state_table(LEDGER)
            boto3.client("iam").create_role(RoleName=PULLER_ROLE.rsplit("/", 1)[1], AssumeRolePolicyDocument=json.dumps(
                {"Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))
        self.destination = organization.create_destination(CENTRAL, "log-group-governor-archive", self.stream, destination_policy(
            ArchiveSettings(organization_id=ORG_ID), f"arn:aws:logs:{REGION}:{CENTRAL}:destination:log-group-governor-archive"))
        organization.bus_policies[BUS] = {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "events:PutEvents",
                                                         "Condition": {"StringEquals": {"aws:PrincipalOrgID": ORG_ID}}}]}
        self._read = 0

    def run(self, events: list[dict[str, Any]] | None = None) -> list[Any]:
        """The bus's new events through the rule's target (intake), then the FIFO queue through the consumer until it is
        empty, each as the archive's function role. Answers each invocation."""
        delivered = self.organization.delivered.get(BUS, [])
        events = events if events is not None else delivered[self._read:]
        self._read = len(delivered)
        invocations = []
        with self.organization.as_role(PULLER_ROLE):
            for event in events:
                invocations.append(call(pull.handler, event, function_name="archive-replay"))
            sqs = boto3.client("sqs")
            for _ in range(40):
                messages = sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10, AttributeNames=["All"]).get("Messages", [])
                if not messages:
                    return invocations
                batch = {"Records": [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                                      "attributes": m.get("Attributes", {}), "eventSource": "aws:sqs"} for m in messages]}
                invocation = call(pull.handler, batch, function_name="archive-replay")
                invocations.append(invocation)
                failed = {f["itemIdentifier"] for f in invocation.result["batchItemFailures"]}
                for m in messages:
                    if m["MessageId"] not in failed:
                        sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=m["ReceiptHandle"])
                if failed:
                    return invocations
            raise AssertionError(f"the archive's queue never emptied: {[i.logs for i in invocations[:3]]}")

    def records(self) -> list[dict[str, Any]]:
        """Every document in the archive's stream, each as ship-logs decodes it too."""
        documents = []
        for record in self.organization.kinesis_event(CENTRAL, REGION, self.stream)["Records"]:
            document = json.loads(gzip.decompress(base64.b64decode(record["kinesis"]["data"])))
            batch = decode_kinesis_record(record)
            assert batch.malformed_events == 0 and [e.message for e in batch.events] == [e["message"] for e in document["logEvents"]]
            documents.append(document)
        return documents


class _Ticking:
    """The archive's wall clock, advancing ``step_s`` each time it is read: a slice is spent after a few pages."""

    def __init__(self, step_s: float) -> None:
        self.now, self.step_s = time.time(), step_s

    def __call__(self) -> float:
        self.now += self.step_s
        return self.now


def reader_role(organization: Organization, account: str, trusted: str = PULLER_ROLE) -> str:
    """The member template's reader role (stacks/replay_reader.py): trusted by the archive's pull function role alone."""
    with organization.as_account(account):
        return boto3.client("iam").create_role(RoleName=f"log-group-governor-replay-reader-{REGION}", AssumeRolePolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": trusted}, "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]


@pytest.fixture
def org(account: LocalAccount, configure: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Organization, Archive]]:
    organization = Organization(ORG_ID, {CENTRAL, MEMBER, OTHER})
    organization.install(boto3.DEFAULT_SESSION)
    archive = Archive(organization, account)
    for member in (MEMBER, OTHER):
        with organization.as_account(member):
            account.create_state_table(STATE_TABLE)
            boto3.client("iam").create_role(RoleName="LogGroupGovernor-SenderRole", AssumeRolePolicyDocument=json.dumps(
                {"Statement": [{"Effect": "Allow", "Principal": {"Service": "logs.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))
    reader_role(organization, MEMBER)
    monkeypatch.setenv(ENV_FLEET_BUS, BUS)
    for name, value in ((pulling.ENV_QUEUE_URL, archive.queue), (pulling.ENV_TABLE, LEDGER), (pulling.ENV_STREAM_ARN, archive.stream),
                        (pulling.ENV_DESTINATION_ARN, archive.destination)):
        monkeypatch.setenv(name, value)
    pull.puller.cache_clear()
    configure(destinationArn=archive.destination, destinationRoleArn=f"arn:aws:iam::{MEMBER}:role/LogGroupGovernor-SenderRole")
    yield organization, archive
    pull.puller.cache_clear()


def first_lines(organization: Organization, account: str, invocations: int, group: str = GROUP) -> list[str]:
    """A new function's group in ``account`` and its first invocations, written before any filter exists."""
    with organization.as_account(account):
        logs = boto3.client("logs")
        logs.create_log_group(logGroupName=group)
        logs.create_log_stream(logGroupName=group, logStreamName=STREAM)
        messages = [f"{kind} RequestId: {n:08d}" for n in range(invocations) for kind in ("INIT_START", "START", "END")]
        now_ms = int(time.time() * 1000)
        logs.put_log_events(logGroupName=group, logStreamName=STREAM, logEvents=[{"timestamp": now_ms + i, "message": m} for i, m in enumerate(messages)])
    time.sleep(0.002)  # the filter is put in a later millisecond
    return messages


def subscribe(organization: Organization, account: str = MEMBER, group: str = GROUP) -> Any:
    with organization.as_account(account, REGION):
        return call(subscribe_log_group, sqs_batch([create_log_group_event(group, account=account, region=REGION)]))


def test_a_members_new_groups_first_lines_reach_the_archive_once_with_the_member_as_owner(org: tuple[Organization, Archive]) -> None:
    organization, archive = org
    before = first_lines(organization, MEMBER, 4)

    subscribed = subscribe(organization)
    [request] = organization.delivered[BUS]
    pulled = archive.run()

    assert subscribed.result == {"batchItemFailures": []}
    assert subscribed.metrics()[("ReplayPullRequested", None)] == 1
    assert request["detail-type"] == FleetBus.REPLAY_DETAIL_TYPE == archive_names.REPLAY_DETAIL_TYPE  # what the archive's rule matches (stacks/archive_replay.py)
    asked = request["detail"].pop("requestedAtMs")  # the member's clock just after its put (the archive's check of a re-put)
    assert request["account"] == MEMBER and request["detail"] == {"logGroup": GROUP, "filterName": "log-group-governor", "replayWindowMinutes": 60,
                                                                          "replayMaxEvents": 10_000, "replayMaxBytes": 5 * 1024 * 1024}
    assert isinstance(asked, int) and asked > 0
    documents = archive.records()
    assert [e["message"] for d in documents for e in d["logEvents"]] == before
    assert {(d["owner"], d["logGroup"], d["logStream"], tuple(d["subscriptionFilters"])) for d in documents} == {
        (MEMBER, GROUP, STREAM, ("log-group-governor",))}
    [line] = [line for i in pulled for line in i.logs if line.get("message") == "pulled what came before the filter"]
    assert line["pull"]["account"] == MEMBER and line["pull"]["logGroup"] == GROUP and line["pull"]["replayed"] == len(before)
    assert line["pull"]["window"]["ingestedUntilMs"] > 0 and "fromTimestampMs" in line["pull"]["window"]
    assert pulled[-1].metrics()[("ArchivePulledEvents", None)] == len(before)
    # The reader role was assumed in the member's account only, by the archive's function role.
    assert [(p, r) for p, r, ok in organization.assumed if ok] == [(PULLER_ROLE, f"arn:aws:iam::{MEMBER}:role/log-group-governor-replay-reader-{REGION}")]


def test_a_redelivered_request_sends_nothing_twice(org: tuple[Organization, Archive]) -> None:
    organization, archive = org
    before = first_lines(organization, MEMBER, 3)
    subscribe(organization)
    [request] = organization.delivered[BUS]

    archive.run()
    again = archive.run([request, dict(request, id="another-delivery")])  # EventBridge delivers at least once
    subscribe(organization)  # the member's event redelivered: the filter is in place, it asks again
    third = archive.run()

    assert [e["message"] for d in archive.records() for e in d["logEvents"]] == before
    skipped = [line["pull"] for i in (*again, *third) for line in i.logs if line.get("message") == "nothing to pull"]
    assert skipped and all(p["skipped"] == "replayed already" and p["alreadyDelivered"] == len(before) for p in skipped)


def test_a_forged_request_reads_nothing_and_writes_nothing(org: tuple[Organization, Archive]) -> None:
    """A member names another account's group (by name, as an ARN, with an account in the detail): the archive reads only
    through the sender's own role, where no such group is, and writes nothing."""
    organization, archive = org
    first_lines(organization, OTHER, 2, group="/aws/lambda/payments")
    forged = []
    with organization.as_account(MEMBER, REGION):
        events = boto3.client("events")
        for detail in ({"logGroup": "/aws/lambda/payments", "filterName": "log-group-governor", "account": OTHER},
                       {"logGroup": f"arn:aws:logs:{REGION}:{OTHER}:log-group:/aws/lambda/payments", "filterName": "log-group-governor"}):
            events.put_events(Entries=[{"EventBusName": BUS, "Source": "log-group-governor", "DetailType": "log-group-governor replay request",
                                        "Detail": json.dumps(detail)}])
    forged = organization.delivered[BUS]
    invocations = archive.run()

    assert [e["account"] for e in forged] == [MEMBER, MEMBER]  # EventBridge names the sender, whatever the detail says
    assert archive.records() == []
    assert all(role.split(":")[4] == MEMBER for _, role, _ in organization.assumed)  # never the other account's
    reasons = [line.get("reason") or line.get("pull", {}).get("reason") for i in invocations for line in i.logs if line.get("level") == "WARNING"]
    assert pulling.NOT_IN_MEMBER in reasons and any(r and "not a log group's name" in r for r in reasons)


def test_an_unfinished_replay_resumes_from_the_queue(org: tuple[Organization, Archive], monkeypatch: pytest.MonkeyPatch) -> None:
    organization, archive = org
    before = first_lines(organization, MEMBER, 6)
    from governor import replay
    import governor.aws.logs as logs
    monkeypatch.setattr(logs, "FILTER_LOG_EVENTS_PAGE_SIZE", 5)  # FilterLogEvents' pages: 5 events instead of 10,000
    monkeypatch.setattr(pulling, "wall_clock", _Ticking(step_s=7.0))  # a slice (20 s) lasts about three pages
    monkeypatch.setitem(replay.MAX_DOCUMENT_BYTES, replay.DestinationKind.KINESIS, 1_300)  # a few events a record
    subscribe(organization)

    invocations = archive.run()

    assert [e["message"] for d in archive.records() for e in d["logEvents"]] == before  # each once, in order
    continued = sum(i.metrics().get(("ArchivePullContinued", None), 0) for i in invocations[1:])
    assert continued >= 1


def test_a_member_without_the_role_is_asked_again_then_finished_with_a_reason_and_alarmed(org: tuple[Organization, Archive],
                                                                                         configure: Any) -> None:
    """A reader role that cannot be assumed may be one IAM has not propagated yet (a member deployed with its first
    groups): the request comes back after the queue's visibility timeout; at the third receive it is finished with a
    reason and alarms, not retried for ever (review of #31)."""
    organization, archive = org
    reader_role(organization, OTHER, trusted=f"arn:aws:iam::{OTHER}:root")  # trusts its own account, not the archive
    configure(destinationArn=archive.destination, destinationRoleArn=f"arn:aws:iam::{OTHER}:role/LogGroupGovernor-SenderRole")
    first_lines(organization, OTHER, 2)
    subscribe(organization, OTHER)
    [request] = organization.delivered[BUS]

    invocations = []
    with organization.as_role(PULLER_ROLE):
        call(pull.handler, request, function_name="archive-replay")  # the intake queues it
        [message] = boto3.client("sqs").receive_message(QueueUrl=archive.queue, MaxNumberOfMessages=10).get("Messages", [])
        for attempt in (1, 2, 3):  # as SQS hands it out again after each visibility timeout
            batch = {"Records": [{"messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"], "body": message["Body"],
                                  "attributes": {"ApproximateReceiveCount": str(attempt), "MessageGroupId": OTHER}, "eventSource": "aws:sqs"}]}
            invocations.append(call(pull.handler, batch, function_name="archive-replay"))

    assert archive.records() == []
    assert [i.result for i in invocations] == [{"batchItemFailures": [{"itemIdentifier": message["MessageId"]}]}] * 2 + [{"batchItemFailures": []}]
    assert not [m for i in invocations[:2] for m in i.metrics() if m[0] == "ArchivePullFailed"]  # no alarm while it may still come
    [error] = [line for i in invocations for line in i.logs if line.get("level") == "ERROR"]
    assert error["pull"]["reason"] == pulling.ROLE_NOT_ASSUMABLE and error["pull"]["account"] == OTHER and error["pull"]["logGroup"] == GROUP
    assert "AccessDenied" in error["pull"]["skipped"]
    assert invocations[-1].metrics()[("ArchivePullFailed", None)] == 1


def test_localaws_assume_role_follows_the_roles_trust(org: tuple[Organization, Archive]) -> None:
    """FIDELITY O9/O10: another role of the central account is refused; the archive's function role is let in, and its
    credentials act in the member's account."""
    organization, _ = org
    role = f"arn:aws:iam::{MEMBER}:role/log-group-governor-replay-reader-{REGION}"
    with organization.as_role(f"arn:aws:iam::{CENTRAL}:role/someone-else"):
        with pytest.raises(Exception) as refused:
            boto3.client("sts").assume_role(RoleArn=role, RoleSessionName="check")
    with organization.as_role(PULLER_ROLE):
        credentials = boto3.client("sts").assume_role(RoleArn=role, RoleSessionName="check")["Credentials"]
        member_logs = boto3.client("logs", aws_access_key_id=credentials["AccessKeyId"], aws_secret_access_key=credentials["SecretAccessKey"],
                                   aws_session_token=credentials["SessionToken"])
        member_logs.create_log_group(logGroupName="/made/through/the/role")
        own = boto3.client("logs").describe_log_groups(logGroupNamePrefix="/made/")["logGroups"]
    with organization.as_account(MEMBER):
        theirs = boto3.client("logs").describe_log_groups(logGroupNamePrefix="/made/")["logGroups"]

    assert "AccessDenied" in str(refused.value) and "is not authorized to perform: sts:AssumeRole" in str(refused.value)
    assert own == [] and [g["logGroupName"] for g in theirs] == ["/made/through/the/role"]


def test_the_pull_is_bounded_by_the_members_replay_bounds_and_says_so(org: tuple[Organization, Archive], configure: Any) -> None:
    """replayMaxEvents of the member's configuration (carried by its request, held to the key's range) bounds the pull."""
    organization, archive = org
    configure(destinationArn=archive.destination, destinationRoleArn=f"arn:aws:iam::{MEMBER}:role/LogGroupGovernor-SenderRole",
              replayMaxEvents=5)
    before = first_lines(organization, MEMBER, 4)
    subscribe(organization)

    pulled = archive.run()

    assert [e["message"] for d in archive.records() for e in d["logEvents"]] == before[:5]
    [line] = [line["pull"] for i in pulled for line in i.logs if line.get("message") == "pulled what came before the filter"]
    assert (line["replayed"], line["truncated"]) == (5, len(before) - 5)
    assert pulled[-1].metrics()[("ArchivePullTruncated", None)] == len(before) - 5


def test_bounds_outside_the_keys_ranges_are_refused_and_nothing_is_read(org: tuple[Organization, Archive]) -> None:
    organization, archive = org
    first_lines(organization, MEMBER, 2)
    with organization.as_account(MEMBER, REGION):
        boto3.client("events").put_events(Entries=[{"EventBusName": BUS, "Source": "log-group-governor",
                                                    "DetailType": "log-group-governor replay request",
                                                    "Detail": json.dumps({"logGroup": GROUP, "filterName": "log-group-governor",
                                                                          "replayMaxBytes": 10 ** 12})}])
    [intake] = archive.run()

    assert intake.result["status"] == "ignored" and "replayMaxBytes" in intake.result["reason"]
    assert archive.records() == [] and organization.assumed == []


OTHER_GROUP = "/aws/lambda/other-service"


def test_review31_one_members_failing_pull_leaves_another_members_requests_in_the_batch_to_be_pulled(org: tuple[Organization, Archive],
                                                                                                     configure: Any) -> None:
    """Review of #31: a FIFO receive fills a batch from several members; one member's failing pull (an SCP denying
    FilterLogEvents) fails its own requests only, and another member's are pulled, not dead-lettered untried."""
    organization, archive = org
    reader_role(organization, OTHER)  # OTHER is a well-deployed member too
    # OTHER asks first, MEMBER second
    configure(destinationArn=archive.destination, destinationRoleArn=f"arn:aws:iam::{OTHER}:role/LogGroupGovernor-SenderRole")
    first_lines(organization, OTHER, 2, group=OTHER_GROUP)
    subscribe(organization, OTHER, group=OTHER_GROUP)
    configure(destinationArn=archive.destination, destinationRoleArn=f"arn:aws:iam::{MEMBER}:role/LogGroupGovernor-SenderRole")
    before = first_lines(organization, MEMBER, 2)
    subscribe(organization, MEMBER)
    assert [e["account"] for e in organization.delivered[archive_bus(organization)]] == [OTHER, MEMBER]

    # OTHER's CloudWatch Logs throttles (or an SCP denies FilterLogEvents): AWS's answer, injected at the boundary.
    def refuse(params: dict[str, Any], **_: Any) -> Any:
        body = json.loads(params.get("body") or b"{}")
        if OTHER_GROUP in (body.get("logGroupName"), body.get("logGroupIdentifier")):
            return (AWSResponse("https://logs", 400, {}, None), {"Error": {"Code": "AccessDeniedException", "Message": "denied by an SCP"},
                                                                 "ResponseMetadata": {"HTTPStatusCode": 400}})
        return None
    boto3.DEFAULT_SESSION.events.register_first("before-call.cloudwatch-logs.FilterLogEvents", refuse)
    try:
        _drain(organization, archive)
    finally:
        boto3.DEFAULT_SESSION.events.unregister("before-call.cloudwatch-logs.FilterLogEvents", refuse)
    documents = archive.records()
    assert [e["message"] for d in documents for e in d["logEvents"] if d["owner"] == MEMBER] == before
    assert not [d for d in documents if d["owner"] == OTHER]


def _drain(organization: Organization, archive: Archive) -> None:
    """The archive's queue, as Lambda's event source mapping and SQS would run it (visibility 0, redrive after 5 receives)."""

    with organization.as_role(PULLER_ROLE):
        sqs = boto3.client("sqs")
        dlq = sqs.create_queue(QueueName="archive-replay-dlq.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sqs.set_queue_attributes(QueueUrl=archive.queue, Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"})})
        for event in organization.delivered[archive_bus(organization)]:
            call(pull.handler, event, function_name="archive-replay")
        batches, tried = [], []
        for _ in range(10):
            messages = sqs.receive_message(QueueUrl=archive.queue, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
            if not messages:
                break
            batches.append([json.loads(m["Body"])["account"] for m in messages])
            batch = {"Records": [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"], "eventSource": "aws:sqs"}
                                 for m in messages]}
            invocation = call(pull.handler, batch, function_name="archive-replay")
            tried += [line.get("account") for line in invocation.logs if line.get("message", "").startswith("the pull failed")]
            failed = {f["itemIdentifier"] for f in invocation.result["batchItemFailures"]}
            for m in messages:
                if m["MessageId"] not in failed:
                    sqs.delete_message(QueueUrl=archive.queue, ReceiptHandle=m["ReceiptHandle"])
        dead = [json.loads(m["Body"])["account"] for m in sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages", [])]
    assert MEMBER not in dead and OTHER in dead, (batches, dead)


def archive_bus(organization: Organization) -> str:
    return next(iter(organization.delivered))


def test_review31_a_filter_put_again_before_the_pull_ends_the_window_at_the_request(org: tuple[Organization, Archive],
                                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Review of #31: someone deletes the filter and the governor's drift repair puts it back before the archive pulls;
    the lines the first filter delivered are not sent again: the window ends at the request, not at the new filter."""
    from governor.handlers.create_log_group import subscribe_log_group
    from localaws.events import log_group_call_event

    organization, archive = org
    before = first_lines(organization, MEMBER, 2)
    subscribe(organization)  # the first filter and the request
    with organization.as_account(MEMBER, REGION):
        logs = boto3.client("logs")
        now_ms = int(time.time() * 1000)
        shipped = [{"timestamp": now_ms + i, "message": f"after the filter {i}"} for i in range(3)]
        logs.put_log_events(logGroupName=GROUP, logStreamName=STREAM, logEvents=shipped)
    organization.deliver(MEMBER, REGION, GROUP, [dict(e, id=str(36000000000000000000000000 + i)) for i, e in enumerate(shipped)], stream=STREAM)
    later = time.time() + 120  # CloudTrail's record of the deletion reaches the governor a while later: the new filter is younger
    monkeypatch.setattr(time, "time", lambda: later)
    with organization.as_account(MEMBER, REGION):
        boto3.client("logs").delete_subscription_filter(logGroupName=GROUP, filterName="log-group-governor")
        call(subscribe_log_group, log_group_call_event("DeleteSubscriptionFilter", GROUP, role_arn=f"arn:aws:iam::{MEMBER}:role/platform-admin",
                                                       account=MEMBER, region=REGION, filterName="log-group-governor"))
    archive.run()

    messages = [e["message"] for d in archive.records() for e in d["logEvents"]]
    assert sorted(messages) == sorted(before + [e["message"] for e in shipped])  # each line once


def test_issue31_item2_the_minutes_a_disabled_filter_skipped_are_pulled_by_the_archive_once(org: tuple[Organization, Archive],
                                                                                          account: LocalAccount,
                                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A member's filter to the archive's destination is refused (the destination's policy changed, say) and disabled for 10
    minutes; its delivery-gaps function finds the window in its own metrics and asks the archive over the fleet bus, which
    pulls the skipped lines through the member's reader role into its stream, once, with the member as owner."""
    from types import SimpleNamespace

    from governor.handlers import delivery_gaps as gaps
    from localaws.delivery import DeliveryModel, subscription_delivery
    from localaws.events import fixture

    organization, archive = org
    t0 = float(int(time.time()) // 60 * 60 - 25 * 60)  # the outage's first minute: over (and settled) by the test's real time
    clock = SimpleNamespace(now=t0 - 600)
    tick = lambda: clock.now  # noqa: E731
    monkeypatch.setattr(gaps, "wall_clock", tick)
    with organization.as_account(MEMBER, REGION):
        queue = boto3.client("sqs").create_queue(QueueName="delivery-gaps")["QueueUrl"]
    monkeypatch.setenv(gaps.ENV_GAP_QUEUE_URL, queue)
    gaps.parts.cache_clear()
    with subscription_delivery(account, tick):
        first = first_lines(organization, MEMBER, 1)
        subscribe(organization)
        archive.run()  # the first lines, pulled (#31 item 1)
        # CloudWatch Logs' part in the member: the destination refuses a batch, the filter is off for 10 minutes.
        member_logs = DeliveryModel(SimpleNamespace(account_id=MEMBER, region=REGION), tick)
        member_logs.refuse(archive.destination)
        skipped = []
        with organization.as_account(MEMBER, REGION):
            logs = boto3.client("logs")
            for minute in range(1, 11):
                clock.now = t0 + minute * 60 + 5
                line = {"timestamp": int(clock.now * 1000), "message": f"while disabled {minute}"}
                logs.put_log_events(logGroupName=GROUP, logStreamName=STREAM, logEvents=[line])
                assert member_logs.deliver(GROUP, "log-group-governor", archive.destination, [line]) in ("failed", "skipped")
                skipped.append(line["message"])
            clock.now = t0 + 20 * 60
            watched = call(gaps.handler, fixture("scheduled_event"), function_name="delivery-gaps")
            sqs = boto3.client("sqs")
            messages = sqs.receive_message(QueueUrl=sqs.get_queue_url(QueueName="delivery-gaps")["QueueUrl"]).get("Messages", [])
            asked = call(gaps.handler, sqs_batch([json.loads(m["Body"]) for m in messages]), function_name="delivery-gaps")
        [request] = [e for e in organization.delivered[BUS] if "gapFromMs" in e["detail"]]
        pulled = archive.run()
        again = archive.run([request, dict(request, id="another-delivery")])

    assert watched.result["queued"] == 1 and asked.result == {"batchItemFailures": []}
    assert [line["message"] for line in asked.logs if "gap" in line] == ["a delivery gap handed to the organization's archive"]
    assert request["account"] == MEMBER and request["detail"]["gapFromMs"] == int(t0 * 1000)
    documents = archive.records()
    assert [e["message"] for d in documents for e in d["logEvents"]] == first + skipped  # each once, in order
    assert {d["owner"] for d in documents} == {MEMBER}
    [line] = [line["pull"] for i in pulled for line in i.logs if line.get("message") == "pulled what came before the filter"]
    assert line["gap"] == {"ingestedFromMs": int(t0 * 1000), "ingestedUntilMs": request["detail"]["gapUntilMs"]}
    assert not [line for i in again for line in i.logs if line.get("message") == "pulled what came before the filter"]


def test_issue31_a_member_with_a_rule_shipping_to_its_own_stream_has_its_archive_groups_first_lines_pulled_through_the_replay_function(
        org: tuple[Organization, Archive], configure: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A mixed configuration: a rule ships /audit/ groups to the member's own stream, the rest go to the archive. The
    subscribe handler asks the replay function (a destination here can be written to); for a group whose filter ships to
    the archive, the replay function asks the archive, which pulls it (#31 items 1 and 3)."""
    from governor.handlers import delivery_gaps as replays
    from governor.gap_settings import ENV_GAP_QUEUE_URL

    organization, archive = org
    with organization.as_account(MEMBER, REGION):
        kinesis = boto3.client("kinesis")
        kinesis.create_stream(StreamName="audit", ShardCount=1)
        audit = kinesis.describe_stream_summary(StreamName="audit")["StreamDescriptionSummary"]["StreamARN"]
        queue = boto3.client("sqs").create_queue(QueueName="replay")["QueueUrl"]
    monkeypatch.setenv(ENV_GAP_QUEUE_URL, queue)
    configure(destinationArn=archive.destination, destinationRoleArn=f"arn:aws:iam::{MEMBER}:role/LogGroupGovernor-SenderRole",
              rules=[{"match": {"namePrefixes": ["/audit/"]}, "shipping": {"enabled": True, "destinationArn": audit,
                                                                             "destinationRoleArn": f"arn:aws:iam::{MEMBER}:role/LogGroupGovernor-SenderRole"}}])
    before = first_lines(organization, MEMBER, 2)

    subscribed = subscribe(organization)
    with organization.as_account(MEMBER, REGION):
        sqs = boto3.client("sqs")
        [message] = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
        replayed = call(replays.handler, sqs_batch([json.loads(message["Body"])]), function_name="replay")
    pulled = archive.run()

    assert subscribed.result == {"batchItemFailures": []} and replayed.result == {"batchItemFailures": []}
    assert [line["message"] for line in replayed.logs if line.get("replay")] == ["the archive was asked to pull what came before the filter"]
    [request] = organization.delivered[BUS]
    assert request["account"] == MEMBER and request["detail"]["logGroup"] == GROUP and request["detail"]["requestedAtMs"] > 0
    assert [e["message"] for d in archive.records() for e in d["logEvents"]] == before
    assert any(line.get("message") == "pulled what came before the filter" for i in pulled for line in i.logs)
