"""The delivery-gap function (#31 item 2) as the stack deploys it: its schedule, its queue, its role, its alarms."""

from __future__ import annotations

from typing import Any

from tests.infra.conftest import Synthesized, synthesize

HANDLER = "governor.handlers.delivery_gaps.handler"


def _actions(statements: list[dict[str, Any]]) -> set[str]:
    return {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}


def test_the_watch_runs_every_five_minutes_and_its_queue_is_encrypted_retried_for_a_day_and_alarmed(default_stack: Synthesized) -> None:
    function = default_stack.function(HANDLER)
    function_id = next(k for k, v in default_stack.resources.items() if v == function)
    [schedule] = [r for r in default_stack.of_type("AWS::Events::Rule") if r["Properties"].get("ScheduleExpression")
                  and r["Properties"]["Targets"][0]["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}]
    assert schedule["Properties"]["ScheduleExpression"] == "rate(5 minutes)"

    [mapping] = [m for m in default_stack.of_type("AWS::Lambda::EventSourceMapping") if m["Properties"]["FunctionName"] == {"Ref": function_id}]
    queue = default_stack.resources[mapping["Properties"]["EventSourceArn"]["Fn::GetAtt"][0]]["Properties"]
    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert queue["SqsManagedSseEnabled"] is True and queue["VisibilityTimeout"] >= function["Properties"]["Timeout"]
    # Retried while CloudWatch Logs itself would retry a delivery (24 hours), then dead-lettered.
    assert queue["RedrivePolicy"]["maxReceiveCount"] * queue["VisibilityTimeout"] == 24 * 3600
    dlq_id = queue["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
    alarms = default_stack.of_type("AWS::CloudWatch::Alarm")
    [dlq_alarm] = [a for a in alarms if a["Properties"].get("Dimensions") == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq_id, "QueueName"]}}]]
    [unreplayed] = [a for a in alarms if a["Properties"].get("MetricName") == "GapUnreplayed"]
    assert dlq_alarm["Properties"]["AlarmActions"] and unreplayed["Properties"]["AlarmActions"]
    assert "window" in unreplayed["Properties"]["AlarmDescription"]


def test_its_role_reads_metrics_and_groups_and_writes_only_the_destination_and_its_own_records(default_stack: Synthesized) -> None:
    statements = default_stack.role_policy_of(default_stack.function(HANDLER))
    assert _actions(statements) == {
        "logs:CreateLogStream", "logs:PutLogEvents",  # its own log group
        "cloudwatch:ListMetrics", "cloudwatch:GetMetricData",
        "logs:DescribeLogGroups", "logs:DescribeSubscriptionFilters", "logs:FilterLogEvents",
        "lambda:InvokeFunction",  # the replay's write to the built-in destination (ship-logs)
        "dynamodb:GetItem", "dynamodb:PutItem",
        "sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl",  # its own queue: a gap queued, a replay continued
        "sqs:ReceiveMessage", "sqs:ChangeMessageVisibility", "sqs:DeleteMessage",  # the event source
    }
    [metrics] = [s for s in statements if "cloudwatch:ListMetrics" in s["Action"]]
    assert metrics["Resource"] == "*"  # neither action takes a resource (acknowledged to cdk-nag with that reason)


def test_not_deployed_without_the_replay_or_with_an_account_subscription_policy() -> None:
    for overrides in ({"replayWindowMinutes": None}, {"subscriptionMode": "account-policy"}):
        assert synthesize(**overrides).functions(HANDLER) == [], overrides
