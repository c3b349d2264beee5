"""An in-process moto account with what moto 5.2.5 leaves out filled in, the way AWS answers.

moto ignores a log group's class (``logGroupClass``) and a function's ``LoggingConfig``: it neither
stores nor returns them. The governor's decisions depend on both, so this account records what each
create call asked for and adds it to the describe answers, on the client side, as AWS would. Nothing
else is changed: the handlers under test make their real boto3 calls against moto.
"""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import boto3
from botocore.config import Config
from moto import mock_aws

from .account_policies import AccountPolicies, Refused, data_protection_problem
from .index_policies import IndexPolicies

DEFAULT_REGION = "eu-west-1"
#: moto's account: the documentation example account, nobody's real one.
ACCOUNT_ID = "123456789012"
_LAMBDA_TRUST = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
})
_LOGS_TRUST = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "logs.amazonaws.com"}, "Action": "sts:AssumeRole"}],
})


@dataclass
class MotoGaps:
    """Fillers for what moto does not model (see module docstring): botocore hooks on the client side
    here, and applied to the wire by ``localaws.server``."""

    log_group_classes: dict[str, str] = field(default_factory=dict)
    logging_configs: dict[str, dict[str, str]] = field(default_factory=dict)
    #: Account-level subscription and retention policies of each account and region (moto implements none:
    #: localaws.account_policies); "one per account per region" (FACTS).
    policies_by_account: dict[tuple[str, str], AccountPolicies] = field(default_factory=dict)
    #: ARNs of the log groups that are or were tagged: GetResources lists only those ("GetResources lists
    #: only resources that are or were tagged", Resource Groups Tagging API reference).
    ever_tagged: set[str] = field(default_factory=set)
    #: (account, region, name) of the groups whose deletion protection is on (moto 5.2.5 has none: G13).
    deletion_protected: set[tuple[str, str, str]] = field(default_factory=set)
    #: (account, region, name) -> the KMS key associated with the group (moto 5.2.5 has no AssociateKmsKey: G14).
    kms_keys: dict[tuple[str, str, str], str] = field(default_factory=dict)
    #: (account, region, name) -> the group's data protection policy document (moto 5.2.5 has none: G15).
    data_protection: dict[tuple[str, str, str], str] = field(default_factory=dict)
    #: Group-level field index policies (moto 5.2.5 has none: localaws.index_policies, I1-I9).
    index_policies: IndexPolicies = field(default_factory=IndexPolicies)

    @property
    def account_policies(self) -> AccountPolicies:
        """The calling account's policies in the default region."""
        return self.policies_in(_calling_account(), _calling_region(None))

    def policies_in(self, account: str, region: str) -> AccountPolicies:
        """The policies of ``account`` in ``region`` (a call's account is ``MOTO_ACCOUNT_ID``, as moto chooses its backends)."""
        if (account, region) not in self.policies_by_account:
            self.policies_by_account[(account, region)] = AccountPolicies(account)
        return self.policies_by_account[(account, region)]

    def install(self, session: boto3.Session) -> None:
        events = session.events
        events.register("provide-client-params.logs.CreateLogGroup", self.record_class)
        events.register("after-call.logs.DescribeLogGroups", self.add_class)
        events.register("provide-client-params.lambda.CreateFunction", self.record_logging_config)
        events.register("provide-client-params.lambda.UpdateFunctionConfiguration", self.update_logging_config)
        events.register("after-call.lambda.GetFunctionConfiguration", self.add_logging_config)
        events.register("before-call.resource-groups-tagging-api.GetResources", self.tagged_log_groups)
        events.register("before-call.cloudwatch-logs.DescribeLogGroups", self.log_groups_by_identifier)
        for operation in ("CreateLogGroup", "TagResource", "TagLogGroup"):
            events.register(f"provide-client-params.logs.{operation}", self.record_tagging)
        events.register("before-call.cloudwatch-logs.PutLogGroupDeletionProtection", self.put_deletion_protection)
        events.register("before-call.cloudwatch-logs.DeleteLogGroup", self.refuse_protected_deletion)
        events.register("before-call.cloudwatch-logs.AssociateKmsKey", self.associate_kms_key)
        events.register("before-call.cloudwatch-logs.DisassociateKmsKey", self.disassociate_kms_key)
        for operation in ("PutDataProtectionPolicy", "GetDataProtectionPolicy", "DeleteDataProtectionPolicy"):
            events.register(f"before-call.cloudwatch-logs.{operation}", self.data_protection_call)
        for operation in ("PutIndexPolicy", "DescribeIndexPolicies", "DeleteIndexPolicy"):
            events.register(f"before-call.cloudwatch-logs.{operation}", self.index_policy_call)
        events.register("before-call.cloudwatch-logs.DeleteLogGroup", self.note_deleted_group)
        events.register("after-call.cloudwatch-logs.DeleteLogGroup", self.forget_index_policy)
        for operation in ("PutAccountPolicy", "DescribeAccountPolicies", "DeleteAccountPolicy"):
            events.register(f"before-call.cloudwatch-logs.{operation}", self.account_policy_call)
        events.register("before-call.kinesis.PutRecord", self.refuse_long_partition_key)
        events.register("before-call.cloudwatch-logs.FilterLogEvents", self.refuse_unknown_page_token)
        events.register("before-call.cloudwatch-logs.PutSubscriptionFilter", self.refuse_lambda_logs_may_not_invoke)
        events.register("before-call.cloudwatch-logs.PutSubscriptionFilter", self.refuse_role_logs_cannot_assume)
        events.register_last("after-call.cloudwatch-logs.DescribeSubscriptionFilters", self.add_apply_on_transformed_logs)
        events.register("before-call.cloudwatch-logs.CreateLogGroup", self.refuse_key_not_admitting_logs)

    def record_tagging(self, params: dict[str, Any], context: dict[str, Any] | None = None, **_: Any) -> None:
        if not params.get("tags"):
            return
        arn = params.get("resourceArn") or _group_arn(params["logGroupName"], _calling_region(context))
        self.ever_tagged.add(arn.removesuffix(":*"))

    def record_class(self, params: dict[str, Any], **_: Any) -> None:
        self.log_group_classes[params["logGroupName"]] = params.get("logGroupClass", "STANDARD")

    def add_class(self, parsed: dict[str, Any], context: dict[str, Any] | None = None, **_: Any) -> None:
        for group in parsed.get("logGroups", []):
            group.setdefault("logGroupClass", self.log_group_classes.get(group["logGroupName"], "STANDARD"))
            key = (_calling_account(), _calling_region(context), group["logGroupName"])
            group["deletionProtectionEnabled"] = key in self.deletion_protected
            if key in self.kms_keys:
                group["kmsKeyId"] = self.kms_keys[key]
            if key in self.data_protection:
                group["dataProtectionStatus"] = "ACTIVATED"
            self._apply_account_retention(group, context)

    def put_deletion_protection(self, params: dict[str, Any], context: dict[str, Any] | None = None, **_: Any) -> Any:
        """PutLogGroupDeletionProtection (G13, the model: ``logGroupIdentifier`` a name or ARN, ``deletionProtectionEnabled``)."""
        from moto.logs.models import logs_backends

        request = json.loads(params.get("body") or b"{}")
        identifier = request.get("logGroupIdentifier", "")
        name = identifier.split(":log-group:", 1)[1].removesuffix(":*") if identifier.startswith("arn:") else identifier
        key = (_calling_account(), _calling_region(context), name)
        if name not in logs_backends[key[0]][key[1]].groups:
            return _Answered(400), {"Error": {"Code": "ResourceNotFoundException", "Message": "The specified log group does not exist."},
                                    "ResponseMetadata": {"HTTPStatusCode": 400}}
        (self.deletion_protected.add if request.get("deletionProtectionEnabled") else self.deletion_protected.discard)(key)
        return _Answered(), {}

    def associate_kms_key(self, params: dict[str, Any], context: dict[str, Any] | None = None, **_: Any) -> Any:
        """AssociateKmsKey (G14): "If you attempt to associate a KMS key with a log group but the KMS key does not exist or the
        KMS key is disabled, you receive an InvalidParameterException error" (the model); a key whose policy does not let
        logs.<region>.amazonaws.com encrypt (no statement allows it, or one denies it) is refused with AccessDeniedException
        "The specified KMS key does not exist or is not allowed to be used with Arn '<group ARN>'", as AWS answered
        (ministryofjustice/modernisation-platform#7870, hashicorp/terraform-provider-aws#29282, aws/aws-cdk#28304)."""
        from moto.kms.models import kms_backends
        from moto.logs.models import logs_backends

        request = json.loads(params.get("body") or b"{}")
        account, region = _calling_account(), _calling_region(context)
        name, key_arn = _kms_call_group(request), request.get("kmsKeyId", "")
        if name not in logs_backends[account][region].groups:
            return _refused("ResourceNotFoundException", "The specified log group does not exist.")
        key = kms_backends[account][region].keys.get(key_arn.rsplit("/", 1)[-1])
        if key is None or not key.enabled:
            return _refused("InvalidParameterException", f"The specified KMS key {key_arn} does not exist or is disabled")
        if not _admits_logs(key.policy, region):
            return _refused("AccessDeniedException", f"The specified KMS key does not exist or is not allowed to be used with Arn "
                                                     f"'{_group_arn(name, region)}'")
        self.kms_keys[(account, region, name)] = key_arn
        return _Answered(), {}

    def data_protection_call(self, model: Any, params: dict[str, Any], context: dict[str, Any] | None = None, **_: Any) -> Any:
        """Put/Get/DeleteDataProtectionPolicy (G15). The document's rules are the model's: "two JSON blocks", the first with
        an Audit operation holding a FindingsDestination object, the second a Deidentify operation whose "MaskConfig": {}
        "must be empty", the two DataIdentifier arrays matching exactly, at most 30,720 characters."""
        from moto.logs.models import logs_backends

        request = json.loads(params.get("body") or b"{}")
        identifier = request.get("logGroupIdentifier", "")
        if (refused := _identifier_refused(identifier)) is not None:
            return refused
        name = identifier.split(":log-group:", 1)[1] if identifier.startswith("arn:") else identifier
        key = (_calling_account(), _calling_region(context), name)
        if name not in logs_backends[key[0]][key[1]].groups:
            return _refused("ResourceNotFoundException", "The specified log group does not exist.")
        if model.name == "GetDataProtectionPolicy":
            return _Answered(), {"logGroupIdentifier": identifier, **({"policyDocument": self.data_protection[key]} if key in self.data_protection else {})}
        if model.name == "DeleteDataProtectionPolicy":
            self.data_protection.pop(key, None)
            return _Answered(), {}
        document = request.get("policyDocument", "")
        problem = data_protection_problem(document, existing=logs_backends[key[0]][key[1]].groups)
        if problem:
            return _refused("InvalidParameterException", problem)
        self.data_protection[key] = document
        return _Answered(), {"logGroupIdentifier": identifier, "policyDocument": document}

    def index_policy_call(self, model: Any, params: dict[str, Any], context: dict[str, Any] | None = None, **_: Any) -> Any:
        """Put/Describe/DeleteIndexPolicy (I1-I6: localaws.index_policies), identifiers held to the model's pattern (G21)."""
        from moto.logs.models import logs_backends

        request = json.loads(params.get("body") or b"{}")
        for identifier in request.get("logGroupIdentifiers") or [request.get("logGroupIdentifier", "")]:
            if (refused := _identifier_refused(identifier)) is not None:
                return refused
        account, region = _calling_account(), _calling_region(context)
        problem, answer = self.index_policies.call(model.name, request, account=account, region=region,
                                                   groups=logs_backends[account][region].groups, classes=self.log_group_classes,
                                                   account_policies=self.policies_in(account, region))
        return _refused(*problem) if problem else (_Answered(), answer)

    def note_deleted_group(self, params: dict[str, Any], context: dict[str, Any] | None = None, **_: Any) -> None:
        if context is not None:  # after-call is given no parameters: the call's context carries the name to it
            context["localaws_deleted_group"] = json.loads(params.get("body") or b"{}").get("logGroupName", "")

    def forget_index_policy(self, http_response: Any, context: dict[str, Any] | None = None, **_: Any) -> None:
        """A group deleted (not refused) loses its field index policy (I6)."""
        name = (context or {}).get("localaws_deleted_group")
        if name and getattr(http_response, "status_code", 400) == 200:
            self.index_policies.forget(_calling_account(), _calling_region(context), name)

    def disassociate_kms_key(self, params: dict[str, Any], context: dict[str, Any] | None = None, **_: Any) -> Any:
        request = json.loads(params.get("body") or b"{}")
        self.kms_keys.pop((_calling_account(), _calling_region(context), _kms_call_group(request)), None)
        return _Answered(), {}

    def refuse_protected_deletion(self, params: dict[str, Any], context: dict[str, Any] | None = None, **_: Any) -> Any:
        """"When enabled, deletion protection blocks all deletion operations until it is explicitly disabled" (the model);
        refused with ValidationException "Cannot delete log group with deletion protection enabled. Disable deletion protection
        first." (the guide, "Protecting log groups from deletion"; FACTS)."""
        name = json.loads(params.get("body") or b"{}").get("logGroupName", "")
        if (_calling_account(), _calling_region(context), name) in self.deletion_protected:
            return _refused("ValidationException", "Cannot delete log group with deletion protection enabled. Disable deletion protection first.")
        return None

    def _apply_account_retention(self, group: dict[str, Any], context: dict[str, Any] | None = None) -> None:
        """DescribeLogGroups names the account-level retention policy in effect and shows its retention."""
        effective = self.policies_in(_calling_account(), _calling_region(context)).effective_retention(group["logGroupName"], group.get("creationTime", 0) / 1000)
        if effective is None:
            return
        name, days = effective
        group["retentionPolicyName"] = name
        if days is None:
            group.pop("retentionInDays", None)
        else:
            group["retentionInDays"] = days

    def account_policy_call(self, model: Any, params: dict[str, Any], context: dict[str, Any] | None = None, **_: Any) -> Any:
        """Put/Describe/DeleteAccountPolicy, answered by the model (moto has none of them)."""
        request = json.loads(params.get("body") or b"{}")
        policies = self.policies_in(_calling_account(), _calling_region(context))
        try:
            if model.name == "PutAccountPolicy":
                answer = policies.put(request, self._log_groups(context))
            elif model.name == "DeleteAccountPolicy":
                answer = policies.delete(request, self._log_groups(context))
            else:
                answer = policies.describe(request)
        except Refused as refused:
            return _Answered(400), {"Error": {"Code": refused.code, "Message": refused.message}, "ResponseMetadata": {"HTTPStatusCode": 400}}
        return _Answered(), answer

    def _log_groups(self, context: dict[str, Any] | None) -> list[dict[str, Any]]:
        """Every log group of the region as DescribeLogGroups shows it, from moto's own state."""
        from moto.logs.models import logs_backends

        groups = []
        for name, group in sorted(logs_backends[_calling_account()][_calling_region(context)].groups.items()):
            created = group.creation_time  # moto keeps epoch milliseconds or a datetime, by version
            created_ms = int(created.timestamp() * 1000) if hasattr(created, "timestamp") else int(created)
            raw = {"logGroupName": name, "creationTime": created_ms, "logGroupClass": self.log_group_classes.get(name, "STANDARD"),
                   "storedBytes": sum(stream.stored_bytes for stream in group.streams.values())}
            if group.retention_in_days:
                raw["retentionInDays"] = group.retention_in_days
            groups.append(raw)
        return groups

    #: DescribeLogGroups' logGroupIdentifiers: "1-50 names or ARNs; then the only other filter allowed is
    #: includeLinkedAccounts" (the model). moto 5.2.5 ignores the parameter (it answers every group).
    IDENTIFIERS_MAX = 50

    def log_groups_by_identifier(self, params: dict[str, Any], context: dict[str, Any] | None = None, **_: Any) -> Any:
        request = json.loads(params.get("body") or b"{}")
        if "logGroupNamePrefix" in request and "logGroupNamePattern" in request:
            # G18: "logGroupNamePattern and logGroupNamePrefix are mutually exclusive" (the model); refused as recorded in
            # LocalStack's validated snapshot (tests/fidelity/recorded/ls-describe-log-groups-prefix-and-pattern.json).
            return _refused("InvalidParameterException", "LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.")
        identifiers = request.get("logGroupIdentifiers")
        if identifiers is None:
            return None  # moto's own
        others = sorted(set(request) - {"logGroupIdentifiers", "includeLinkedAccounts"})
        if not 1 <= len(identifiers) <= self.IDENTIFIERS_MAX or others:
            return _Answered(400), {"Error": {"Code": "InvalidParameterException", "Message":
                                              f"logGroupIdentifiers takes 1 to {self.IDENTIFIERS_MAX}, alone (got {len(identifiers)}, with {others})"},
                                    "ResponseMetadata": {"HTTPStatusCode": 400}}
        from moto.logs.models import logs_backends

        backend = logs_backends[_calling_account()][_calling_region(context)]
        # An identifier naming no group is left out of the answer (*assumed*: the model does not say).
        names = [i.split(":log-group:", 1)[1].removesuffix(":*") if i.startswith("arn:") else i for i in identifiers]
        found = [backend.groups[n].to_describe_dict() for n in dict.fromkeys(names) if n in backend.groups]
        return _Answered(), {"logGroups": found}

    #: GetResources' largest page.
    TAGGING_PAGE = 100

    def tagged_log_groups(self, params: dict[str, Any], context: dict[str, Any] | None = None, **_: Any) -> Any:
        """GetResources for ``logs:log-group``, which moto answers with nothing: answered from moto's own
        log groups and their tags, as AWS would (TagFilters ANDed, a filter's Values ORed, 100 a page)."""
        request = json.loads(params.get("body") or b"{}")
        if "ResourceARNList" in request:
            return self._tags_of_listed(request, context)
        if request.get("ResourceTypeFilters") != ["logs:log-group"]:
            return None  # not ours to answer: moto's own
        from moto.logs.models import logs_backends

        backend = logs_backends[_calling_account()][_calling_region(context)]
        found = []
        for name, group in sorted(backend.groups.items()):
            arn = group.arn.removesuffix(":*")
            if arn not in self.ever_tagged:
                continue  # never tagged: the tagging API does not know it
            tags = backend.list_tags_for_resource(arn) or {}
            if all(f["Key"] in tags and (not f.get("Values") or tags[f["Key"]] in f["Values"]) for f in request.get("TagFilters", [])):
                found.append({"ResourceARN": arn, "Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())]})
        start = int(request.get("PaginationToken") or 0)
        page = min(request.get("ResourcesPerPage", self.TAGGING_PAGE), self.TAGGING_PAGE)
        answer: dict[str, Any] = {"ResourceTagMappingList": found[start:start + page], "PaginationToken": ""}
        if start + page < len(found):
            answer["PaginationToken"] = str(start + page)
        return _Answered(), answer

    #: ``ResourceARNList``: 1-100 ARNs; "You can't specify both this parameter and" ResourceTypeFilters, TagFilters or
    #: "any of the pagination parameters ... If you do, you get an Invalid Parameter exception" (the model).
    ARNS_MAX = 100
    NOT_WITH_ARNS = frozenset({"TagFilters", "ResourceTypeFilters", "ResourcesPerPage", "TagsPerPage", "PaginationToken"})

    def _tags_of_listed(self, request: dict[str, Any], context: dict[str, Any] | None) -> Any:
        """GetResources by ``ResourceARNList`` for log groups: the listed groups that are or were tagged, with
        their tags (G12). ARNs of other resources are moto's to answer."""
        arns = request["ResourceARNList"]
        if not all(isinstance(a, str) and ":logs:" in a and ":log-group:" in a for a in arns):
            return None
        if not 1 <= len(arns) <= self.ARNS_MAX or self.NOT_WITH_ARNS & set(request):
            return _Answered(400), {"Error": {"Code": "InvalidParameterException", "Message":
                                              f"ResourceARNList takes 1 to {self.ARNS_MAX} ARNs, without {sorted(self.NOT_WITH_ARNS)}"},
                                    "ResponseMetadata": {"HTTPStatusCode": 400}}
        from moto.logs.models import logs_backends

        backend = logs_backends[_calling_account()][_calling_region(context)]
        found = []
        for arn in dict.fromkeys(a.removesuffix(":*") for a in arns):
            name = arn.split(":log-group:", 1)[1]
            if name in backend.groups and arn in self.ever_tagged:
                tags = backend.list_tags_for_resource(arn) or {}
                found.append({"ResourceARN": arn, "Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())]})
        return _Answered(), {"ResourceTagMappingList": found, "PaginationToken": ""}

    def record_logging_config(self, params: dict[str, Any], **_: Any) -> None:
        config = {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{params['FunctionName']}", **params.get("LoggingConfig", {})}
        self.logging_configs[params["FunctionName"]] = config

    def update_logging_config(self, params: dict[str, Any], **_: Any) -> None:
        name = params["FunctionName"].rsplit(":", 1)[-1] if params["FunctionName"].startswith("arn:") else params["FunctionName"]
        if "LoggingConfig" in params:
            current = self.logging_configs.get(name, {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{name}"})
            self.logging_configs[name] = {**current, **params["LoggingConfig"]}

    def add_logging_config(self, parsed: dict[str, Any], **_: Any) -> None:
        if "FunctionName" in parsed and parsed["FunctionName"] in self.logging_configs:
            parsed["LoggingConfig"] = dict(self.logging_configs[parsed["FunctionName"]])


    def refuse_unknown_page_token(self, params: dict[str, Any], context: dict[str, Any] | None = None, **_: Any) -> Any:
        """G16: FilterLogEvents with a ``nextToken`` it did not hand out for this group (or no longer knows) answers
        InvalidParameterException "The specified nextToken is invalid." (recorded: AWS's answer quoted in boto/boto3#1467;
        FACTS "Recorded real-AWS answers"); moto answers an empty last page, which would end a replay holding a stale token
        quietly. moto's tokens name group, stream and event: one naming no event of the group is not moto's."""
        from moto.logs.models import logs_backends

        request = json.loads(params.get("body") or b"{}")
        token, name = request.get("nextToken"), request.get("logGroupName", "")
        if not token:
            return None
        group = logs_backends[_calling_account()][_calling_region(context)].groups.get(name)
        parts = token.split("@")
        stream = group.streams.get(parts[1]) if group is not None and len(parts) == 3 and parts[0] == name else None
        if stream is None or not any(str(event.event_id) == parts[2] for event in stream.events):
            return _refused("InvalidParameterException", "The specified nextToken is invalid.")
        return None

    def refuse_lambda_logs_may_not_invoke(self, params: dict[str, Any], context: dict[str, Any] | None = None, **_: Any) -> Any:
        """G17: a filter to a Lambda function of another account is refused, before the group is looked at, with
        AccessDeniedException "Cross-account lambda invocation passing is not allowed." (FACTS, "Recorded real-AWS answers");
        to one of this account whose resource policy does not let CloudWatch Logs invoke it for the group, with
        InvalidParameterException "Could not execute the lambda function. Make sure you have given CloudWatch Logs permission
        to execute your function." (recorded: quoted in app-sre/qontract-reconcile#1291, newrelic/aws-log-ingestion#1,
        localstack/localstack#2653). The policy is read as Lambda evaluates it: an Allow for ``logs.amazonaws.com`` (or
        ``logs.<region>.amazonaws.com``) and ``lambda:InvokeFunction``, whose ``AWS:SourceArn`` (ArnLike/ArnEquals) matches
        the group's ARN and whose ``AWS:SourceAccount`` is the caller's."""
        request = json.loads(params.get("body") or b"{}")
        arn, name = request.get("destinationArn", ""), request.get("logGroupName", "")
        parts = arn.split(":")
        if len(parts) < 7 or parts[2] != "lambda":
            return None
        account, region = _calling_account(), _calling_region(context)
        if parts[4] != account:
            return _refused("AccessDeniedException", "Cross-account lambda invocation passing is not allowed.")
        from moto.awslambda.models import lambda_backends

        try:
            answer = json.loads(lambda_backends[account][parts[3]].get_policy(parts[6]))
            policy = json.loads(answer["Policy"]) if isinstance(answer.get("Policy"), str) else answer
        except Exception:  # no policy, or no function (moto answers that one itself)
            policy = {"Statement": []}
        if not any(_lets_logs_invoke(statement, f"{_group_arn(name, region)}:*", account, region) for statement in policy.get("Statement", [])):
            return _refused("InvalidParameterException", "Could not execute the lambda function. Make sure you have given CloudWatch Logs "
                                                         "permission to execute your function.")
        return None

    def refuse_role_logs_cannot_assume(self, params: dict[str, Any], context: dict[str, Any] | None = None, **_: Any) -> Any:
        """G19: a filter to a Kinesis or Firehose stream whose ``roleArn`` is not a role of the caller's account trusted by
        CloudWatch Logs (``logs.amazonaws.com`` or ``logs.<region>.amazonaws.com``) is refused with ValidationException
        "Make sure you have given CloudWatch Logs permission to assume the provided role." (recorded:
        hashicorp/terraform-provider-aws#48088, whose provider retries it while IAM propagates a new role)."""
        request = json.loads(params.get("body") or b"{}")
        service = request.get("destinationArn", "").split(":")[2:3]
        role = request.get("roleArn")
        if service not in (["kinesis"], ["firehose"]) or not role:
            return None
        if not _trusted_by_logs(role, _calling_account(), _calling_region(context)):
            return _refused("ValidationException", "Make sure you have given CloudWatch Logs permission to assume the provided role.")
        return None

    def add_apply_on_transformed_logs(self, parsed: dict[str, Any], **_: Any) -> None:
        """G20: DescribeSubscriptionFilters' filters carry ``applyOnTransformedLogs`` (false unless set: the model; recorded
        in LocalStack's validated snapshots); moto's carry none."""
        for found in parsed.get("subscriptionFilters", []) if isinstance(parsed, dict) else []:
            found.setdefault("applyOnTransformedLogs", False)

    def refuse_key_not_admitting_logs(self, params: dict[str, Any], context: dict[str, Any] | None = None, **_: Any) -> Any:
        """G14 at creation: CreateLogGroup with a ``kmsKeyId`` whose policy does not let CloudWatch Logs use it answers
        AccessDeniedException "The specified KMS key does not exist or is not allowed to be used with Arn '<group ARN>'"
        (recorded: hashicorp/terraform-provider-aws#29282, aws/aws-cdk#28304)."""
        from moto.kms.models import kms_backends

        request = json.loads(params.get("body") or b"{}")
        key_arn = request.get("kmsKeyId")
        if not key_arn:
            return None
        account, region = _calling_account(), _calling_region(context)
        key = kms_backends[account][region].keys.get(key_arn.rsplit("/", 1)[-1])
        if key is None or not key.enabled or not _admits_logs(key.policy, region):
            return _refused("AccessDeniedException", f"The specified KMS key does not exist or is not allowed to be used with Arn "
                                                     f"'{_group_arn(request.get('logGroupName', ''), region)}'")
        return None

    def refuse_long_partition_key(self, params: dict[str, Any], **_: Any) -> Any:
        """K1: a PutRecord whose ``PartitionKey`` is longer than 256 characters is refused (the Kinesis model: PartitionKey
        1-256; botocore checks only the minimum, moto nothing) with ValidationException (Kinesis API reference, Common
        Errors: "The input fails to satisfy the constraints specified by an AWS service")."""
        key = json.loads(params.get("body") or b"{}").get("PartitionKey", "")
        if len(key) > 256:
            return _refused("ValidationException", f"1 validation error detected: Value '{key}' at 'partitionKey' failed to satisfy "
                                                   "constraint: Member must have length less than or equal to 256")
        return None


def _trusted_by_logs(role_arn: str, account: str, region: str) -> bool:
    """A role of ``account`` (moto's IAM holds it) whose trust lets CloudWatch Logs assume it."""
    if role_arn.split(":")[4:5] != [account]:
        return False
    from moto.iam.models import iam_backends

    try:
        role = iam_backends[account]["global"].get_role_by_arn(role_arn)
    except Exception:  # moto's IAMNotFoundException
        return False
    trust = role.assume_role_policy_document
    trust = json.loads(trust) if isinstance(trust, str) else trust
    statements = trust.get("Statement", [])
    for statement in [statements] if isinstance(statements, dict) else statements:
        principal = statement.get("Principal") or {}
        services = principal.get("Service", []) if isinstance(principal, dict) else []
        services = [services] if isinstance(services, str) else services
        if statement.get("Effect") == "Allow" and {"logs.amazonaws.com", f"logs.{region}.amazonaws.com"} & set(services):
            return True
    return False


def _lets_logs_invoke(statement: Mapping[str, Any], source_arn: str, account: str, region: str) -> bool:
    from fnmatch import fnmatchcase

    principal = statement.get("Principal") or {}
    service = principal.get("Service") if isinstance(principal, Mapping) else principal
    actions = statement.get("Action", [])
    if (statement.get("Effect") != "Allow" or service not in ("logs.amazonaws.com", f"logs.{region}.amazonaws.com")
            or not set([actions] if isinstance(actions, str) else actions) & {"lambda:InvokeFunction", "lambda:*"}):
        return False
    for operator, pairs in (statement.get("Condition") or {}).items():
        for key, value in pairs.items():
            values = [value] if isinstance(value, str) else value
            if key.lower() == "aws:sourcearn" and not any(fnmatchcase(source_arn, v) if operator == "ArnLike" else source_arn == v for v in values):
                return False
            if key.lower() == "aws:sourceaccount" and account not in values:
                return False
    return True


#: The model's LogGroupIdentifier pattern: a name, or an ARN without the trailing ``:*`` (whose ``*`` it leaves out).
_LOG_GROUP_IDENTIFIER = re.compile(r"[\w#+=/:,.@-]*")


def _identifier_refused(identifier: str) -> Any:
    """G21: a ``logGroupIdentifier`` outside the model's pattern ``[\\w#+=/:,.@-]*`` (an ARN ending ``:*``, say) is refused with
    InvalidParameterException, as AWS answered DescribeLogStreams given such an ARN (recorded: getmoto/moto's ``@aws_verified``
    ``test_arn_formats_log_group_and_stream``, tests/test_logs/test_logs.py at 0af643a5)."""
    if _LOG_GROUP_IDENTIFIER.fullmatch(identifier):
        return None
    return _refused("InvalidParameterException", f"1 validation error detected: Value '{identifier}' at 'logGroupIdentifier' failed to "
                                                 "satisfy constraint: Member must satisfy regular expression pattern: [\\w#+=/:,.@-]*")


def _kms_call_group(request: Mapping[str, Any]) -> str:
    """Associate/DisassociateKmsKey name the group by ``logGroupName`` or by ``resourceIdentifier``, its ARN (the model:
    "either logGroupName or resourceIdentifier")."""
    identifier = request.get("logGroupName") or request.get("resourceIdentifier", "")
    if not identifier.startswith("arn:"):
        return identifier
    return identifier.split(":log-group:", 1)[1].removesuffix(":*") if ":log-group:" in identifier else ""  # query-result:* is no group


def _refused(code: str, message: str) -> Any:
    return _Answered(400), {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": 400}}


def _admits_logs(policy: str, region: str) -> bool:
    """Some statement allows CloudWatch Logs of the region to encrypt with the key (the guide's key policy): localaws's own
    reading, kept apart from the governor's check so a test of one is not a test of itself."""
    try:
        statements = json.loads(policy).get("Statement", [])
    except ValueError:
        return False
    allowed = False
    for statement in statements if isinstance(statements, list) else [statements]:
        principal = statement.get("Principal") or {}
        services = principal.get("Service", []) if isinstance(principal, dict) else []
        everyone = principal == "*" or (isinstance(principal, dict) and principal.get("AWS") == "*")
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if ((everyone or f"logs.{region}.amazonaws.com" in ([services] if isinstance(services, str) else services))
                and any(a in ("kms:*", "kms:Encrypt*", "kms:Encrypt") for a in actions)):
            if statement.get("Effect") == "Deny":
                return False  # an explicit deny wins (IAM's policy evaluation logic)
            allowed = allowed or statement.get("Effect") == "Allow"
    return allowed


def _calling_account() -> str:
    return os.environ.get("MOTO_ACCOUNT_ID", ACCOUNT_ID)


def _calling_region(context: dict[str, Any] | None) -> str:
    return (context or {}).get("client_region") or os.environ.get("AWS_DEFAULT_REGION", DEFAULT_REGION)


def _group_arn(name: str, region: str) -> str:
    return f"arn:aws:logs:{region}:{_calling_account()}:log-group:{name}"


class _Answered:
    """The HTTP side of a call a gap filler answered itself (botocore reads only these)."""

    def __init__(self, status_code: int = 200) -> None:
        self.status_code = status_code
        self.headers: dict[str, str] = {}


class LocalAccount:
    """Clients and builders for one region of the moto account."""

    def __init__(self, region: str, calls: Counter[str] | None = None, *, endpoint_url: str | None = None) -> None:
        #: API calls made by any client of the default session, by "service.Operation" (in-process only).
        self.calls = calls if calls is not None else Counter()
        self.region = region
        self.account_id = ACCOUNT_ID
        self.endpoint_url = endpoint_url
        #: What this account fills in for moto (set by local_account and the server).
        self.gaps: MotoGaps | None = None
        self.logs, self.lambda_, self.iam, self.kinesis = (self.client(name) for name in ("logs", "lambda", "iam", "kinesis"))

    def client(self, service: str) -> Any:
        # Set-up and read-back retry patiently: with quotas on, the server throttles them too.
        config = Config(retries={"mode": "standard", "max_attempts": 20})
        return boto3.client(service, region_name=self.region, endpoint_url=self.endpoint_url, config=config)

    # --- resources -------------------------------------------------------------------------------
    def create_log_group(
        self,
        name: str,
        *,
        log_group_class: str = "STANDARD",
        retention_days: int | None = None,
        tags: Mapping[str, str] | None = None,
        filters: Iterable[tuple[str, str]] = (),
    ) -> str:
        """Create a log group; ``filters`` are (filter name, destination ARN) pairs. Returns its name."""
        request: dict[str, Any] = {"logGroupName": name, "logGroupClass": log_group_class}
        if tags:
            request["tags"] = dict(tags)
        self.logs.create_log_group(**request)
        if retention_days is not None:
            self.logs.put_retention_policy(logGroupName=name, retentionInDays=retention_days)
        for filter_name, destination_arn in filters:
            extra = {"roleArn": self.logs_delivery_role()} if ":kinesis:" in destination_arn or ":firehose:" in destination_arn else {}
            self.logs.put_subscription_filter(
                logGroupName=name, filterName=filter_name, filterPattern="", destinationArn=destination_arn, **extra
            )
        return name

    def deliveries(self, log_group: str, events: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
        """(destination ARN, subscription event) for each delivery CloudWatch Logs would make of ``events``
        written to ``log_group``: one per group-level filter, and one from the account-level subscription
        filter policy when its NOT IN list leaves the group in (``policyLevel: ACCOUNT_LEVEL_POLICY``).
        Filters add up: a group with both receives each event twice."""
        from .account_policies import SUBSCRIPTION, _NOT_IN
        from .payloads import encode_batch, subscription_document

        found = [(f["destinationArn"], encode_batch(subscription_document(log_group, events, filter_name=f["filterName"])))
                 for f in self.logs.describe_subscription_filters(logGroupName=log_group)["subscriptionFilters"]]
        if self.gaps is None or self.gaps.log_group_classes.get(log_group, "STANDARD") != "STANDARD":
            return found  # only Standard groups are subscribed
        for (policy_type, name), policy in sorted(self.gaps.policies_in(self.account_id, self.region).policies.items()):
            if policy_type != SUBSCRIPTION:
                continue
            match = _NOT_IN.match(policy.selection or "")
            if match and log_group in json.loads(match[1]):
                continue
            destination = json.loads(policy.document)["DestinationArn"]
            if self._own_log_group_of(destination) == log_group:
                continue  # "Log recursion prevention": a Lambda destination's own group is not fed back to it
            found.append((destination, encode_batch(subscription_document(log_group, events, filter_name=name,
                                                                          policy_level="ACCOUNT_LEVEL_POLICY"))))
        return found

    def _own_log_group_of(self, destination_arn: str) -> str | None:
        """The log group a Lambda destination writes its own logs to (its LoggingConfig, else /aws/lambda/<name>)."""
        if ":lambda:" not in destination_arn or self.gaps is None:
            return None
        name = destination_arn.split(":")[6]
        return self.gaps.logging_configs.get(name, {}).get("LogGroup", f"/aws/lambda/{name}")

    def create_function(self, name: str, *, log_group: str | None = None, logs_may_invoke: bool = True) -> str:
        """A Lambda function (moto stores it; invoking it would need Docker). Returns its ARN; an
        existing function of that name is reused. ``logs_may_invoke``: its resource policy lets CloudWatch Logs of this
        account invoke it for any log group, as a destination's owner grants it (stacks/destination.py's statement)."""
        try:
            return self.lambda_.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
        except self.lambda_.exceptions.ResourceNotFoundException:
            pass
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as zipped:
            zipped.writestr("index.py", "def handler(event, context):\n    return event\n")
        request: dict[str, Any] = {
            "FunctionName": name,
            "Runtime": "python3.13",
            "Role": self._role(f"{name}-role", _LAMBDA_TRUST),
            "Handler": "index.handler",
            "Code": {"ZipFile": archive.getvalue()},
        }
        if log_group:
            request["LoggingConfig"] = {"LogFormat": "JSON", "LogGroup": log_group}
        arn = self.lambda_.create_function(**request)["FunctionArn"]
        if logs_may_invoke:
            self.lambda_.add_permission(FunctionName=name, StatementId="LogsMayInvoke", Action="lambda:InvokeFunction",
                                        Principal="logs.amazonaws.com", SourceAccount=self.account_id,
                                        SourceArn=f"arn:aws:logs:{self.region}:{self.account_id}:log-group:*")
        return arn

    def set_function_log_group(self, name: str, log_group: str) -> None:
        """Point a function's LoggingConfig at another log group, as a team may do after deploy."""
        self.lambda_.update_function_configuration(FunctionName=name, LoggingConfig={"LogFormat": "JSON", "LogGroup": log_group})

    def create_state_table(self, name: str) -> str:
        """The governor's state table, shaped as the stack makes it (key ``pk``, TTL ``expiresAt``)."""
        dynamodb = self.client("dynamodb")
        dynamodb.create_table(TableName=name, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                              AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
        dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiresAt"})
        return name

    def create_stream(self, name: str) -> str:
        self.kinesis.create_stream(StreamName=name, StreamModeDetails={"StreamMode": "ON_DEMAND"})
        return self.kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]

    def logs_delivery_role(self, name: str = "logs-delivery") -> str:
        """A role CloudWatch Logs may assume to write into a Kinesis or Firehose stream (G19 refuses one it may not)."""
        return self._role(name, _LOGS_TRUST)

    def _role(self, name: str, trust: str) -> str:
        try:
            return self.iam.get_role(RoleName=name)["Role"]["Arn"]
        except self.iam.exceptions.NoSuchEntityException:
            return self.iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]["Arn"]

    # --- reading back ----------------------------------------------------------------------------
    def snapshot(self, name: str) -> dict[str, Any]:
        """What a log group looks like now: class, retention and its filters (name -> destination)."""
        groups = self.logs.describe_log_groups(logGroupNamePrefix=name, limit=1)["logGroups"]
        group = next(g for g in groups if g["logGroupName"] == name)
        filters = self.logs.describe_subscription_filters(logGroupName=name)["subscriptionFilters"]
        return {
            "class": group["logGroupClass"],
            "retention": group.get("retentionInDays"),
            "filters": {f["filterName"]: f["destinationArn"] for f in filters},
        }


@contextmanager
def local_account(region: str = DEFAULT_REGION) -> Iterator[LocalAccount]:
    """A fresh moto account; every boto3 client made inside (the handlers' too) talks to it.

    """
    fake = {
        "AWS_DEFAULT_REGION": region,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
    }
    with mock.patch.dict(os.environ, fake), mock_aws():
        # Handlers call boto3.client(...), which uses the default session: give it the gap fillers.
        boto3.setup_default_session(region_name=region)
        gaps = MotoGaps()
        gaps.install(boto3.DEFAULT_SESSION)
        calls: Counter[str] = Counter()
        # Counted before the request is built: a gap filler answering at before-call stops the handlers after it.
        boto3.DEFAULT_SESSION.events.register("before-parameter-build", lambda event_name, **_: calls.update(
            [event_name.removeprefix("before-parameter-build.").replace("cloudwatch-logs.", "logs.")]))
        try:
            local = LocalAccount(region, calls)
            local.gaps = gaps
            yield local
        finally:
            boto3.DEFAULT_SESSION = None
