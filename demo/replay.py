"""Part of act 1 of `make demo` (#20): a new function logs ten invocations before the governor's filter
exists. A subscription delivers only what comes after its filter, so without the replay those lines never
reach the destination; with it, every line arrives once. Shown with a Kinesis destination of the account
(its records are readable here), through the real subscribe handler and the replay function it asks."""

from __future__ import annotations

import gzip
import json
import os
import time
from collections import Counter
from typing import Any, TextIO
from unittest import mock

from governor.config import ENV_CONFIG
from governor.gap_settings import ENV_GAP_QUEUE_URL
from governor.handlers import create_log_group as handlers
from localaws.account import LocalAccount
from localaws.deployment import run_replay_queue
from localaws.events import create_log_group_event
from localaws.lambda_runtime import invoke
from localaws.payloads import lambda_log_events

STREAM_NAME = "team-log-pipeline"
LOG_STREAM = "2026/12/04/[$LATEST]5e1f0c4b2a9d4e7f8a6b3c2d1e0f9a8b"


def replay_act(account: LocalAccount, config: dict[str, Any], out: TextIO) -> None:
    kinesis = account.client("kinesis")
    kinesis.create_stream(StreamName=STREAM_NAME, ShardCount=1)
    stream = kinesis.describe_stream_summary(StreamName=STREAM_NAME)["StreamDescriptionSummary"]["StreamARN"]
    queue = account.client("sqs").create_queue(QueueName="demo-replay")["QueueUrl"]
    print("\n   The lines a new function writes before the governor's filter exists (a subscription delivers only what comes after")
    print(f"   its filter), with a Kinesis destination ({STREAM_NAME}):")
    for name, window in (("/aws/lambda/checkout-without-replay", None), ("/aws/lambda/checkout-new", 60)):
        written = _ten_invocations(account, name)
        governed = {**config, "destinationArn": stream, "destinationRoleArn": account.logs_delivery_role(), "replayWindowMinutes": window}
        with mock.patch.dict(os.environ, {ENV_CONFIG: json.dumps(governed), ENV_GAP_QUEUE_URL: queue}):
            handlers.subscription_parts.cache_clear()
            invoke(handlers.subscribe_log_group, create_log_group_event(name, region=account.region),
                   function_name="subscribe-log-group", out=out)
            invoke(handlers.subscribe_log_group, create_log_group_event(name, region=account.region),  # SQS delivers it again
                   function_name="subscribe-log-group", out=out)
            # The replay function takes what the subscribe handler asked for, off the subscription path (#31 item 3).
            replays = [r for r in run_replay_queue(account, queue, out=out) if "replayed" in r and not r.get("skipped")]
        handlers.subscription_parts.cache_clear()
        later = [{"timestamp": int(time.time() * 1000) + 60_000, "message": "START RequestId: eleventh invocation"}]
        account.logs.put_log_events(logGroupName=name, logStreamName=LOG_STREAM, logEvents=later)
        arrived = Counter(_arrived(kinesis, name))
        first_ten = [m for m in written if m in arrived]
        twice = sum(1 for count in arrived.values() if count > 1)
        how = ("replayWindowMinutes null" if window is None else
               f"replay ({sum(r['replayed'] for r in replays)} events in {sum(r['deliveries'] for r in replays)} record)")
        print(f"     {how:<38} {name}: of the first ten invocations' {len(written)} lines, {len(first_ten)} arrived; "
              f"after the filter {sum(arrived[e['message']] for e in later)} of 1; twice: {twice}")
        account.logs.delete_log_group(logGroupName=name)  # an aside: the acts below count the account as before


def _ten_invocations(account: LocalAccount, name: str) -> list[str]:
    account.logs.create_log_group(logGroupName=name)
    account.logs.create_log_stream(logGroupName=name, logStreamName=LOG_STREAM)
    events = lambda_log_events(80, seed=7)
    reports = [i for i, e in enumerate(events) if e["message"].startswith("REPORT ")]
    events = events[:reports[9] + 1]  # ten whole invocations, the first a cold start
    start_ms = int(time.time() * 1000) - 30_000  # written over the half minute before the governor's filter
    shift = start_ms - events[0]["timestamp"]
    account.logs.put_log_events(logGroupName=name, logStreamName=LOG_STREAM,
                                logEvents=[{"timestamp": e["timestamp"] + shift, "message": e["message"]} for e in events])
    time.sleep(0.002)  # the filter comes in a later millisecond, on any machine
    return [e["message"] for e in events]


def _arrived(kinesis: Any, log_group: str) -> list[str]:
    shard = kinesis.list_shards(StreamName=STREAM_NAME)["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(StreamName=STREAM_NAME, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    found = []
    for record in kinesis.get_records(ShardIterator=iterator, Limit=10_000)["Records"]:
        document = json.loads(gzip.decompress(record["Data"]))
        if document["messageType"] == "DATA_MESSAGE" and document["logGroup"] == log_group:
            found += [e["message"] for e in document["logEvents"]]
    return found
