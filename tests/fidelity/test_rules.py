"""localaws's rules, each with the AWS source it follows (localaws/FIDELITY.md names the test of each).

Run against localaws by default; ``make fidelity-real`` runs the same assertions against a sandbox
account (tests/fidelity/conftest.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.fidelity.conftest import ORG_DESTINATION_ENV, Target, local_only

CENTRAL = "111111111111"
ORG_ID = "o-a1b2c3d4e5"
LOGS_TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "logs.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


def _code(error: ClientError) -> str:
    return error.response["Error"]["Code"]


# --- F1: a log group's class ------------------------------------------------------------------------

def test_f1_describe_log_groups_shows_the_class_a_group_was_created_with(target: Target) -> None:
    """API model, LogGroup.logGroupClass; moto stores none (localaws.account.MotoGaps.add_class)."""
    name = target.log_group("f1-infrequent", logGroupClass="INFREQUENT_ACCESS")

    [group] = [g for g in target.client("logs").describe_log_groups(logGroupNamePrefix=name)["logGroups"] if g["logGroupName"] == name]
    assert group["logGroupClass"] == "INFREQUENT_ACCESS"


# --- F2: the tagging API lists only what is or was tagged -------------------------------------------

def test_f2_get_resources_lists_tagged_log_groups_and_never_untagged_ones(target: Target) -> None:
    """Resource Groups Tagging API reference, GetResources: only resources that are or were tagged."""
    tagged = target.log_group("f2-tagged", tags={"fidelity": target.run})
    untagged = target.log_group("f2-untagged")
    arn = f"arn:aws:logs:{target.region}:{target.account_id}:log-group:"
    tagging = target.client("resourcegroupstaggingapi")

    def listed() -> set[str]:
        pages = tagging.get_paginator("get_resources").paginate(ResourceTypeFilters=["logs:log-group"],
                                                                 TagFilters=[{"Key": "fidelity", "Values": [target.run]}])
        found = {m["ResourceARN"] for page in pages for m in page["ResourceTagMappingList"]}
        assert arn + tagged in found
        return found

    found = target.eventually(listed)
    assert arn + untagged not in found
    # Without a tag filter an untagged group is still not listed (it never had a tag).
    everything = {m["ResourceARN"] for page in tagging.get_paginator("get_resources").paginate(ResourceTypeFilters=["logs:log-group"])
                  for m in page["ResourceTagMappingList"]}
    assert arn + untagged not in everything


def test_f11_get_resources_by_arn_answers_the_listed_tagged_groups_and_refuses_filters_beside_them(target: Target) -> None:
    """G12, the model of GetResources: ResourceARNList (1-100), never with TagFilters, ResourceTypeFilters or paging."""
    tagged = target.log_group("f11-tagged", tags={"fidelity": target.run})
    untagged = target.log_group("f11-untagged")
    arn = f"arn:aws:logs:{target.region}:{target.account_id}:log-group:"
    tagging = target.client("resourcegroupstaggingapi")

    def answered() -> dict[str, dict[str, str]]:
        found = {m["ResourceARN"].removesuffix(":*"): {t["Key"]: t["Value"] for t in m["Tags"]}
                 for m in tagging.get_resources(ResourceARNList=[arn + tagged, arn + untagged])["ResourceTagMappingList"]}
        assert found.get(arn + tagged, {}).get("fidelity") == target.run
        return found

    assert arn + untagged not in target.eventually(answered)
    with pytest.raises(ClientError) as refused:
        tagging.get_resources(ResourceARNList=[arn + tagged], ResourceTypeFilters=["logs:log-group"])
    assert refused.value.response["Error"]["Code"] == "InvalidParameterException"


# --- F3, F4: account-level retention policies (dry runs only: they store nothing) ---------------------

def _retention_dry_run(target: Target, days: int, prefix: str) -> dict[str, Any]:
    return target.client("logs").put_account_policy(
        policyName=f"log-group-governor-fidelity-{target.run}", policyType="RETENTION_POLICY", dryRun=True,
        policyDocument=json.dumps({"retentionInDays": days, "enforcementMode": "RETROACTIVE"}),
        selectionCriteria="LogGroupNamePrefix IN " + json.dumps([prefix]))


def test_f3_an_account_retention_policy_under_30_days_is_refused(target: Target) -> None:
    """API model, PutAccountPolicy: retention policies keep at least 30 days; a dry run "validates the request"."""
    with pytest.raises(ClientError) as refused:
        _retention_dry_run(target, 14, target.name(""))

    assert _code(refused.value) == "InvalidParameterException"


def test_f4_a_retention_dry_run_counts_only_the_groups_in_the_policys_scope(target: Target) -> None:
    """API model, DryRunResult.totalMatchedLogGroups: "the number of log groups in the scope of the policy"."""
    inside = [target.log_group(f"f4/in-{n}", ) for n in range(2)]
    target.log_group("f4-outside")
    for name in inside:
        target.client("logs").put_retention_policy(logGroupName=name, retentionInDays=7)

    def counted() -> dict[str, Any]:
        result = _retention_dry_run(target, 90, target.name("f4/"))["dryRunResult"]
        assert result["totalMatchedLogGroups"] == len(inside)
        return result

    result = target.eventually(counted)
    assert result["increasedRetentionLogGroupCount"] == len(inside)
    assert {g["logGroupName"] for g in result["topLogGroupsImpacted"]} <= set(inside)


# --- F5-F7: an organization-wide destination needs the sender's role ------------------------------------

@pytest.fixture
def org_destination(target: Target) -> Iterator[str]:
    """An organization-wide logs destination in another account: the archive stack's own access policy,
    locally; on a real account the one named by LOG_GROUP_GOVERNOR_FIDELITY_ORG_DESTINATION."""
    import os

    if target.real:
        arn = os.environ.get(ORG_DESTINATION_ENV)
        if not arn:
            pytest.skip(f"set {ORG_DESTINATION_ENV} to an organization-wide destination of another account in {target.region}")
        yield arn
        return
    from localaws.organization import Organization
    from stacks.archive import ArchiveSettings, destination_policy

    organization = Organization(ORG_ID, {CENTRAL, target.account_id})
    organization.install(boto3.DEFAULT_SESSION)
    stream = f"arn:aws:kinesis:{target.region}:{CENTRAL}:stream/archive"
    arn = f"arn:aws:logs:{target.region}:{CENTRAL}:destination:archive"
    yield organization.create_destination(CENTRAL, "archive", stream, destination_policy(ArchiveSettings(organization_id=ORG_ID), arn))


def _sender_role(target: Target, *, trusted_by: str = "logs.amazonaws.com") -> str:
    """The sender role as stacks/sender_role.py makes it, under the reserved name."""
    iam = target.client("iam")
    name = f"log-group-governor-fidelity-{target.run}-{trusted_by.split('.')[0]}"
    trust = {**LOGS_TRUST, "Statement": [{**LOGS_TRUST["Statement"][0], "Principal": {"Service": trusted_by}}]}
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="put-log-events", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "logs:PutLogEvents", "Resource": f"arn:aws:logs:{target.region}:{target.account_id}:log-group:*:*"}]}))

    def remove() -> None:
        iam.delete_role_policy(RoleName=name, PolicyName="put-log-events")
        iam.delete_role(RoleName=name)

    target.on_cleanup(remove)
    return arn


def _put_filter(target: Target, group: str, destination: str, role: str | None = None) -> None:
    target.client("logs").put_subscription_filter(logGroupName=group, filterName="log-group-governor-fidelity", filterPattern="",
                                                  destinationArn=destination, **({"roleArn": role} if role else {}))


def test_f5_an_organization_wide_destination_refuses_a_filter_without_the_senders_role(target: Target, org_destination: str) -> None:
    """CloudWatch Logs guide, "Step 2: (Only if using an organization) Create an IAM role"
    (CreateSubscriptionFilter-IAMrole). The refusals as AWS answered them (FIDELITY.md O4): cloud-custodian#8246,
    terraform-provider-aws#48088."""
    group = target.log_group("f5-sender")

    with pytest.raises(ClientError) as refused:
        _put_filter(target, group, org_destination)
    assert _code(refused.value) == "InvalidParameterException" and "Role ARN is required" in str(refused.value)
    # A role other than the sender's kind (not trusted by CloudWatch Logs) does not do either.
    with pytest.raises(ClientError) as untrusted:
        _put_filter(target, group, org_destination, _sender_role(target, trusted_by="lambda.amazonaws.com"))
    assert _code(untrusted.value) == "ValidationException" and "permission to assume the provided role" in str(untrusted.value)

    role = _sender_role(target)
    target.eventually(lambda: _put_filter(target, group, org_destination, role))  # IAM is eventually consistent
    [stored] = target.client("logs").describe_subscription_filters(logGroupName=group)["subscriptionFilters"]
    assert (stored["destinationArn"], stored.get("roleArn")) == (org_destination, role)


@local_only("an account-level subscription policy applies to every group of the account")
def test_f6_an_account_policy_to_an_organization_wide_destination_needs_the_role_too(target: Target, org_destination: str) -> None:
    """CloudWatch Logs guide, account-level twin of CreateSubscriptionFilter-IAMrole: RoleArn in the policy document."""
    logs = target.client("logs")
    put = lambda document: logs.put_account_policy(policyName="log-group-governor", policyType="SUBSCRIPTION_FILTER_POLICY",  # noqa: E731
                                                   policyDocument=json.dumps(document))

    with pytest.raises(ClientError) as refused:
        put({"DestinationArn": org_destination, "FilterPattern": ""})
    assert _code(refused.value) == "InvalidParameterException"  # as for a filter (O4); the account policy's answer is assumed (O5)
    assert logs.describe_account_policies(policyType="SUBSCRIPTION_FILTER_POLICY")["accountPolicies"] == []

    put({"DestinationArn": org_destination, "FilterPattern": "", "RoleArn": _sender_role(target)})
    assert len(logs.describe_account_policies(policyType="SUBSCRIPTION_FILTER_POLICY")["accountPolicies"]) == 1


@local_only("an account-level subscription policy applies to every group of the account")
def test_f7_an_account_policy_to_another_accounts_destination_goes_through_the_filters_checks(target: Target) -> None:
    """CreateDestination-Account: the access policy grants logs:PutAccountPolicy; AWS-FACTS: a destination
    takes its own region's groups only."""
    from localaws.organization import Organization

    organization = Organization(ORG_ID, {CENTRAL, target.account_id})
    organization.install(boto3.DEFAULT_SESSION)
    destinations = {}
    for region, actions in (("eu-west-1", ["logs:PutSubscriptionFilter"]), ("us-east-1", ["logs:PutSubscriptionFilter", "logs:PutAccountPolicy"])):
        arn = f"arn:aws:logs:{region}:{CENTRAL}:destination:archive"
        destinations[region] = organization.create_destination(CENTRAL, "archive", f"arn:aws:kinesis:{region}:{CENTRAL}:stream/archive", {
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": [target.account_id]}, "Action": actions,
                                                   "Resource": arn}]}, region=region)

    def put(destination: str) -> Any:
        return target.client("logs").put_account_policy(policyName="log-group-governor", policyType="SUBSCRIPTION_FILTER_POLICY",
                                                         policyDocument=json.dumps({"DestinationArn": destination, "FilterPattern": ""}))

    with pytest.raises(ClientError) as no_action:
        put(destinations["eu-west-1"])  # its access policy grants PutSubscriptionFilter only
    with pytest.raises(ClientError) as other_region:
        put(destinations["us-east-1"])  # admits the account, but it is not the groups' region
    assert (_code(no_action.value), _code(other_region.value)) == ("AccessDeniedException", "InvalidParameterException")


# --- F8: delivery through an account policy --------------------------------------------------------------

@local_only("delivery through an account policy needs one")
def test_f8_an_account_policy_never_feeds_a_lambda_destination_its_own_group_but_feeds_other_shipping_groups(target: Target) -> None:
    """CloudWatch Logs guide, "Log recursion prevention": a Lambda destination's own log group is not fed
    back to it; other shipping-path groups are (AWS-FACTS, settled 2026-12-04)."""
    from localaws.payloads import lambda_log_events

    local = target.local
    assert local is not None
    shipper = local.create_function("shipper", log_group="/shipping/shipper")
    local.create_log_group("/shipping/shipper")
    local.create_log_group("/shipping/firehose-errors")
    local.logs.put_account_policy(policyName="log-group-governor", policyType="SUBSCRIPTION_FILTER_POLICY",
                                  policyDocument=json.dumps({"DestinationArn": shipper, "FilterPattern": ""}))
    events = lambda_log_events(2)

    assert local.deliveries("/shipping/shipper", events) == []
    assert [d for d, _ in local.deliveries("/shipping/firehose-errors", events)] == [shipper]


# --- F9, F10: what a subscription delivers, and what FilterLogEvents reads (#20) ----------------------------

def _put_events(target: Target, group: str, stream: str, messages: list[str]) -> None:
    import time

    logs = target.client("logs")
    now_ms = int(time.time() * 1000)
    logs.put_log_events(logGroupName=group, logStreamName=stream,
                        logEvents=[{"timestamp": now_ms + i, "message": message} for i, message in enumerate(messages)])


def test_f9_filter_log_events_gives_each_events_ingestion_time_and_id_and_pages(target: Target) -> None:
    """model: FilterLogEvents' FilteredLogEvent carries `ingestionTime` and `eventId`; "If the results include a token,
    there are more log events available"; the filter pattern selects as a subscription's does (AWS-FACTS)."""
    group = target.log_group("f9")
    logs = target.client("logs")
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    _put_events(target, group, "s", ["START 1", "ERROR boom", "END 1", "ERROR again", "END 2"])

    def read_all(**request: Any) -> list[dict[str, Any]]:
        found, token = [], None
        while True:
            answer = logs.filter_log_events(logGroupName=group, limit=2, **request, **({"nextToken": token} if token else {}))
            found += answer["events"]
            token = answer.get("nextToken")
            if not token:
                return found

    events = target.eventually(lambda: _all_five(read_all()))
    assert all(isinstance(e["ingestionTime"], int) and e["eventId"] and e["logStreamName"] == "s" for e in events)
    assert len({e["eventId"] for e in events}) == 5
    assert [e["message"] for e in read_all(filterPattern="ERROR")] == ["ERROR boom", "ERROR again"]
    # startTime / endTime select by the event's timestamp (the model: "Events with a timestamp before this time are not
    # returned"), which the replay bounds its reading with.
    first = events[0]["timestamp"]
    assert [e["message"] for e in read_all(startTime=first + 1, endTime=first + 3)] == ["ERROR boom", "END 1", "ERROR again"]


def _all_five(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    assert [e["message"] for e in events] == ["START 1", "ERROR boom", "END 1", "ERROR again", "END 2"], events
    return events


def test_f10_a_subscription_delivers_only_what_is_ingested_after_it_exists(target: Target) -> None:
    """AWS-FACTS (inferred from the guide's wording, no page states the negative): the events ingested before
    a filter exists never reach its destination; those after do, as the gzip'd DATA_MESSAGE document. Their
    `ingestionTime` against the filter's `creationTime` tells the two apart."""
    import gzip
    import time

    kinesis, iam, logs = target.client("kinesis"), target.client("iam"), target.client("logs")
    name = f"log-group-governor-fidelity-{target.run}"
    kinesis.create_stream(StreamName=name, ShardCount=1)
    target.on_cleanup(lambda: kinesis.delete_stream(StreamName=name, EnforceConsumerDeletion=True))
    stream_arn = target.eventually(lambda: _active(kinesis, name), seconds=120)
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(LOGS_TRUST))["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="put", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "kinesis:PutRecord", "Resource": stream_arn}]}))
    target.on_cleanup(lambda: (iam.delete_role_policy(RoleName=name, PolicyName="put"), iam.delete_role(RoleName=name)))
    group = target.log_group("f10")
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    _put_events(target, group, "s", ["before the filter 1", "before the filter 2"])
    time.sleep(1 if target.real else 0.002)  # the filter is created in a later millisecond than the events, on any machine
    target.eventually(lambda: logs.put_subscription_filter(logGroupName=group, filterName="f10", filterPattern="", destinationArn=stream_arn,
                                                             roleArn=role), seconds=60)  # a new role takes a moment to be usable
    created_ms = logs.describe_subscription_filters(logGroupName=group)["subscriptionFilters"][0]["creationTime"]
    _put_events(target, group, "s", ["after the filter"])

    def delivered() -> list[str]:
        shard = kinesis.list_shards(StreamName=name)["Shards"][0]["ShardId"]
        iterator = kinesis.get_shard_iterator(StreamName=name, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        documents = [json.loads(gzip.decompress(r["Data"])) for r in kinesis.get_records(ShardIterator=iterator)["Records"]]
        messages = [e["message"] for d in documents if d["messageType"] == "DATA_MESSAGE" for e in d["logEvents"]]
        assert messages == ["after the filter"], documents
        assert all(d["logGroup"] == group and d["subscriptionFilters"] == ["f10"] for d in documents if d["messageType"] == "DATA_MESSAGE")
        return messages

    target.eventually(delivered, seconds=120)
    ingested = {e["message"]: e["ingestionTime"] for e in logs.filter_log_events(logGroupName=group)["events"]}
    assert ingested["before the filter 1"] < created_ms <= ingested["after the filter"]


def _active(kinesis: Any, name: str) -> str:
    summary = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    assert summary["StreamStatus"] == "ACTIVE"
    return summary["StreamARN"]


# --- F12: field index policies of a log group (localaws/FIDELITY.md I1-I6) ---------------------------------

def test_f12_a_groups_field_index_policy_is_refused_off_standard_answered_with_its_arn_and_gone_with_the_group(target: Target) -> None:
    """model: PutIndexPolicy ("Only log groups in the Standard log class support field index policies"), IndexPolicy
    (`logGroupIdentifier` "The ARN of the log group", `policyName` absent for group-level policies), DescribeIndexPolicies'
    identifiers (min 1, max 1). The assumed: the refusals' codes (I1, I4, I6) and a group created again having no policy (I6)."""
    logs = target.client("logs")
    standard, infrequent = target.log_group("f12/standard"), target.log_group("f12/ia", logGroupClass="INFREQUENT_ACCESS")
    arn = f"arn:aws:logs:{target.region}:{target.account_id}:log-group:{standard}"
    document = json.dumps({"Fields": ["TransactionId"], "FieldsV2": {"RequestId": {"type": "FIELD_INDEX"}}})

    with pytest.raises(ClientError) as refused:
        logs.put_index_policy(logGroupIdentifier=infrequent, policyDocument=document)
    assert _code(refused.value) == "InvalidParameterException"
    answer = target.eventually(lambda: logs.put_index_policy(logGroupIdentifier=standard, policyDocument=document))["indexPolicy"]
    assert (answer["logGroupIdentifier"], answer["source"], answer["policyDocument"], "policyName" in answer) == (arn, "LOG_GROUP", document, False)
    with pytest.raises(ClientError) as refused:
        logs.describe_index_policies(logGroupIdentifiers=[standard, infrequent])
    assert _code(refused.value) == "InvalidParameterException"

    logs.delete_index_policy(logGroupIdentifier=standard)
    with pytest.raises(ClientError) as refused:
        logs.delete_index_policy(logGroupIdentifier=standard)
    assert _code(refused.value) == "ResourceNotFoundException"

    logs.put_index_policy(logGroupIdentifier=standard, policyDocument=document)
    logs.delete_log_group(logGroupName=standard)
    target.eventually(lambda: logs.create_log_group(logGroupName=standard))  # the cleanup deletes it again

    def own_policies() -> list[dict[str, Any]]:
        found = [p for p in logs.describe_index_policies(logGroupIdentifiers=[standard])["indexPolicies"] if p["source"] == "LOG_GROUP"]
        assert found == []  # an account-level policy of the sandbox may still apply: only the group's own is looked for
        return found

    target.eventually(own_policies)


# --- F13: who may assume a role (#31: the archive's pull through a member's reader role) ---------------

def test_f13_a_role_whose_trust_names_a_role_is_assumed_by_that_role_alone(target: Target) -> None:
    """O9/O10: a trust policy naming a role's ARN admits that role's sessions and no other principal of the account, even
    one that may assume roles (AccessDenied "... is not authorized to perform: sts:AssumeRole on resource: ..."); the
    credentials it answers act in the role's account. Checked in one sandbox account: the caller, a first role trusting
    the account, a second trusting only the first (the archive's pull role and a member's reader role)."""
    if not target.real:
        from localaws.organization import Organization

        Organization("o-fidelity1", {target.account_id}).install(boto3.DEFAULT_SESSION)
    iam, sts = target.client("iam"), target.client("sts")
    puller, reader = f"log-group-governor-fidelity-{target.run}-pull", f"log-group-governor-fidelity-{target.run}-read"
    account_trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{target.account_id}:root"},
                                                             "Action": "sts:AssumeRole"}]}
    puller_arn = iam.create_role(RoleName=puller, AssumeRolePolicyDocument=json.dumps(account_trust))["Role"]["Arn"]
    target.on_cleanup(lambda: iam.delete_role(RoleName=puller))
    iam.put_role_policy(RoleName=puller, PolicyName="assume", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": f"arn:aws:iam::{target.account_id}:role/{reader}"}]}))
    target.on_cleanup(lambda: iam.delete_role_policy(RoleName=puller, PolicyName="assume"))
    time.sleep(10 if target.real else 0)  # IAM refuses a trust naming a role it does not know yet
    reader_trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": puller_arn}, "Action": "sts:AssumeRole"}]}
    reader_arn = target.eventually(lambda: iam.create_role(RoleName=reader, AssumeRolePolicyDocument=json.dumps(reader_trust))["Role"]["Arn"])
    target.on_cleanup(lambda: iam.delete_role(RoleName=reader))

    with pytest.raises(ClientError) as refused:
        sts.assume_role(RoleArn=reader_arn, RoleSessionName="fidelity")
    assert _code(refused.value) == "AccessDenied" and "is not authorized to perform: sts:AssumeRole" in str(refused.value)

    def as_puller() -> dict[str, Any]:
        credentials = sts.assume_role(RoleArn=puller_arn, RoleSessionName="fidelity")["Credentials"]
        chained = boto3.client("sts", region_name=target.region, aws_access_key_id=credentials["AccessKeyId"],
                               aws_secret_access_key=credentials["SecretAccessKey"], aws_session_token=credentials["SessionToken"],
                               )
        return chained.assume_role(RoleArn=reader_arn, RoleSessionName="fidelity")["Credentials"]

    assert target.eventually(as_puller)["AccessKeyId"]


# --- F14: a refused delivery disables the filter, and what is written meanwhile is skipped (FIDELITY.md S1-S4) ---

def test_f14_a_refused_delivery_counts_delivery_errors_and_the_next_minutes_are_skipped(target: Target) -> None:
    """The guide ("Subscriptions"): after a non-retryable delivery error "the subscription filter is disabled for up to
    10 minutes ... During this disabled period, logs are skipped"; Metrics: `DeliveryErrors` ("The number of log events
    for which CloudWatch Logs received an error when forwarding data to the subscription destination", dimensions
    LogGroupName, DestinationType, FilterName). The assumed (S2, S3): the window lasts the full 10 minutes, a skipped batch
    counts in no metric. Real account only (about 12 minutes: the metrics come minutes late); offline:
    tests/integration/test_localaws_delivery.py drives localaws.delivery with a fake clock."""
    if not target.real:
        pytest.skip("real account only: localaws.delivery's rules are driven by tests/integration/test_localaws_delivery.py")
    import gzip
    from datetime import datetime, timedelta, timezone

    kinesis, iam, logs, cloudwatch = target.client("kinesis"), target.client("iam"), target.client("logs"), target.client("cloudwatch")
    name = f"log-group-governor-fidelity-{target.run}-gap"
    kinesis.create_stream(StreamName=name, ShardCount=1)
    target.on_cleanup(lambda: kinesis.delete_stream(StreamName=name, EnforceConsumerDeletion=True))
    stream_arn = target.eventually(lambda: _active(kinesis, name), seconds=120)
    put_policy = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kinesis:PutRecord", "Resource": stream_arn}]})
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(LOGS_TRUST))["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="put", PolicyDocument=put_policy)
    target.on_cleanup(lambda: iam.delete_role(RoleName=name))
    target.on_cleanup(lambda: iam.delete_role_policy(RoleName=name, PolicyName="put"))
    group = target.log_group("f14")
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    target.eventually(lambda: logs.put_subscription_filter(logGroupName=group, filterName="f14", filterPattern="", destinationArn=stream_arn,
                                                             roleArn=role), seconds=60)

    def delivered() -> list[str]:
        shard = kinesis.list_shards(StreamName=name)["Shards"][0]["ShardId"]
        iterator = kinesis.get_shard_iterator(StreamName=name, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        documents = [json.loads(gzip.decompress(r["Data"])) for r in kinesis.get_records(ShardIterator=iterator)["Records"]]
        return [e["message"] for d in documents if d["messageType"] == "DATA_MESSAGE" for e in d["logEvents"]]

    _put_events(target, group, "s", ["before the refusal"])

    def first_delivered() -> None:
        assert "before the refusal" in delivered()

    target.eventually(first_delivered, seconds=120)

    iam.delete_role_policy(RoleName=name, PolicyName="put")  # the delivery role loses its permission: a non-retryable error
    time.sleep(30)  # IAM's change reaches CloudWatch Logs
    refused_at = datetime.now(timezone.utc)
    _put_events(target, group, "s", ["refused 1", "refused 2"])
    time.sleep(5)
    iam.put_role_policy(RoleName=name, PolicyName="put", PolicyDocument=put_policy)  # fixed at once: the filter stays disabled
    for wait in (60, 120):  # written in the following minutes, within the 10-minute window
        time.sleep(wait)
        _put_events(target, group, "s", [f"in the window {wait}"])

    def sums(metric: str) -> float:
        """Sums per minute of the metric with exactly these dimensions (GetMetricData answers a metric only by all of them;
        ListMetrics is not asked: "allow up to 15 minutes for the metric to appear")."""
        dimensions = [{"Name": "LogGroupName", "Value": group}, {"Name": "DestinationType", "Value": "Kinesis"}, {"Name": "FilterName", "Value": "f14"}]
        [answer] = cloudwatch.get_metric_data(
            MetricDataQueries=[{"Id": "m", "MetricStat": {"Metric": {"Namespace": "AWS/Logs", "MetricName": metric, "Dimensions": dimensions},
                                                          "Period": 60, "Stat": "Sum"}}],
            StartTime=refused_at - timedelta(seconds=10), EndTime=datetime.now(timezone.utc) + timedelta(minutes=1))["MetricDataResults"]
        return float(sum(answer["Values"]))

    def errors_counted() -> None:
        assert sums("DeliveryErrors") >= 2

    target.eventually(errors_counted, seconds=240)
    remaining = (refused_at + timedelta(minutes=8) - datetime.now(timezone.utc)).total_seconds()
    time.sleep(max(0.0, remaining))  # still inside the window: the metrics of the minutes above have had time to come
    messages = delivered()
    assert not [m for m in messages if m.startswith(("refused", "in the window"))], messages
    assert sums("ForwardedLogEvents") == 0.0
