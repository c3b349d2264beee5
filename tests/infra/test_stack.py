"""The synthesized template: what a reviewer deploying nothing should be able to read in it."""

from __future__ import annotations

import importlib.metadata
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Match

from app import build_app, cli_nulls
from governor.config import ConfigError
from governor.events import EVENTS_BY_ASPECT
from tests.infra.conftest import ACCOUNT, REGION, REPO_CONTEXT, SHIPPER_ARN, Synthesized, synthesize

GAP_HANDLER = "governor.handlers.delivery_gaps.handler"

LOG_GROUPS = {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, f":logs:{REGION}:{ACCOUNT}:log-group:*"]]}


def _actions(statements: list[dict[str, Any]]) -> set[str]:
    found: set[str] = set()
    for statement in statements:
        actions = statement["Action"]
        found.update([actions] if isinstance(actions, str) else actions)
    return found


def test_trail_logs_write_management_events_with_file_validation(default_stack: Synthesized) -> None:
    [trail] = default_stack.of_type("AWS::CloudTrail::Trail")
    props = trail["Properties"]

    assert props["IsLogging"] is True and props["EnableLogFileValidation"] is True
    assert props["EventSelectors"] == [{"IncludeManagementEvents": True, "ReadWriteType": "WriteOnly"}]
    bucket_id = props["S3BucketName"]["Ref"]
    [policy] = [p for p in default_stack.of_type("AWS::S3::BucketPolicy") if p["Properties"]["Bucket"] == {"Ref": bucket_id}]
    cloudtrail_statements = [s for s in policy["Properties"]["PolicyDocument"]["Statement"]
                             if s.get("Principal") == {"Service": "cloudtrail.amazonaws.com"}]
    assert {s["Action"] for s in cloudtrail_statements} == {"s3:GetBucketAcl", "s3:PutObject"}
    for statement in cloudtrail_statements:  # only this trail may write (no confused deputy)
        source_arn = statement["Condition"]["StringEquals"]["aws:SourceArn"]
        assert props["TrailName"] in json.dumps(source_arn) and "cloudtrail" in json.dumps(source_arn)


def test_buckets_block_public_access_and_enforce_tls(default_stack: Synthesized) -> None:
    buckets = default_stack.of_type("AWS::S3::Bucket")
    assert len(buckets) == 4  # the trail's, the backfill reports, the log archive and their access logs
    for bucket in buckets:
        assert bucket["Properties"]["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True,
        }
        assert bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    for policy in default_stack.of_type("AWS::S3::BucketPolicy"):
        denies = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
        assert {"Bool": {"aws:SecureTransport": "false"}} in [s["Condition"] for s in denies]


def _event_handler_mappings(synthesized: Synthesized) -> list[dict]:
    """The event handlers' queue consumers (the delivery-gap function's own queue is another's: test_delivery_gaps)."""
    return [m for m in synthesized.of_type("AWS::Lambda::EventSourceMapping")
            if synthesized.resources[m["Properties"]["FunctionName"]["Ref"]]["Properties"]["Handler"] != GAP_HANDLER]


def _event_rules(synthesized: Synthesized) -> list[dict]:
    """The rules on CloudTrail's records (a schedule's rule has no pattern)."""
    return [r for r in synthesized.of_type("AWS::Events::Rule") if "EventPattern" in r["Properties"]]


def test_one_rule_per_handler_puts_its_aspects_records_into_its_queue_leaving_out_the_governors_own(default_stack: Synthesized) -> None:
    rules = _event_rules(default_stack)
    consumers = {}
    for mapping in _event_handler_mappings(default_stack):
        queue_id = mapping["Properties"]["EventSourceArn"]["Fn::GetAtt"][0]
        consumers[queue_id] = default_stack.resources[mapping["Properties"]["FunctionName"]["Ref"]]
        assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert mapping["Properties"]["ScalingConfig"] == {"MaximumConcurrency": 2}
    roles = {fn["Properties"]["Handler"].rsplit(".", 1)[-1]: fn["Properties"]["Role"] for fn in default_stack.of_type("AWS::Lambda::Function")
             if fn["Properties"]["Handler"].startswith("governor.handlers.")}

    handled = {}
    # The built-in destination is a Lambda function: one more rule, on its own changes (its LoggingConfig), to the subscribe queue.
    [destination_rule] = [r for r in rules if r["Properties"]["EventPattern"]["source"] == ["aws.lambda"]]
    watched = destination_rule["Properties"]["EventPattern"]
    assert watched["detail"]["eventName"] == [{"prefix": "CreateFunction"}, {"prefix": "UpdateFunctionConfiguration"}]
    assert consumers[destination_rule["Properties"]["Targets"][0]["Arn"]["Fn::GetAtt"][0]]["Properties"]["Handler"].endswith("subscribe_log_group")
    rules = [r for r in rules if r is not destination_rule]
    for rule in rules:
        [target] = rule["Properties"]["Targets"]
        consumer = consumers[target["Arn"]["Fn::GetAtt"][0]]["Properties"]["Handler"]
        pattern = rule["Properties"]["EventPattern"]
        assert pattern["source"] == ["aws.logs"] and pattern["detail-type"] == ["AWS API Call via CloudTrail"]
        handled[consumer] = set(pattern["detail"]["eventName"])
        # The governor's three roles (both handlers and the backfill) are left out; other identities are not.
        first, second, third = pattern["detail"]["$or"]
        assert first == {"userIdentity": {"type": [{"anything-but": "AssumedRole"}]}}
        excluded = second["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"][0]["anything-but"]
        assert excluded == [roles["subscribe_log_group"], roles["set_retention"], roles["handler"]]
        # A record without a session issuer matches neither branch above (an absent field never matches anything-but).
        assert third == {"userIdentity": {"sessionContext": {"sessionIssuer": {"arn": [{"exists": False}]}}}}
        # Only this account's and region's records (tests/unit/test_event_rules.py matches real shapes against it).
        assert (pattern["account"], pattern["region"]) == (["123456789012"], ["eu-west-1"])
        assert "DeadLetterConfig" in target and target["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    assert handled == {
        "governor.handlers.create_log_group.subscribe_log_group": set(EVENTS_BY_ASPECT["subscription"]),
        "governor.handlers.create_log_group.set_retention": set(EVENTS_BY_ASPECT["retention"]),
    }
    assert "DeleteSubscriptionFilter" in handled["governor.handlers.create_log_group.subscribe_log_group"]
    assert "PutRetentionPolicy" in handled["governor.handlers.create_log_group.set_retention"]


def test_event_queues_are_encrypted_outlast_their_consumers_and_end_in_an_alarmed_dlq(default_stack: Synthesized) -> None:
    targets = [t for rule in _event_rules(default_stack) for t in rule["Properties"]["Targets"]]
    [dlq_id] = {t["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0] for t in targets}
    for target in targets:
        queue = default_stack.resources[target["Arn"]["Fn::GetAtt"][0]]["Properties"]
        assert queue["SqsManagedSseEnabled"] is True
        assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": [dlq_id, "Arn"]}
        assert queue["VisibilityTimeout"] >= 6 * default_stack.function("set_retention")["Properties"]["Timeout"]
    assert default_stack.resources[dlq_id]["Properties"]["SqsManagedSseEnabled"] is True
    [alarm] = [a for a in default_stack.of_type("AWS::CloudWatch::Alarm")
               if a["Properties"].get("Dimensions") == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq_id, "QueueName"]}}]]
    assert alarm["Properties"]["MetricName"] == "ApproximateNumberOfMessagesVisible" and alarm["Properties"]["Threshold"] == 1
    assert alarm["Properties"]["AlarmActions"]


def test_every_alarm_notifies_the_stacks_own_encrypted_topic_by_default(default_stack: Synthesized) -> None:
    [topic_id] = [k for k, v in default_stack.resources.items() if v["Type"] == "AWS::SNS::Topic"]
    topic = default_stack.resources[topic_id]["Properties"]
    key = default_stack.resources[topic["KmsMasterKeyId"]["Fn::GetAtt"][0]]["Properties"]
    assert key["EnableKeyRotation"] is True
    assert any(s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"} for s in key["KeyPolicy"]["Statement"])
    alarms = default_stack.of_type("AWS::CloudWatch::Alarm")
    assert alarms and all(a["Properties"]["AlarmActions"] == [{"Ref": topic_id}] for a in alarms)
    metrics = {(a["Properties"].get("MetricName"), json.dumps(a["Properties"].get("Dimensions"))) for a in alarms}
    for name in ("Errors", "DestinationErrors", "Conflicts", "ExecutionsFailed", "OwnLogGroupBatchesDropped"):
        assert any(m == name for m, _ in metrics), name
    assert ("Skipped", json.dumps([{"Name": "Reason", "Value": "excluded-tag"}, {"Name": "service", "Value": "log-group-governor"}])) in metrics
    assert default_stack.template.to_json()["Outputs"]["AlarmTopicArn"]["Value"] == {"Ref": topic_id}
    # CloudWatch Logs' own count of what it could not deliver for the governor's filters (a Metrics Insights query).
    [delivery] = [a["Properties"] for a in alarms if "Metrics" in a["Properties"]
                  and "DeliveryErrors" in json.dumps(a["Properties"]["Metrics"])]
    [query] = delivery["Metrics"]
    assert query["Expression"] == ('SELECT SUM(DeliveryErrors) FROM SCHEMA("AWS/Logs", DestinationType, FilterName, LogGroupName) '
                                   "WHERE FilterName = 'log-group-governor'")
    assert query["Period"] == 300


def test_alarm_email_subscribes_to_the_stacks_topic() -> None:
    synthesized = synthesize(alarmEmail="oncall@example.com", createTrail=False)
    [subscription] = synthesized.of_type("AWS::SNS::Subscription")
    assert (subscription["Properties"]["Protocol"], subscription["Properties"]["Endpoint"]) == ("email", "oncall@example.com")


def test_every_function_outlives_its_clients_retry_budget_twice() -> None:
    from governor.aws import retry_budget_s

    for function in synthesize(createTrail=False).of_type("AWS::Lambda::Function"):
        if function["Properties"]["Handler"].startswith("governor."):
            assert function["Properties"]["Timeout"] >= 2 * retry_budget_s(), function["Properties"]["Handler"]


def test_each_function_has_its_own_role_with_only_the_actions_it_calls(default_stack: Synthesized) -> None:
    subscribe = default_stack.function("subscribe_log_group")
    retention = default_stack.function("set_retention")

    assert subscribe["Properties"]["Role"] != retention["Properties"]["Role"]
    # cdk.json excludes by tag, so both may read tags (a batch's in bulk, a changed group's alone); the guard reads
    # ship-logs' logging configuration.
    # An opt-out tag makes the subscription handler remove its own filter; both keep drift state in the table.
    # A new group's first lines (#20) are asked for on the replay queue (#31 item 3: the replay function reads and sends
    # them, off the subscription path): the subscribe function reads no events and writes nothing to the destination.
    assert _actions(default_stack.role_policy_of(subscribe)) == {
        "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogGroups", "logs:DescribeSubscriptionFilters",
        "logs:PutSubscriptionFilter", "logs:DeleteSubscriptionFilter", "logs:ListTagsForResource", "tag:GetResources",
        "lambda:GetFunctionConfiguration", "sqs:SendMessage",
        "sqs:ReceiveMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueUrl", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
        "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:PutItem",
    }
    assert _actions(default_stack.role_policy_of(retention)) == {
        "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogGroups", "logs:PutRetentionPolicy",
        "logs:ListTagsForResource", "tag:GetResources",
        "sqs:ReceiveMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueUrl", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
        "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:PutItem",
    }
    [table] = default_stack.of_type("AWS::DynamoDB::GlobalTable")
    table_id = next(k for k, v in default_stack.resources.items() if v is table or v == table)
    for function in (subscribe, retention):
        [state] = [st for st in default_stack.role_policy_of(function) if "dynamodb:GetItem" in st["Action"]]
        assert state["Resource"] == {"Fn::GetAtt": [table_id, "Arn"]}
    for function in (subscribe, retention):
        role = default_stack.resources[function["Properties"]["Role"]["Fn::GetAtt"][0]]
        assert "ManagedPolicyArns" not in role["Properties"]
        for statement in default_stack.role_policy_of(function):
            # GetResources supports no resource-level permission (the Service Authorization Reference): only *.
            assert statement["Resource"] != "*" or statement["Action"] == "tag:GetResources"


def test_the_state_table_expires_its_items_and_can_be_restored(default_stack: Synthesized) -> None:
    [table] = default_stack.of_type("AWS::DynamoDB::GlobalTable")
    props = table["Properties"]

    assert props["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}
    assert props["Replicas"][0]["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    for function in ("subscribe_log_group", "set_retention", "governor.handlers.backfill.handler"):
        assert "GOVERNOR_STATE_TABLE" in default_stack.function(function)["Properties"]["Environment"]["Variables"]


def test_a_daily_schedule_starts_a_reconcile_run_unless_turned_off(default_stack: Synthesized) -> None:
    [schedule] = default_stack.of_type("AWS::Scheduler::Schedule")
    props = schedule["Properties"]
    [machine_id] = [k for k, v in default_stack.resources.items() if v["Type"] == "AWS::StepFunctions::StateMachine"]

    assert props["ScheduleExpression"] == "rate(1 day)" and props["State"] == "ENABLED"
    assert props["Target"]["Arn"] == {"Ref": machine_id}
    assert json.loads(props["Target"]["Input"]) == {"reconcile": True}
    role = default_stack.resources[props["Target"]["RoleArn"]["Fn::GetAtt"][0]]
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert synthesize(destinationArn=SHIPPER_ARN, reconcileSchedule="null", createTrail=False).of_type("AWS::Scheduler::Schedule") == []
    assert synthesize(destinationArn=SHIPPER_ARN, reconcileSchedule=None, createTrail=False).of_type("AWS::Scheduler::Schedule") == []


def test_a_null_in_cdk_json_reaches_the_app_as_the_cli_passes_it(tmp_path: Path) -> None:
    """jsii drops null context values; the app reads them from the CLI's environment, inline or from a file."""
    context = {"governor:reconcileSchedule": None, "governor:defaultRetentionDays": None, "governor:filterName": "x"}
    assert cli_nulls({"CDK_CONTEXT_JSON": json.dumps(context)}) == {"governor:reconcileSchedule": None, "governor:defaultRetentionDays": None}
    overflow = tmp_path / "context.json"
    overflow.write_text(json.dumps(context))
    assert cli_nulls({"CONTEXT_OVERFLOW_LOCATION_ENV": str(overflow)}) == {"governor:reconcileSchedule": None,
                                                                             "governor:defaultRetentionDays": None}
    assert cli_nulls({}) == {}


def test_orphan_retention_lets_only_the_retention_handler_ask_whether_a_function_exists() -> None:
    synthesized = synthesize(destinationArn=SHIPPER_ARN, orphanRetentionDays=7, createTrail=False)

    [lookup] = [s for s in synthesized.role_policy_of(synthesized.function("set_retention")) if s["Action"] == "lambda:GetFunctionConfiguration"]
    assert lookup["Resource"] == {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, f":lambda:{REGION}:{ACCOUNT}:function:*"]]}


def test_pass_role_is_limited_to_the_delivery_role_and_to_cloudwatch_logs() -> None:
    role = f"arn:aws:iam::{ACCOUNT}:role/logs-to-kinesis"
    synthesized = synthesize(destinationArn=f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/central", destinationRoleArn=role, createTrail=False)

    [pass_role] = [s for s in synthesized.role_policy_of(synthesized.function("subscribe_log_group")) if s["Action"] == "iam:PassRole"]
    assert pass_role == {"Action": "iam:PassRole", "Effect": "Allow", "Resource": role,
                         "Condition": {"StringEquals": {"iam:PassedToService": "logs.amazonaws.com"}}}
    assert synthesized.of_type("AWS::Lambda::Function") and not [
        f for f in synthesized.of_type("AWS::Lambda::Function") if f["Properties"]["Handler"].endswith("ship_logs.handler.handler")]


def test_log_group_permissions_are_scoped_to_the_account_and_region(default_stack: Synthesized) -> None:
    statements = default_stack.role_policy_of(default_stack.function("set_retention"))

    [governing] = [s for s in statements if "logs:PutRetentionPolicy" in s["Action"]]
    assert governing["Resource"] == LOG_GROUPS


def test_failed_ship_logs_invocations_go_to_an_encrypted_dlq_with_an_alarm(default_stack: Synthesized) -> None:
    function = default_stack.function("ship_logs.handler.handler")
    queue_id = function["Properties"]["DeadLetterConfig"]["TargetArn"]["Fn::GetAtt"][0]

    assert default_stack.resources[queue_id]["Properties"]["SqsManagedSseEnabled"] is True
    function_id = next(k for k, v in default_stack.resources.items() if v == function)
    [invoke_config] = [c for c in default_stack.of_type("AWS::Lambda::EventInvokeConfig") if c["Properties"]["FunctionName"] == {"Ref": function_id}]
    assert invoke_config["Properties"]["MaximumRetryAttempts"] == 2
    [alarm] = [a for a in default_stack.of_type("AWS::CloudWatch::Alarm")
               if a["Properties"].get("Dimensions") == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}]]
    assert alarm["Properties"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Properties"]["Threshold"] == 1


def test_functions_carry_the_validated_configuration(default_stack: Synthesized) -> None:
    environment = default_stack.function("set_retention")["Properties"]["Environment"]["Variables"]
    # ship-logs' ARN is a token: the JSON is joined around it at deploy time.
    joined = "".join(part if isinstance(part, str) else "<token>" for part in environment["GOVERNOR_CONFIG"]["Fn::Join"][1])
    config = json.loads(joined)

    assert config["defaultRetentionDays"] == 30 and config["excludeTags"] == {"log-group-governor:opt-out": "true"}
    assert config["destinationArn"] == "<token>" and config["destinationRoleArn"] == ""


def test_no_lambda_permission_unless_the_destination_is_a_lambda() -> None:
    synthesized = synthesize(destinationArn=f"arn:aws:firehose:{REGION}:{ACCOUNT}:deliverystream/central",
                             destinationRoleArn=f"arn:aws:iam::{ACCOUNT}:role/logs-to-firehose", createTrail=False)
    permissions = [p for p in synthesized.of_type("AWS::Lambda::Permission") if p["Properties"]["Principal"] == "logs.amazonaws.com"]

    assert permissions == []


def test_lambda_destination_gets_one_wildcard_permission_for_cloudwatch_logs(lambda_destination_stack: Synthesized) -> None:
    permissions = [p for p in lambda_destination_stack.of_type("AWS::Lambda::Permission") if p["Properties"]["Principal"] == "logs.amazonaws.com"]

    assert [p["Properties"] for p in permissions] == [{
        "Action": "lambda:InvokeFunction",
        "FunctionName": SHIPPER_ARN,
        "Principal": "logs.amazonaws.com",
        "SourceAccount": ACCOUNT,
        "SourceArn": LOG_GROUPS,
    }]


def test_lambda_destination_configuration(lambda_destination_stack: Synthesized) -> None:
    subscribe = lambda_destination_stack.function("subscribe_log_group")
    statements = lambda_destination_stack.role_policy_of(subscribe)

    # DeleteSubscriptionFilter: a group the Lambda destination is re-pointed at loses the governor's filter (#18).
    assert _actions(statements) == {
        "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogGroups", "logs:DescribeSubscriptionFilters",
        "logs:PutSubscriptionFilter", "logs:DeleteSubscriptionFilter", "lambda:GetFunctionConfiguration", "sqs:SendMessage",
        "sqs:ReceiveMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueUrl", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
        "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:PutItem",
    }
    # The guard reads the destination's configuration (the subscribe function); the replay invokes it (the replay
    # function): each on that function alone.
    replays = lambda_destination_stack.role_policy_of(lambda_destination_stack.function("governor.handlers.delivery_gaps.handler"))
    on_the_shipper = [s for s in (*statements, *replays) if {"lambda:GetFunctionConfiguration", "lambda:InvokeFunction"} & set(_actions([s]))]
    assert {a for s in on_the_shipper for a in _actions([s])} == {"lambda:GetFunctionConfiguration", "lambda:InvokeFunction"}
    assert all(s["Resource"] == SHIPPER_ARN for s in on_the_shipper)
    assert json.loads(subscribe["Properties"]["Environment"]["Variables"]["GOVERNOR_CONFIG"])["destinationArn"] == SHIPPER_ARN
    assert lambda_destination_stack.of_type("AWS::CloudTrail::Trail") == []
    assert lambda_destination_stack.of_type("AWS::Kinesis::Stream") == []
    alarms = lambda_destination_stack.of_type("AWS::CloudWatch::Alarm")
    assert alarms and all(a["Properties"]["AlarmActions"] == [f"arn:aws:sns:{REGION}:{ACCOUNT}:ops"] for a in alarms)
    assert lambda_destination_stack.of_type("AWS::SNS::Topic") == []


def test_logs_destination_needs_put_subscription_filter_on_the_destination_too() -> None:
    central = "arn:aws:logs:eu-west-1:210987654321:destination:central"
    synthesized = synthesize(destinationArn=central, excludeTags={}, createTrail=False)

    statements = synthesized.role_policy_of(synthesized.function("subscribe_log_group"))
    [put] = [s for s in statements if s["Action"] == "logs:PutSubscriptionFilter"]
    assert sorted(put["Resource"], key=json.dumps) == sorted([LOG_GROUPS, central], key=json.dumps)
    assert "iam:PassRole" not in _actions(statements)
    for function in ("subscribe_log_group", "set_retention"):  # no exclusion tag: tags are never read
        actions = _actions(synthesized.role_policy_of(synthesized.function(function)))
        assert not {"tag:GetResources", "logs:ListTagsForResource"} & actions


def test_a_new_groups_first_lines_are_asked_for_on_the_replay_queue_and_only_there(default_stack: Synthesized) -> None:
    """#31 item 3: the subscribe function sends to the replay function's queue alone (a new group's first lines, which the
    replay function reads and sends, or queues again to go on); set-retention sends nothing."""
    subscribe = default_stack.function("subscribe_log_group")
    replays = default_stack.function("governor.handlers.delivery_gaps.handler")
    [url] = [v for k, v in subscribe["Properties"]["Environment"]["Variables"].items() if k == "GOVERNOR_GAP_QUEUE_URL"]
    [send] = [s for s in default_stack.role_policy_of(subscribe) if "sqs:SendMessage" in s["Action"]]
    [mapping] = [m for m in default_stack.of_type("AWS::Lambda::EventSourceMapping")
                 if m["Properties"]["FunctionName"] == {"Ref": next(k for k, v in default_stack.resources.items() if v == replays)}]
    queue_id = mapping["Properties"]["EventSourceArn"]["Fn::GetAtt"][0]
    assert url == {"Ref": queue_id} and send["Resource"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    assert replays["Properties"]["Environment"]["Variables"]["GOVERNOR_GAP_QUEUE_URL"] == {"Ref": queue_id}
    assert "sqs:SendMessage" not in _actions(default_stack.role_policy_of(default_stack.function("set_retention")))
    assert not {"logs:FilterLogEvents", "lambda:InvokeFunction"} & _actions(default_stack.role_policy_of(subscribe))


# --- governance rules (#21): roles for exactly the controls the rules use ------------------------------

def test_a_rule_with_deletion_protection_deploys_its_handler_with_only_that_write(rules_stack: Synthesized) -> None:
    protect = rules_stack.function("protection")

    # The rules read a tag (workload): the group's tags in bulk and alone, as the other handlers do.
    assert _actions(rules_stack.role_policy_of(protect)) == {
        "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogGroups", "logs:PutLogGroupDeletionProtection",
        "logs:ListTagsForResource", "tag:GetResources",
        "sqs:ReceiveMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueUrl", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
        "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:PutItem",
    }
    for other in ("subscribe_log_group", "set_retention"):
        assert "logs:PutLogGroupDeletionProtection" not in _actions(rules_stack.role_policy_of(rules_stack.function(other)))
    backfill = rules_stack.function("governor.handlers.backfill.handler")
    assert "logs:PutLogGroupDeletionProtection" in _actions(rules_stack.role_policy_of(backfill))  # the reconcile repairs it too
    [rule] = [r for r in rules_stack.of_type("AWS::Events::Rule")
              if "PutLogGroupDeletionProtection" in json.dumps(r["Properties"].get("EventPattern", {}))]
    assert rule["Properties"]["EventPattern"]["detail"]["eventName"] == ["CreateLogGroup", "PutLogGroupDeletionProtection", "TagResource",
                                                                         "UntagResource", "TagLogGroup", "UntagLogGroup"]


def test_a_rule_with_a_kms_key_deploys_its_handler_which_may_read_that_keys_policy_alone(rules_stack: Synthesized) -> None:
    from tests.infra.conftest import RULES_KEY

    encrypt = rules_stack.function("encryption")
    statements = rules_stack.role_policy_of(encrypt)

    assert {"logs:DescribeLogGroups", "logs:AssociateKmsKey", "kms:GetKeyPolicy"} <= _actions(statements)
    assert not {"logs:DisassociateKmsKey", "logs:PutLogGroupDeletionProtection", "logs:PutRetentionPolicy"} & _actions(statements)
    [read] = [st for st in statements if st["Action"] == "kms:GetKeyPolicy"]
    [created] = _rule_keys(rules_stack)  # the audit rule's "create"
    key_id = next(k for k, v in rules_stack.resources.items() if v == created)
    assert sorted(read["Resource"], key=str) == sorted([RULES_KEY, {"Fn::GetAtt": [key_id, "Arn"]}], key=str)
    for other in ("subscribe_log_group", "set_retention", "protection"):
        assert "logs:AssociateKmsKey" not in _actions(rules_stack.role_policy_of(rules_stack.function(other)))


def _rule_keys(synthesized: Synthesized) -> list[dict[str, Any]]:
    return [k for k in synthesized.of_type("AWS::KMS::Key") if k["Properties"].get("Description", "").startswith("log-group-governor: the KMS key of")]


def test_a_rule_asking_for_a_key_gets_one_the_functions_and_the_cli_can_find(rules_stack: Synthesized) -> None:
    [key] = _rule_keys(rules_stack)
    key_id = next(k for k, v in rules_stack.resources.items() if v == key)

    assert key["Properties"]["EnableKeyRotation"] is True and key["DeletionPolicy"] == "Retain"
    [logs] = [st for st in key["Properties"]["KeyPolicy"]["Statement"] if "Service" in st.get("Principal", {})]
    assert logs["Principal"]["Service"] == "logs.eu-west-1.amazonaws.com"
    assert logs["Condition"] == {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": {
        "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":logs:eu-west-1:123456789012:log-group:*"]]}}}
    config = json.dumps(rules_stack.function("encryption")["Properties"]["Environment"]["Variables"]["GOVERNOR_CONFIG"])
    assert '"create"' not in config and key_id in config  # the functions get the key's ARN, resolved at deploy
    assert key_id in json.dumps(rules_stack.template.to_json()["Outputs"]["RuleKeyArns"])


def test_a_rule_with_data_protection_deploys_its_handler_with_only_those_calls(rules_stack: Synthesized) -> None:
    statements = rules_stack.role_policy_of(rules_stack.function("data-protection"))

    assert {"logs:DescribeLogGroups", "logs:GetDataProtectionPolicy", "logs:PutDataProtectionPolicy"} <= _actions(statements)
    # The production rule sends audit findings to a log group: a log delivery's rights, for this handler alone.
    assert {"logs:CreateLogDelivery", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies"} <= _actions(statements)
    assert not {"logs:DeleteDataProtectionPolicy", "logs:AssociateKmsKey", "logs:PutLogGroupDeletionProtection"} & _actions(statements)
    for other in ("subscribe_log_group", "set_retention", "protection", "encryption"):
        assert not {"logs:PutDataProtectionPolicy", "logs:CreateLogDelivery"} & _actions(rules_stack.role_policy_of(rules_stack.function(other)))


def test_the_dashboard_shows_each_governed_controls_compliance(rules_stack: Synthesized, lambda_destination_stack: Synthesized) -> None:
    def body(synthesized: Synthesized) -> str:
        [dashboard] = synthesized.of_type("AWS::CloudWatch::Dashboard")
        return json.dumps(dashboard["Properties"]["DashboardBody"])

    for control in ("subscription", "retention", "protection", "encryption", "data-protection"):
        assert f'\\"Control\\",\\"{control}\\"' in body(rules_stack)
    assert "protection" not in body(lambda_destination_stack)  # no rule, no line


def test_data_protection_through_the_accounts_policy_deploys_no_handler_for_it() -> None:
    synthesized = synthesize(destinationArn=SHIPPER_ARN, excludeTags={}, createTrail=False, dataProtectionVia="account-policy",
                             rules=[{"name": "pii everywhere", "dataProtection": {"identifiers": ["EmailAddress"]}}])

    assert not synthesized.functions("data-protection")
    backfill = _actions(synthesized.role_policy_of(synthesized.function("governor.handlers.backfill.handler")))
    assert "logs:PutDataProtectionPolicy" not in backfill  # `log-group-governor apply` writes the account's policy


def test_a_rules_own_destinations_are_granted_as_destinationArn_is() -> None:
    stream = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/audit-logs"
    role = f"arn:aws:iam::{ACCOUNT}:role/CWLtoKinesisRole"
    central = "arn:aws:logs:eu-west-1:210987654321:destination:security"
    synthesized = synthesize(destinationArn=SHIPPER_ARN, excludeTags={}, createTrail=False, rules=[
        {"name": "audit", "match": {"namePrefixes": ["/audit/"]}, "shipping": {"enabled": True, "destinationArn": stream, "destinationRoleArn": role}},
        {"name": "security", "match": {"namePrefixes": ["/security/"]}, "shipping": {"enabled": True, "destinationArn": central}}])

    statements = synthesized.role_policy_of(synthesized.function("subscribe_log_group"))
    [put] = [st for st in statements if st["Action"] == "logs:PutSubscriptionFilter"]
    [passed] = [st for st in statements if st["Action"] == "iam:PassRole"]
    assert central in put["Resource"] and stream not in put["Resource"]  # a Logs destination is a resource; a stream is reached by role
    assert passed["Resource"] == role and passed["Condition"] == {"StringEquals": {"iam:PassedToService": "logs.amazonaws.com"}}
    # The replay function writes to each same-account destination a group may have: the shipper (Lambda) and the rule's stream.
    replays = synthesized.role_policy_of(synthesized.function("governor.handlers.delivery_gaps.handler"))
    writes = {st["Resource"] for st in replays if {"kinesis:PutRecord", "lambda:InvokeFunction"} & set(_actions([st]))}
    assert writes == {stream, SHIPPER_ARN}


def test_without_a_rule_that_uses_a_control_nothing_may_exercise_it(lambda_destination_stack: Synthesized) -> None:
    assert not [f for aspect in ("protection", "encryption", "data-protection", "field-indexes") for f in lambda_destination_stack.functions(aspect)]
    for function in ("subscribe_log_group", "set_retention", "governor.handlers.backfill.handler"):
        actions = _actions(lambda_destination_stack.role_policy_of(lambda_destination_stack.function(function)))
        assert not {"logs:PutLogGroupDeletionProtection", "logs:AssociateKmsKey", "kms:GetKeyPolicy", "tag:GetResources",
                    "logs:ListTagsForResource", "logs:PutDataProtectionPolicy", "logs:GetDataProtectionPolicy"} & actions


def test_rules_that_read_tags_or_turn_shipping_off_grant_exactly_that(rules_stack: Synthesized) -> None:
    subscribe = _actions(rules_stack.role_policy_of(rules_stack.function("subscribe_log_group")))

    assert {"logs:ListTagsForResource", "tag:GetResources"} <= subscribe  # the noisy-batch rule selects by tag (no excludeTags)
    assert "logs:DeleteSubscriptionFilter" in subscribe  # the scratch rule turns shipping off: the governor's own filter goes


def test_event_batches_fill_one_bulk_look_up_within_a_batching_window(default_stack: Synthesized) -> None:
    """#20, item 4: 50 messages (one DescribeLogGroups by logGroupIdentifiers); SQS takes more than 10 only with a window."""
    mappings = _event_handler_mappings(default_stack)
    assert {(m["Properties"]["BatchSize"], m["Properties"]["MaximumBatchingWindowInSeconds"]) for m in mappings} == {(50, 5)}


def test_event_handler_concurrency_caps_the_queue_consumers_and_reaches_their_pacing() -> None:
    synthesized = synthesize(eventHandlerConcurrency=5, createTrail=False)
    assert {m["Properties"]["ScalingConfig"]["MaximumConcurrency"] for m in _event_handler_mappings(synthesized)} == {5}
    assert synthesized.function("set_retention")["Properties"]["Environment"]["Variables"]["GOVERNOR_EVENT_CONCURRENCY"] == "5"
    assert "ReservedConcurrentExecutions" not in synthesized.function("set_retention")["Properties"]


def test_functions_run_python_on_arm_with_the_tested_powertools(default_stack: Synthesized) -> None:
    """The layer is built from the release the tests run (requirements-dev.lock), not a public layer version."""
    function = default_stack.function("subscribe_log_group")["Properties"]
    [layer_id] = [layer["Ref"] for layer in function["Layers"]]
    layer = default_stack.resources[layer_id]

    assert (function["Runtime"], function["Architectures"]) == ("python3.13", ["arm64"])
    assert layer["Type"] == "AWS::Lambda::LayerVersion" and layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    asset = default_stack.outdir / ("asset." + layer["Properties"]["Content"]["S3Key"].removesuffix(".zip"))
    shipped = (asset / "python" / "aws_lambda_powertools" / "shared" / "version.py").read_text()
    assert f'VERSION = "{importlib.metadata.version("aws-lambda-powertools")}"' in shipped  # the version these tests import
    assert (asset / "python" / "typing_extensions.py").is_file() and (asset / "python" / "jmespath").is_dir()
    assert all(f["Properties"]["Layers"] == [{"Ref": layer_id}] for f in default_stack.of_type("AWS::Lambda::Function")
               if "Layers" in f["Properties"])


def test_a_named_powertools_layer_replaces_the_built_one() -> None:
    named = "arn:aws-cn:lambda:cn-north-1:498634801083:layer:AWSLambdaPowertoolsPythonV3-python313-arm64:27"

    function = synthesize(powertoolsLayerArn=named).function("subscribe_log_group")["Properties"]

    assert function["Layers"] == [named]


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"governor:defaultRetentionDays": 45}, "defaultRetentionDays: 45 is not a retention"),
        ({"governor:destinationArn": "arn:aws:kinesis:eu-west-1:123456789012:stream/logs"}, "destinationRoleArn: a kinesis destination needs"),
        ({"governor:excludePrefix": ["/tmp"]}, "unknown context key"),
        ({"governor:excludePrefixes": ["/a" * 2000]}, "must fit Lambda's 4 KB environment"),
    ],
)
def test_invalid_configuration_stops_synth_with_a_message_naming_the_key(context: dict[str, Any], message: str) -> None:
    app = cdk.App(context={**REPO_CONTEXT, **context})

    with pytest.raises(ConfigError, match=message):
        build_app(app)


# --- cdk-nag ------------------------------------------------------------------------------------

@pytest.mark.parametrize("stack_fixture", ["default_stack", "lambda_destination_stack", "uninstall_stack", "native_stack", "rules_stack"])
def test_cdk_nag_reports_no_open_finding_and_a_reason_for_every_acknowledged_one(stack_fixture: str, request: pytest.FixtureRequest) -> None:
    synthesized: Synthesized = request.getfixturevalue(stack_fixture)
    report = json.loads((synthesized.outdir / "validation-report.json").read_text())
    [nag] = [r for r in report["pluginReports"] if r["pluginName"] == "AwsSolutions"]

    assert (nag["conclusion"], nag["violations"]) == ("success", [])
    acknowledged = {v["ruleName"].split("[")[0]: v["reason"] for v in nag["suppressedViolations"]}
    # The uninstall's Provider framework brings CDK's own functions (managed basic execution policy) and waiter state machine.
    expected = {"AwsSolutions-IAM5", "AwsSolutions-L1"} | ({"AwsSolutions-IAM4", "AwsSolutions-SF1", "AwsSolutions-SF2"} if stack_fixture in ("uninstall_stack", "native_stack") else set())
    assert set(acknowledged) == expected
    assert all(len(v["reason"]) > 30 for v in nag["suppressedViolations"])


def test_the_custom_resource_providers_iam4_acknowledgement_covers_it_alone() -> None:
    """An acknowledgement on the whole stack would hide a future managed policy anywhere in it."""
    outdir = Path(tempfile.mkdtemp(prefix="cdk.out-"))
    app = cdk.App(context={**REPO_CONTEXT, "governor:backfillOnDeploy": True, "governor:createTrail": False}, outdir=str(outdir))
    stack = build_app(app, env=cdk.Environment(account=ACCOUNT, region=REGION))
    careless = iam.Role(stack, "CarelessRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    careless.add_managed_policy(iam.ManagedPolicy.from_aws_managed_policy_name("service-role/AWSLambdaBasicExecutionRole"))

    with pytest.raises(Exception):
        app.synth()
    [nag] = [r for r in json.loads((outdir / "validation-report.json").read_text())["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    assert [v["ruleName"].split("[")[0] for v in nag["violations"]] == ["AwsSolutions-IAM4"]
    assert "CarelessRole" in json.dumps(nag["violations"])


def test_cdk_nag_fails_synth_on_an_unacknowledged_finding() -> None:
    """The check can fail: an unencrypted queue without TLS enforcement must stop synth."""
    app = cdk.App(context=REPO_CONTEXT, outdir=tempfile.mkdtemp())
    stack = build_app(app, env=cdk.Environment(account=ACCOUNT, region=REGION))
    sqs.Queue(stack, "CarelessQueue", encryption=sqs.QueueEncryption.UNENCRYPTED)

    with pytest.raises(Exception, match="AwsSolutions-SQS"):
        app.synth()


# --- cfn-lint -----------------------------------------------------------------------------------

#: cfn-lint checks skipped on CDK output, each with its reason.
CFN_LINT_IGNORED = {
    # CDK adds DependsOn on a function's role next to the GetAtt it already has, so the
    # role's inline policy exists before the function is created; the duplicate is harmless.
    "W3005": "CDK makes role dependencies explicit",
}


@pytest.mark.parametrize("stack_fixture", ["default_stack", "lambda_destination_stack", "uninstall_stack", "native_stack", "rules_stack"])
def test_cfn_lint_finds_nothing(stack_fixture: str, request: pytest.FixtureRequest) -> None:
    from cfnlint.api import ManualArgs, lint

    synthesized: Synthesized = request.getfixturevalue(stack_fixture)
    template = json.dumps(synthesized.template.to_json())

    matches = lint(template, config=ManualArgs(regions=[REGION], ignore_checks=list(CFN_LINT_IGNORED)))

    assert [str(m) for m in matches] == []


def test_cfn_lint_is_not_vacuous() -> None:
    from cfnlint.api import ManualArgs, lint

    broken = {"Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {"VisibilityTimeout": "a while"}}}}

    assert lint(json.dumps(broken), config=ManualArgs(regions=[REGION])) != []


def test_matching_uses_properties_not_logical_ids(default_stack: Synthesized) -> None:
    default_stack.template.has_resource_properties("AWS::Lambda::Function", Match.object_like({"Handler": "governor.handlers.create_log_group.set_retention"}))


# --- the backfill -------------------------------------------------------------------------------

def test_backfill_state_machine_loops_a_lambda_slice_until_done(default_stack: Synthesized) -> None:
    [machine] = default_stack.of_type("AWS::StepFunctions::StateMachine")
    definition = json.loads("".join(p if isinstance(p, str) else "<token>" for p in machine["Properties"]["DefinitionString"]["Fn::Join"][1]))
    states = definition["States"]
    [task_name] = [name for name, state in states.items() if state["Type"] == "Task"]
    [choice] = [state for state in states.values() if state["Type"] == "Choice"]
    task = states[task_name]

    assert definition["StartAt"] == task_name and task["Next"] == "Done?"
    assert task["Parameters"] == {"execution.$": "$$.Execution.Name", "input.$": "$$.Execution.Input"}
    assert task["Retry"][0] == {"ErrorEquals": ["BadRequest", "ConfigError"], "MaxAttempts": 0}
    assert task["Retry"][1]["ErrorEquals"] == ["States.ALL"] and task["Retry"][1]["MaxAttempts"] >= 5
    assert choice["Choices"] == [{"Variable": "$.done", "BooleanEquals": True, "Next": "Finished"}]
    assert choice["Default"] == task_name  # the loop
    assert machine["Properties"]["TracingConfiguration"] == {"Enabled": True}
    assert machine["Properties"]["LoggingConfiguration"]["Level"] == "ALL"


def test_backfill_function_can_do_both_aspects_and_keep_its_checkpoints(default_stack: Synthesized) -> None:
    backfill = default_stack.function("governor.handlers.backfill.handler")
    props = backfill["Properties"]

    assert props["Timeout"] == 900
    assert _actions(default_stack.role_policy_of(backfill)) == {
        "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogGroups", "logs:DescribeSubscriptionFilters",
        "logs:PutSubscriptionFilter", "logs:DeleteSubscriptionFilter", "logs:PutRetentionPolicy", "logs:ListTagsForResource",
        "lambda:GetFunctionConfiguration", "lambda:ListFunctions", "tag:GetResources", "s3:GetObject", "s3:PutObject", "s3:ListBucket",
        "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:PutItem", "dynamodb:Scan", "dynamodb:DeleteItem",
    }
    bucket_id = props["Environment"]["Variables"]["GOVERNOR_REPORTS_BUCKET"]["Ref"]
    bucket = default_stack.resources[bucket_id]["Properties"]
    assert bucket["PublicAccessBlockConfiguration"]["BlockPublicPolicy"] is True
    assert "LoggingConfiguration" in bucket
    assert props["Environment"]["Variables"]["GOVERNOR_CONFIG"] == default_stack.function("set_retention")["Properties"]["Environment"]["Variables"]["GOVERNOR_CONFIG"]


def test_backfill_is_started_by_hand_unless_configured_to_start_on_deploy(default_stack: Synthesized) -> None:
    assert default_stack.of_type("Custom::AWS") == []

    synthesized = synthesize(backfillOnDeploy=True, createTrail=False)

    [start] = synthesized.of_type("Custom::AWS")
    create = json.loads("".join(p if isinstance(p, str) else "<token>" for p in start["Properties"]["Create"]["Fn::Join"][1]))
    assert create["action"] == "startExecution"
    assert json.loads(create["parameters"]["input"])["runId"].startswith("deploy-")
    again = synthesize(backfillOnDeploy=True, createTrail=False, defaultRetentionDays=90)
    [start_again] = again.of_type("Custom::AWS")
    assert start_again["Properties"]["Create"] != start["Properties"]["Create"]  # a new policy is a new run


def test_stack_outputs_tell_how_to_start_a_backfill(default_stack: Synthesized) -> None:
    outputs = default_stack.template.to_json()["Outputs"]

    assert {"BackfillStateMachineArn", "ReportsBucket", "DestinationArn", "DestinationRoleArn"} <= set(outputs)
    assert "start-execution" in outputs["BackfillStateMachineArn"]["Description"]


def test_the_cdk_app_needs_only_requirements_txt() -> None:
    """app.py, org_app.py and stacks/ import the configuration code, which needs neither boto3 nor
    Powertools: requirements.txt (the CDK apps') does not list them."""
    import subprocess
    import sys

    script = (
        "import sys; sys.modules['boto3'] = None; sys.modules['botocore'] = None; sys.modules['aws_lambda_powertools'] = None\n"
        "import aws_cdk as cdk, app, org_app\n"
        "context = __import__('json').load(open('cdk.json'))['context']\n"
        "app.build_app(cdk.App(context=context))\n"
        "org_app.build_org_app(cdk.App(context={**context, 'archive:organizationId': 'o-exampleorg1', 'rollout:centralAccount': '111111111111',"
        " 'rollout:regions': ['eu-west-1'], 'rollout:waves': [['ou-exam-11111111']]}))\n"
        "print('built')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=120)

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("built")


# --- ship-logs, the built-in destination ----------------------------------------------------------

def test_no_destination_configured_deploys_ship_logs_capped_and_guarded(default_stack: Synthesized) -> None:
    ship_logs = default_stack.function("ship_logs.handler.handler")
    ship_logs_id = next(k for k, v in default_stack.resources.items() if v == ship_logs)

    assert ship_logs["Properties"]["ReservedConcurrentExecutions"] == 10
    [permission] = [p["Properties"] for p in default_stack.of_type("AWS::Lambda::Permission") if p["Properties"]["Principal"] == "logs.amazonaws.com"]
    assert permission["FunctionName"] == {"Fn::GetAtt": [ship_logs_id, "Arn"]} and permission["SourceArn"] == LOG_GROUPS
    # The guard knows ship-logs' own log group and the archive's delivery-error log group.
    protected = default_stack.function("subscribe_log_group")["Properties"]["Environment"]["Variables"]["GOVERNOR_PROTECTED_LOG_GROUPS"]
    refs = json.dumps(protected)
    assert ship_logs["Properties"]["LoggingConfig"]["LogGroup"]["Ref"] in refs
    assert "ShipLogsArchiveDeliveryErrors" in refs


def test_ship_logs_role_can_write_to_its_archive_and_its_dlq_and_publish_no_metric_unless_asked(default_stack: Synthesized) -> None:
    ship_logs = default_stack.function("ship_logs.handler.handler")
    statements = default_stack.role_policy_of(ship_logs)

    # No metric family by default (shipLogs.metrics): no cloudwatch:PutMetricData.
    assert _actions(statements) == {"logs:CreateLogStream", "logs:PutLogEvents", "firehose:PutRecordBatch", "sqs:SendMessage"}
    [put_records] = [s for s in statements if s["Action"] == "firehose:PutRecordBatch"]
    [stream] = default_stack.of_type("AWS::KinesisFirehose::DeliveryStream")
    assert put_records["Resource"]["Fn::GetAtt"][1] == "Arn"
    assert stream["Properties"]["DeliveryStreamEncryptionConfigurationInput"] == {"KeyType": "AWS_OWNED_CMK"}
    assert stream["Properties"]["ExtendedS3DestinationConfiguration"]["CompressionFormat"] == "GZIP"
    sink = json.loads("".join(p if isinstance(p, str) else "arn:aws:firehose:eu-west-1:123456789012:deliverystream/x"
                              for p in ship_logs["Properties"]["Environment"]["Variables"]["GOVERNOR_SHIP_LOGS"]["Fn::Join"][1]))
    assert sink["sink"] == "firehose" and sink["deliveryStreamArn"].startswith("arn:aws:firehose:")


@pytest.mark.parametrize("family", ["usage", "custom"])
def test_a_metric_family_asked_for_lets_ship_logs_put_metric_data(family: str) -> None:
    synthesized = synthesize(shipLogs={"metrics": {family: True}}, createTrail=False)
    ship_logs = synthesized.function("ship_logs.handler.handler")
    statements = synthesized.role_policy_of(ship_logs)

    [put] = [s for s in statements if s["Action"] == "cloudwatch:PutMetricData"]
    assert put["Resource"] == "*"
    sink = json.loads("".join(p if isinstance(p, str) else "arn:aws:firehose:eu-west-1:123456789012:deliverystream/x"
                              for p in ship_logs["Properties"]["Environment"]["Variables"]["GOVERNOR_SHIP_LOGS"]["Fn::Join"][1]))
    assert sink["metrics"] == {"usage": family == "usage", "custom": family == "custom", "maxDimensionValues": 100}


def test_opensearch_sink_with_basic_auth_reads_only_its_secret() -> None:
    secret = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:opensearch-shipper-AbCdEf"
    synthesized = synthesize(shipLogs={"sink": "opensearch", "endpoint": "https://search-logs-abc.eu-west-1.es.amazonaws.com",
                                       "auth": "basic", "secretArn": secret, "reservedConcurrency": 3}, createTrail=False)
    ship_logs = synthesized.function("ship_logs.handler.handler")
    statements = synthesized.role_policy_of(ship_logs)

    assert [s["Resource"] for s in statements if s["Action"] == "secretsmanager:GetSecretValue"] == [secret]
    assert "firehose:PutRecordBatch" not in _actions(statements)
    assert synthesized.of_type("AWS::KinesisFirehose::DeliveryStream") == []
    assert ship_logs["Properties"]["ReservedConcurrentExecutions"] == 3


def test_sigv4_sink_may_post_only_to_the_domains_bulk_api() -> None:
    domain = f"arn:aws:es:{REGION}:{ACCOUNT}:domain/logs"
    synthesized = synthesize(shipLogs={"sink": "opensearch", "endpoint": "https://search-logs-abc.eu-west-1.es.amazonaws.com",
                                       "auth": "sigv4", "domainArn": domain}, createTrail=False)

    statements = synthesized.role_policy_of(synthesized.function("ship_logs.handler.handler"))
    assert [s["Resource"] for s in statements if s["Action"] == "es:ESHttpPost"] == [[f"{domain}/_bulk", f"{domain}/_index_template/log-group-governor"]]


@pytest.mark.parametrize(
    ("ship_logs", "message"),
    [
        ({"sink": "splunk"}, "shipLogs.sink: 'splunk' is not one of opensearch, http, firehose"),
        ({"sink": "opensearch"}, "shipLogs.endpoint: a opensearch sink needs an https:// URL"),
        ({"sink": "http", "endpoint": "http://logs.example.com/ingest"}, "needs an https:// URL"),
        ({"sink": "opensearch", "endpoint": "http://127.0.0.1:9200"}, "needs an https:// URL"),  # loopback too, when deployed
        ({"sink": "http", "endpoint": "https://logs.example.com", "auth": "sigv4"}, "shipLogs.auth: a http sink takes none, basic, header"),
        ({"sink": "http", "endpoint": "https://logs.example.com", "auth": "header"}, "shipLogs.secretArn: header auth reads its credentials"),
        ({"sink": "opensearch", "endpoint": "https://x.example.com", "auth": "sigv4"}, "shipLogs.domainArn: sigv4 auth needs"),
        ({"sink": "firehose", "reservedConcurrency": 0}, "shipLogs.reservedConcurrency: expected 1 to 1000"),
        ({"sink": "opensearch", "endpoint": "https://x.example.com", "index": "Logs"}, "shipLogs.index: expected a lowercase"),
        ({"sinks": "firehose"}, "shipLogs: unknown key\\(s\\) .sinks. \\(did you mean .sink.\\?\\)"),
        ({"customMetricNamespaces": ["Orders"]}, "shipLogs.customMetricNamespaces: names namespaces, but shipLogs.metrics.custom is false"),
        ({"metrics": {"usage": "yes"}}, "shipLogs.metrics.usage: expected true or false; got 'yes'"),
        ({"metrics": {"usage": True, "maxDimensionValues": 0}}, "shipLogs.metrics.maxDimensionValues: expected 1 to 10000"),
        ({"metrics": {"usgae": True}}, "shipLogs.metrics: unknown key\\(s\\) .usgae. \\(did you mean .usage.\\?\\)"),
        ({"metrics": ["usage"]}, "metrics: expected an object"),
    ],
)
def test_bad_ship_logs_configuration_stops_synth(ship_logs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_app(cdk.App(context={**REPO_CONTEXT, "governor:shipLogs": ship_logs}))


def test_one_dashboard_shows_coverage_decisions_errors_runs_ship_logs_and_every_alarm(default_stack: Synthesized) -> None:
    [dashboard] = default_stack.of_type("AWS::CloudWatch::Dashboard")
    parts = dashboard["Properties"]["DashboardBody"]["Fn::Join"][1]
    body = "".join(p if isinstance(p, str) else json.dumps(p) for p in parts)

    for title in ("Coverage (each finished reconcile)", "Decisions", "Skipped, by reason", "Conflicts and opt-outs, by reason", "Errors",
                  "Queues: waiting and dead letters", "Backfill and reconcile runs", "ship-logs: records", "ship-logs: duration", "Alarms"):
        assert f'"title":"{title}"' in body
    for metric in ("CoverageGoverned", "CoverageCompliant", "DriftRepaired", "RecordsShipped", "RecordsRejected", "SinkRetries"):
        assert f'"{metric}"' in body
    # #29 item 3: the stored bytes under governance and in never-expiring groups, as the finished run publishes them.
    assert '"title":"Stored bytes: governed, and in groups that never expire (each finished run over every group)"' in body
    assert '"CoverageStoredBytes"' in body and '"CoverageNeverExpireStoredBytes"' in body
    alarm_ids = [k for k, v in default_stack.resources.items() if v["Type"] == "AWS::CloudWatch::Alarm"]
    assert len(alarm_ids) >= 8 and all(json.dumps({"Fn::GetAtt": [a, "Arn"]}) in body for a in alarm_ids)
    # #27 item 8: the groups whose deliveries failed (a filter then skips up to 10 minutes of lines), worst first.
    assert "Delivery errors by log group" in body and "WHERE FilterName = 'log-group-governor' GROUP BY LogGroupName" in body
    [delivery] = [a for a in default_stack.of_type("AWS::CloudWatch::Alarm") if "could not deliver" in a["Properties"]["AlarmDescription"]]
    assert "skipped" in delivery["Properties"]["AlarmDescription"]


def test_remove_filters_on_delete_runs_after_everything_that_could_subscribe_again_is_gone(uninstall_stack: Synthesized) -> None:
    [(resource_id, resource)] = [(k, v) for k, v in uninstall_stack.resources.items() if v["Type"] == "Custom::RemoveFiltersOnDelete"]
    remover = uninstall_stack.function("governor.handlers.uninstall.is_complete")

    def depends_on_removal(logical_id: str) -> bool:
        return resource_id in uninstall_stack.resources[logical_id].get("DependsOn", [])

    kinds = ("AWS::Events::Rule", "AWS::Lambda::EventSourceMapping", "AWS::StepFunctions::StateMachine", "AWS::Scheduler::Schedule")
    for logical_id, other in uninstall_stack.resources.items():
        if other["Type"] in kinds and "Provider" not in logical_id:  # the removal's own waiter excepted
            assert depends_on_removal(logical_id), f"{logical_id} ({other['Type']}) would outlive the removal"
    for handler in ("subscribe_log_group", "set_retention", "governor.handlers.backfill.handler"):
        function_id = next(k for k, v in uninstall_stack.resources.items() if v is uninstall_stack.function(handler) or v == uninstall_stack.function(handler))
        assert depends_on_removal(function_id)
    assert _actions(uninstall_stack.role_policy_of(remover)) >= {"logs:DescribeLogGroups", "logs:DescribeSubscriptionFilters",
                                                                 "logs:DeleteSubscriptionFilter", "s3:GetObject", "s3:PutObject"}
    assert remover["Properties"]["Timeout"] == 900
    # The Provider framework's waiter: a slice a minute for at most an hour (its documented ceiling).
    [waiter] = [v for k, v in uninstall_stack.resources.items() if v["Type"] == "AWS::StepFunctions::StateMachine" and "Provider" in k]
    definition = json.dumps(waiter["Properties"]["DefinitionString"])
    assert '\\"IntervalSeconds\\":60' in definition and '\\"MaxAttempts\\":60' in definition
    # The remover's own DeleteSubscriptionFilter calls are the governor's: left out by the rules.
    for rule in _event_rules(uninstall_stack):
        if rule["Properties"]["EventPattern"]["source"] != ["aws.logs"]:
            continue  # the destination's own changes (Lambda calls): the remover makes none
        excluded = rule["Properties"]["EventPattern"]["detail"]["$or"][1]["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"][0]["anything-but"]
        assert remover["Properties"]["Role"] in excluded
    assert "Custom::RemoveFiltersOnDelete" not in {v["Type"] for v in synthesize(destinationArn=SHIPPER_ARN, createTrail=False).resources.values()}


# --- native account-level policies (subscriptionMode / retentionVia account-policy) ---------------

def test_native_modes_keep_the_account_policy_and_never_write_a_group_of_their_own(native_stack: Synthesized) -> None:
    subscribe, retention = native_stack.function("subscribe_log_group"), native_stack.function("set_retention")
    backfill = native_stack.function("backfill.handler")

    for function in (subscribe, backfill):
        actions = _actions(native_stack.role_policy_of(function))
        assert {"logs:DescribeAccountPolicies", "logs:PutAccountPolicy", "logs:PutSubscriptionFilter"} <= actions
        # DescribeSubscriptionFilters stays: reading a subscription filter policy needs it (test_model_permissions).
        assert not actions & {"logs:DeleteSubscriptionFilter", "logs:PutRetentionPolicy"}
    assert "logs:PutRetentionPolicy" not in _actions(native_stack.role_policy_of(retention))
    # Uninstalling deletes the governor's account policy and any per-group filter not migrated yet.
    remover = _actions(native_stack.role_policy_of(native_stack.function("uninstall.is_complete")))
    assert {"logs:DescribeAccountPolicies", "logs:DeleteAccountPolicy", "logs:DescribeSubscriptionFilters", "logs:DeleteSubscriptionFilter"} <= remover
    # A group's own filter or retention is no drift of an account policy: only creation and tags wake the handlers.
    names = {json.dumps(r["Properties"]["Targets"]): set(r["Properties"]["EventPattern"]["detail"]["eventName"])
             for r in _event_rules(native_stack) if r["Properties"]["EventPattern"]["source"] == ["aws.logs"]}
    assert all(not n & {"PutSubscriptionFilter", "DeleteSubscriptionFilter", "PutRetentionPolicy", "DeleteRetentionPolicy"} for n in names.values())
    assert all({"CreateLogGroup", "TagResource", "UntagResource"} <= n for n in names.values())
    # What undoes the account policy is watched by the subscribe handler: a deleted group's name, the policy itself.
    subscribe_rules = [n for n in names.values() if "DeleteLogGroup" in n]
    assert subscribe_rules == [{"CreateLogGroup", "TagResource", "UntagResource", "TagLogGroup", "UntagLogGroup", "DeleteLogGroup",
                                "PutAccountPolicy", "DeleteAccountPolicy"}]
    # It takes and releases the policy's lock in the state table.
    assert "dynamodb:DeleteItem" in _actions(native_stack.role_policy_of(subscribe))
    alarms = {a["Properties"].get("MetricName") for a in native_stack.of_type("AWS::CloudWatch::Alarm")}
    assert "AccountPolicyRestored" in alarms


def test_the_not_in_lists_budget_alarms_near_the_limit_and_on_a_refusal(native_stack: Synthesized) -> None:
    alarms = {a["Properties"]["MetricName"] + "/" + next((d["Value"] for d in a["Properties"].get("Dimensions", []) if d["Name"] == "Reason"), ""): a
              for a in native_stack.of_type("AWS::CloudWatch::Alarm") if "MetricName" in a["Properties"]}
    near = alarms["SubscriptionSelectionBytes/"]["Properties"]
    assert (near["Statistic"], near["Threshold"]) == ("Maximum", 25 * 1024 * 0.8)
    for key in ("Conflicts/selection-too-large", "Conflicts/foreign-account-policy"):
        assert alarms[key]["Properties"]["AlarmActions"], key
    assert near["AlarmActions"]


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"governor:subscriptionMode": "account-policy",
          "governor:destinationArn": "arn:aws:kinesis:eu-west-1:210987654321:stream/logs",
          "governor:destinationRoleArn": "arn:aws:iam::210987654321:role/cwl-to-kinesis"}, "of the policy's own account"),
        ({"governor:subscriptionMode": "account-policy", "governor:reconcileSchedule": None, "governor:destinationArn": SHIPPER_ARN},
         "neither backfillOnDeploy nor reconcileSchedule"),
        ({"governor:retentionVia": "account-policy", "governor:destinationArn": SHIPPER_ARN}, "retentionMode 'minimum'"),
        ({"governor:retentionVia": "account-policy", "governor:retentionMode": "exact", "governor:excludeTags": {},
          "governor:defaultRetentionDays": 14, "governor:destinationArn": SHIPPER_ARN}, "native retention policies keep at least 30"),
        ({"governor:subscriptionMode": "per-account"}, "subscriptionMode: expected 'per-group' or 'account-policy'"),
        ({"governor:subscriptionMode": "account-policy", "governor:destinationArn": SHIPPER_ARN,
          "governor:shippingPathLogGroups": ["/log-group-governor/archive/*"]}, "an account policy's NOT IN list holds exact names only"),
    ],
)
def test_what_native_policies_cannot_take_stops_synth_with_the_reason(context: dict[str, Any], message: str) -> None:
    app = cdk.App(context={**REPO_CONTEXT, **context})

    with pytest.raises(ConfigError, match=message):
        build_app(app, env=cdk.Environment(account=ACCOUNT, region=REGION), nulls={k: None for k, v in context.items() if v is None})


def _run_app(context: dict[str, Any], outdir: Path) -> Any:
    """`cdk synth`'s call of app.py: the context in CDK_CONTEXT_JSON (cdk.json's, merged by the CLI)."""
    import subprocess
    import sys

    merged = {**json.loads((Path(__file__).resolve().parents[2] / "cdk.json").read_text())["context"], **context}
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps(merged), "CDK_OUTDIR": str(outdir)}
    return subprocess.run([sys.executable, "app.py"], cwd=Path(__file__).resolve().parents[2], env=env, capture_output=True, text=True,
                          timeout=300)


def test_synth_stops_with_every_error_of_the_configuration_at_once(tmp_path: Path) -> None:
    done = _run_app({"governor:defaultRetentionDays": 45, "governor:filterName": "a:b", "governor:retentionMod": "exact"}, tmp_path)

    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("  - ")]
    assert "invalid configuration (3 errors)" in done.stderr and len(errors) == 3
    assert "did you mean governor:retentionMode?" in errors[0]
    assert {e[4:].split(":")[0] for e in errors[1:]} == {"filterName", "defaultRetentionDays"}


@pytest.mark.parametrize(("key", "message"), [
    ("defaultRetentionDays", "unknown context key defaultRetentionDays: it has no prefix, so nothing would read it; did you mean governor:defaultRetentionDays?"),
    ("govenor:filterName", "unknown context key govenor:filterName: its prefix 'govenor:' is not one of the project's"),
    ("goveror:filterName", "did you mean governor:filterName?"),
    ("governor:filterNam", "unknown context key governor:filterNam: did you mean governor:filterName?"),
])
def test_issue30_a_mistyped_key_stops_synth_naming_the_nearest_key(tmp_path: Path, key: str, message: str) -> None:
    done = _run_app({key: "x"}, tmp_path)

    assert done.returncode == 1 and message in done.stderr, done.stderr
    assert "valid keys" not in done.stderr and done.stderr.count("governor:") < 10  # the nearest key, not all 41


def test_issue30_a_key_of_the_organization_app_or_of_another_tool_does_not_stop_the_stacks_synth(tmp_path: Path) -> None:
    done = _run_app({"archive:shards": 2, "my-team:owner": "platform"}, tmp_path)

    assert done.returncode == 0, done.stderr


def test_issue30_one_rule_with_three_mistakes_reports_all_three_in_one_synth(tmp_path: Path) -> None:
    rules = [{"match": {"namePrefix": ["/aws/lambda/"]}, "retention": {"days": 45}, "shipping": {"enabled": "yes"}}]

    done = _run_app({"governor:rules": json.dumps(rules)}, tmp_path)

    errors = [line for line in done.stderr.splitlines() if line.startswith("  - ")]
    assert done.returncode == 1 and "invalid configuration (3 errors)" in done.stderr, done.stderr
    assert "rules[0].match: unknown key(s) 'namePrefix' (did you mean 'namePrefixes'?)" in errors[0]
    assert errors[1].startswith("  - rules[0].retention.days: 45") and errors[2].startswith("  - rules[0].shipping: expected")


def _rendered(value: Any) -> Any:
    """A template value with the partition resolved, as CloudFormation would (the tests' stacks name account and region)."""
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join("aws" if p == {"Ref": "AWS::Partition"} else p for p in parts)
    return value


@pytest.mark.parametrize("granted", ["the stack's permission", "none", "another account's groups"])
def test_issue27_the_stacks_lambda_permission_is_what_cloudwatch_logs_needs_to_subscribe(
        lambda_destination_stack: Synthesized, account: Any, configure: Any, granted: str) -> None:
    """#27 item 4: CloudWatch Logs refuses a filter to a Lambda it may not invoke ("Could not execute the lambda function",
    localaws G17): the permission the stack synthesizes, applied as CloudFormation would, is the one that lets the real
    subscribe handler subscribe a group; without it (or scoped to other groups) the handler reports the destination."""
    from governor.handlers.create_log_group import subscribe_log_group
    from localaws.events import create_log_group_event, sqs_batch
    from tests.conftest import call

    [permission] = [p["Properties"] for p in lambda_destination_stack.of_type("AWS::Lambda::Permission") if p["Properties"]["Principal"] == "logs.amazonaws.com"]
    shipper = account.create_function("team-log-shipper", logs_may_invoke=False)
    if granted != "none":
        source = _rendered(permission["SourceArn"]) if granted == "the stack's permission" else "arn:aws:logs:eu-west-1:999999999999:log-group:*"
        account.client("lambda").add_permission(FunctionName=shipper, StatementId="from-the-template", Action=permission["Action"],
                                                Principal=permission["Principal"], SourceAccount=permission["SourceAccount"], SourceArn=source)
    configure(destinationArn=shipper)
    account.create_log_group("/aws/lambda/orders-api")

    invocation = call(subscribe_log_group, sqs_batch([create_log_group_event("/aws/lambda/orders-api")]))

    if granted == "the stack's permission":
        assert invocation.result == {"batchItemFailures": []}
        assert [f["destinationArn"] for f in account.logs.describe_subscription_filters(logGroupName="/aws/lambda/orders-api")["subscriptionFilters"]] == [shipper]
    else:
        assert invocation.result["batchItemFailures"] and invocation.metrics()[("DestinationErrors", None)] == 1
        [error] = [line for line in invocation.logs if line.get("level") == "ERROR"]
        assert "Make sure you have given CloudWatch Logs permission to execute your function" in error["error"]


def test_issue30_deploy_md_counts_the_buckets_the_default_template_has(default_stack: Synthesized) -> None:
    words = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}
    deploy = " ".join((Path(__file__).resolve().parents[2] / "docs" / "deploy.md").read_text().split())
    buckets = len(default_stack.of_type("AWS::S3::Bucket"))
    assert f"{words[buckets]} S3 buckets with the defaults" in deploy and "an S3 bucket," not in deploy
