"""Act 4b of `make demo` (#21): three governance rules (production groups: a year, a KMS key, deletion protection, PII masked;
noisy batch groups: only ERROR lines shipped, a week; everything else as today), each group's controls explained,
applied by the real event handlers, a key taken off by hand and put back, a deletion refused by protection."""

from __future__ import annotations

import io
import json
import os
from typing import TextIO
from unittest import mock

from botocore.exceptions import ClientError

from cli.rules import equivalent_rules, explain
from governor.aws import LogsGateway
from governor.config import ENV_CONFIG, parse_policy_config
from governor.handlers import create_log_group as handlers
from governor.controls.data_protection import masked_identifiers
from governor.policy import Policy
from localaws.account import LocalAccount
from localaws.events import create_log_group_event, log_group_call_event
from localaws.lambda_runtime import invoke

OTHER_TOOL = "arn:aws:iam::123456789012:role/terraform-apply"
GROUPS = {"/aws/lambda/prod-payments": None, "/ecs/nightly-etl": {"workload": "batch"}, "/aws/lambda/catalog": None}


def _key(account: LocalAccount) -> str:
    """A key whose policy is the CloudWatch Logs guide's: this region's CloudWatch Logs may use it for the account's groups."""
    statements = [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account.account_id}:root"}, "Action": "kms:*", "Resource": "*"},
                  {"Effect": "Allow", "Principal": {"Service": f"logs.{account.region}.amazonaws.com"},
                   "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"], "Resource": "*",
                   "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn":
                                             f"arn:aws:logs:{account.region}:{account.account_id}:log-group:*"}}}]
    return account.client("kms").create_key(Policy=json.dumps({"Version": "2012-10-17", "Statement": statements}),
                                            Description="production logs")["KeyMetadata"]["Arn"]


def rules_act(account: LocalAccount, config_json: str, out: TextIO) -> None:
    key = _key(account)
    rules = [{"name": "production", "match": {"namePrefixes": ["/aws/lambda/prod-"]}, "retention": {"days": 365}, "kmsKeyArn": key,
              "deletionProtection": True, "dataProtection": {"identifiers": ["EmailAddress", "CreditCardNumber"]},
              "fieldIndexes": ["requestId", "orderId"]},
             {"name": "noisy batch", "match": {"tags": {"workload": "batch"}}, "retention": {"days": 7},
              "shipping": {"enabled": True, "filterPattern": "ERROR"}}]
    config = {**json.loads(config_json), "rules": rules}
    policy = Policy(parse_policy_config(config))
    print("\n4b. Governance rules: one ordered list; per control, the first rule that matches decides (docs/rules.md)\n")
    print("   `log-group-governor rules`: the configured rules, then today's keys as the rules they compile into:")
    for rule in equivalent_rules(policy.config):
        print(f"     {json.dumps(rule)}")
    for name, tags in GROUPS.items():
        account.create_log_group(name, tags=tags)

    print("\n   `log-group-governor plan --explain`, before any event:")
    for name in ("/aws/lambda/prod-payments", "/ecs/nightly-etl"):
        printed = io.StringIO()
        explain(policy, LogsGateway(account.logs), name, as_json=False, stdout=printed)
        print("\n".join(f"     {line}" for line in printed.getvalue().splitlines()))

    # Each a function of its own in the stack: a rule's control deploys its handler (the one entry govern, by its aspect).
    deployed = parse_policy_config(config).event_aspects
    entry_points = [("subscribe_log_group", handlers.subscribe_log_group), ("set_retention", handlers.set_retention),
                    *((aspect, handlers.entry_for(aspect)) for aspect in deployed if aspect not in ("subscription", "retention"))]
    with mock.patch.dict(os.environ, {ENV_CONFIG: json.dumps(config)}):
        _cold()
        for name in GROUPS:
            for function, entry in entry_points:
                invoke(entry, create_log_group_event(name, region=account.region), function_name=function, out=out)
        print(f"\n   after the CreateLogGroup events ({len(entry_points)} handlers: {', '.join(a for a in deployed)}):")
        for name in GROUPS:
            print(f"     {name:<28} {_state(account, name)}")

        account.logs.disassociate_kms_key(logGroupName="/aws/lambda/prod-payments")
        print(f"\n   terraform-apply takes the key off /aws/lambda/prod-payments: {_state(account, '/aws/lambda/prod-payments')}")
        repaired = invoke(handlers.entry_for("encryption"), log_group_call_event("DisassociateKmsKey", "/aws/lambda/prod-payments", role_arn=OTHER_TOOL),
                          function_name="encrypt_log_group", out=out)
        print(f"   its DisassociateKmsKey record wakes EncryptLogGroup: {repaired['action']} ({repaired['reason']}); "
              f"{_state(account, '/aws/lambda/prod-payments')}")
        _cold()
    try:
        account.logs.delete_log_group(logGroupName="/aws/lambda/prod-payments")
        print("   DeleteLogGroup /aws/lambda/prod-payments: deleted (protection failed)")
    except ClientError as refused:
        print(f"   DeleteLogGroup /aws/lambda/prod-payments: refused, {refused.response['Error']['Code']}: {refused.response['Error']['Message']}")
    print("   (a key encrypts what is ingested after its association; the events a group already held stay as they were)")


def _state(account: LocalAccount, name: str) -> str:
    [group] = [g for g in account.logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"] if g["logGroupName"] == name]
    filters = account.logs.describe_subscription_filters(logGroupName=name)["subscriptionFilters"]
    shipped = ", ".join(f"{f['filterName']}[{f['filterPattern'] or 'every line'}]" for f in filters) or "not shipped"
    key = group.get("kmsKeyId", "").rsplit("/", 1)[-1][:8]
    document = account.logs.get_data_protection_policy(logGroupIdentifier=name).get("policyDocument")
    masked = masked_identifiers(document)
    indexes = account.logs.describe_index_policies(logGroupIdentifiers=[name])["indexPolicies"]
    indexed = sorted(json.loads(indexes[0]["policyDocument"]).get("Fields", [])) if indexes else []
    return (f"retention {group.get('retentionInDays') or 'never'}d, {shipped}, deletion protection "
            f"{'on' if group.get('deletionProtectionEnabled') else 'off'}, key {key + '...' if key else 'none'}, "
            f"masks {'/'.join(sorted(masked)) if masked else 'nothing'}, indexes {'/'.join(indexed) if indexed else 'nothing'}")


def _cold() -> None:
    for parts in (handlers.subscription_parts, handlers.retention_parts, handlers.control_parts):
        parts.cache_clear()

