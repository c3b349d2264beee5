"""An AWS Organization in moto (#10): member accounts, cross-account CloudWatch Logs destinations, and
cross-account delivery to an EventBridge bus, which moto 5.2.5 does not model (a PutSubscriptionFilter
to a logs destination answers "log group does not exist"; a PutEvents names only its own account's buses).

Accounts are moto's: a call is made as the account in ``MOTO_ACCOUNT_ID`` (``Organization.as_account``).
What is modelled, as AWS documents it:
- PutSubscriptionFilter to ``arn:aws:logs:<region>:<account>:destination:<name>``: the destination must
  exist in its account and be in the group's region; its access policy must allow the caller's account
  (``Principal.AWS`` listing it, or ``*`` with ``aws:PrincipalOrgID`` naming the caller's organization)
  for ``logs:PutSubscriptionFilter``; else ``AccessDeniedException``. An organization-wide admission also
  needs the sender's role (``roleArn``: a role of the caller's account that logs.amazonaws.com may
  assume): without one ``InvalidParameterException``, with one it cannot assume ``ValidationException``,
  as AWS answered (the threads in FIDELITY.md O4). Such filters are kept here and added to DescribeSubscriptionFilters; DeleteSubscriptionFilter
  removes them.
- PutAccountPolicy of a SUBSCRIPTION_FILTER_POLICY to such a destination: the same checks, for
  ``logs:PutAccountPolicy`` and the document's ``RoleArn``.
Every rule names its source in localaws/FIDELITY.md.
- Delivery: ``deliver(group, events)`` writes, for each such filter, the subscription document (gzip'd
  JSON, ``owner`` the member) into the destination's Kinesis stream, in the destination's account.
- PutEvents to another account's bus (by ARN): allowed when the bus's policy admits the caller (the
  same two forms); the event EventBridge would deliver (``account`` and ``region`` of the sender) is
  kept in ``delivered[bus_arn]``; refused ones answer ``FailedEntryCount``. The entry cannot name an
  account: the event's ``account`` is the sender's, whatever its detail says.
- AssumeRole of another account's role (#31): allowed when the role exists there and its trust policy
  allows ``sts:AssumeRole`` to the caller (its role's ARN, its account, or ``*``); else ``AccessDenied``.
  The caller is the role set by ``as_role`` (else the account's root). The credentials it answers act in
  the role's account: a call signed with them is made as that account (moto would take its own
  ``MOTO_ACCOUNT_ID`` instead). Trust conditions and the caller's own identity policy are not evaluated.
"""

from __future__ import annotations

import gzip
import json
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from .account import ACCOUNT_ID, DEFAULT_REGION, _Answered, _trusted_by_logs

_DESTINATION = "arn:aws:logs:"


@dataclass
class Organization:
    organization_id: str
    accounts: set[str] = field(default_factory=set)
    #: (account, region, group) -> filter name -> the filter as DescribeSubscriptionFilters shows it
    filters: dict[tuple[str, str, str], dict[str, dict[str, Any]]] = field(default_factory=dict)
    #: bus ARN -> events delivered to it, as EventBridge hands them to the bus's rules
    delivered: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: bus ARN -> its resource policy (what PutPermission / the stack would set)
    bus_policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    _iterators: dict[tuple[str, str], str] = field(default_factory=dict)
    #: The access keys AssumeRole answered, and the role each acts as.
    _issued: dict[str, str] = field(default_factory=dict)
    _switched: list[str | None] = field(default_factory=list)
    #: The caller's role (``as_role``); None: the account's root.
    principal: str | None = None
    #: AssumeRole calls answered, as (caller principal, role ARN, allowed).
    assumed: list[tuple[str, str, bool]] = field(default_factory=list)

    def install(self, session: Any) -> None:
        events = session.events
        events.register_first("before-call.sts.AssumeRole", self._assume_role)
        events.register_first("after-call.sts.AssumeRole", self._issued_keys)
        for operation in getattr(session, "_session", session).get_service_model("logs").operation_names:
            # Before localaws.account's own hooks of the operation: they act in the account the call is made as.
            events.register_first(f"before-call.cloudwatch-logs.{operation}", self._as_credentials)
        events.register_last("after-call", self._restore_account)
        events.register_last("after-call-error", self._restore_account)
        events.register_first("before-call.cloudwatch-logs.PutSubscriptionFilter", self._put_filter)
        events.register_first("before-call.cloudwatch-logs.DeleteSubscriptionFilter", self._delete_filter)
        events.register("provide-client-params.cloudwatch-logs.DescribeSubscriptionFilters", self._remember_group)
        events.register("after-call.cloudwatch-logs.DescribeSubscriptionFilters", self._describe_filters)
        events.register_first("before-call.eventbridge.PutEvents", self._put_events)
        events.register_first("before-call.cloudwatch-logs.PutAccountPolicy", self._put_account_policy)

    @staticmethod
    @contextmanager
    def as_account(account: str, region: str | None = None) -> Iterator[None]:
        """Make the calls inside as ``account`` (and, for clients made inside, in ``region``: the
        default session's region too, which a handler's ``boto3.client(...)`` takes)."""
        import boto3

        session = boto3.DEFAULT_SESSION._session if boto3.DEFAULT_SESSION else None
        before = session.get_config_variable("region") if session else None
        with mock.patch.dict(os.environ, {"MOTO_ACCOUNT_ID": account, **({"AWS_DEFAULT_REGION": region} if region else {})}):
            if session and region:
                session.set_config_variable("region", region)
            try:
                yield
            finally:
                if session and region:
                    session.set_config_variable("region", before)

    @contextmanager
    def as_role(self, role_arn: str, region: str | None = None) -> Iterator[None]:
        """Make the calls inside as the role ``role_arn`` (a Lambda function running with it): in its account, and as the
        principal another account's trust policy is checked against."""
        before, self.principal = self.principal, role_arn
        try:
            with self.as_account(role_arn.split(":")[4], region):
                yield
        finally:
            self.principal = before

    def create_destination(self, account: str, name: str, target_arn: str, access_policy: dict[str, Any] | None = None, *,
                           region: str | None = None) -> str:
        """A CloudWatch Logs destination in ``account`` (as the archive stack makes it): a Kinesis target,
        a delivery role, and ``access_policy`` (None: none). Answers its ARN."""
        import boto3

        with self.as_account(account, region):
            logs = boto3.client("logs", **({"region_name": region} if region else {}))
            arn = logs.put_destination(destinationName=name, targetArn=target_arn,
                                       roleArn=f"arn:aws:iam::{account}:role/cwl-to-{name}")["destination"]["arn"]
            if access_policy is not None:
                logs.put_destination_policy(destinationName=name, accessPolicy=json.dumps(access_policy))
        return arn

    # --- CloudWatch Logs ------------------------------------------------------------------------------
    def _put_filter(self, params: dict[str, Any], context: dict[str, Any] | None = None, **_: Any) -> Any:
        request = json.loads(params.get("body") or b"{}")
        destination_arn = request.get("destinationArn", "")
        if ":destination:" not in destination_arn:
            return None  # moto's own (Lambda, Kinesis, Firehose of the same account)
        caller, region = _caller(), _region(context)
        _, _, _, dest_region, dest_account, rest = destination_arn.split(":", 5)
        from moto.logs.models import logs_backends

        if request["logGroupName"] not in logs_backends[caller][region].groups:
            return _error("ResourceNotFoundException", "The specified log group does not exist.")
        destination = logs_backends[dest_account][dest_region].destinations.get(destination_arn)
        if destination is None:
            return _error("ResourceNotFoundException", f"The specified destination does not exist: {destination_arn}")
        refusal = self._destination_refusal(destination_arn, caller, region, "logs:PutSubscriptionFilter", request.get("roleArn"))
        if refusal:
            return refusal
        stored = {"filterName": request["filterName"], "logGroupName": request["logGroupName"], "filterPattern": request.get("filterPattern", ""),
                  "destinationArn": destination_arn, "distribution": "ByLogStream",
                  # When it was put, as AWS answers it (epoch ms): the archive's pull reads the gap up to it (#31).
                  "creationTime": int(time.time() * 1000)}
        if request.get("roleArn"):
            stored["roleArn"] = request["roleArn"]
        self.filters.setdefault((caller, region, request["logGroupName"]), {})[request["filterName"]] = stored
        return _Answered(), {}

    def _put_account_policy(self, params: dict[str, Any], context: dict[str, Any] | None = None, **_: Any) -> Any:
        """An account-level subscription filter policy aimed at another account's destination goes through
        the same checks as a filter (CloudWatch Logs guide, "Cross-account cross-Region account-level
        subscriptions": the destination's access policy grants logs:PutAccountPolicy, and an organization's
        senders pass a role as RoleArn); what passes is stored by localaws.account_policies."""
        request = json.loads(params.get("body") or b"{}")
        if request.get("policyType") != "SUBSCRIPTION_FILTER_POLICY":
            return None
        try:
            document = json.loads(request.get("policyDocument") or "{}")
        except ValueError:
            return None  # the account-policy model refuses it
        destination_arn = document.get("DestinationArn", "") if isinstance(document, dict) else ""
        if ":destination:" not in destination_arn:
            return None
        return self._destination_refusal(destination_arn, _caller(), _region(context), "logs:PutAccountPolicy", document.get("RoleArn"))

    def _destination_refusal(self, destination_arn: str, caller: str, region: str, action: str, role_arn: str | None) -> Any:
        """Why CloudWatch Logs refuses ``caller``'s filter or account policy to a logs destination (None: it does not).
        - the destination exists, in the group's region (AWS-FACTS: "it must be in the same region");
        - its access policy admits the caller's account for ``action`` (PutDestinationPolicy; CreateDestination-Account
          for logs:PutAccountPolicy);
        - an organization-wide admission (aws:PrincipalOrgID) needs the sender's role, in the caller's account and
          trusted by logs.amazonaws.com (CreateSubscriptionFilter-IAMrole). Without a role AWS answers
          InvalidParameterException "Role ARN is required when creating subscription filter against destination with
          Organization access policy" (recorded: cloud-custodian/cloud-custodian#8246); with one CloudWatch Logs cannot
          assume (not of the caller's account, not trusting logs.amazonaws.com, or not yet: IAM's eventual consistency),
          ValidationException "Make sure you have given CloudWatch Logs permission to assume the provided role."
          (recorded: hashicorp/terraform-provider-aws#48088)."""
        from moto.logs.models import logs_backends

        _, _, _, dest_region, dest_account, _ = destination_arn.split(":", 5)
        destination = logs_backends[dest_account][dest_region].destinations.get(destination_arn)
        if destination is None:
            return _error("ResourceNotFoundException", f"The specified destination does not exist: {destination_arn}")
        if dest_region != region:
            return _error("InvalidParameterException", "a CloudWatch Logs destination takes log groups of its own region only")
        if dest_account == caller:
            return None
        admission = self._admits(json.loads(destination.access_policy or "{}"), caller, action)
        if admission is None:
            # The message as AWS words it (recorded: CloudSnorkel/CloudWatch2S3#24).
            return _error("AccessDeniedException", f"User with accountId: {caller} is not authorized to perform: {action} on resource: {destination_arn}")
        if admission == "organization" and not role_arn:
            return _error("InvalidParameterException", "Role ARN is required when creating subscription filter against destination with "
                                                       "Organization access policy")
        if admission == "organization" and not _trusted_by_logs(role_arn, caller, region):
            return _error("ValidationException", "Make sure you have given CloudWatch Logs permission to assume the provided role.")
        return None

    def _delete_filter(self, params: dict[str, Any], context: dict[str, Any] | None = None, **_: Any) -> Any:
        request = json.loads(params.get("body") or b"{}")
        ours = self.filters.get((_caller(), _region(context), request.get("logGroupName", "")), {})
        if request.get("filterName") not in ours:
            return None
        del ours[request["filterName"]]
        return _Answered(), {}

    @staticmethod
    def _remember_group(params: dict[str, Any], context: dict[str, Any] | None = None, **_: Any) -> None:
        if context is not None:
            context["logGroupName"] = params.get("logGroupName")

    def _describe_filters(self, parsed: dict[str, Any], context: dict[str, Any] | None = None, **_: Any) -> None:
        group = (context or {}).get("logGroupName")
        if group is None:
            return
        extra = self.filters.get((_caller(), _region(context), group), {})
        parsed["subscriptionFilters"] = [*parsed.get("subscriptionFilters", []), *extra.values()]

    def deliver(self, account: str, region: str, group: str, events: list[dict[str, Any]], stream: str = "2026/11/29/[$LATEST]a1b2") -> int:
        """What CloudWatch Logs does when ``events`` are written to ``account``'s ``group``: each
        cross-account filter's document goes to its destination's stream. Answers the records written."""
        import boto3
        from moto.logs.models import logs_backends

        written = 0
        for subscription in self.filters.get((account, region, group), {}).values():
            _, _, _, dest_region, dest_account, _ = subscription["destinationArn"].split(":", 5)
            destination = logs_backends[dest_account][dest_region].destinations[subscription["destinationArn"]]
            document = {"messageType": "DATA_MESSAGE", "owner": account, "logGroup": group, "logStream": stream,
                        "subscriptionFilters": [subscription["filterName"]], "logEvents": events}
            with self.as_account(dest_account, dest_region):  # CloudWatch Logs writes with the destination's role
                boto3.client("kinesis", region_name=dest_region).put_record(
                    StreamARN=destination.target_arn, PartitionKey=stream, Data=gzip.compress(json.dumps(document).encode()))
            written += 1
        return written

    def kinesis_event(self, account: str, region: str, stream_arn: str) -> dict[str, Any]:
        """The next records of a stream (every shard, from where the last call stopped), as Lambda's
        Kinesis event source hands them to the consumer: ``kinesis.data`` base64 of what was written."""
        import base64

        import boto3

        records = []
        with self.as_account(account, region):
            kinesis = boto3.client("kinesis", region_name=region)
            for shard in kinesis.list_shards(StreamARN=stream_arn)["Shards"]:
                key = (stream_arn, shard["ShardId"])
                iterator = self._iterators.get(key) or kinesis.get_shard_iterator(
                    StreamARN=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
                answer = kinesis.get_records(ShardIterator=iterator, StreamARN=stream_arn)
                self._iterators[key] = answer["NextShardIterator"]
                for record in answer["Records"]:
                    records.append({
                        "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": record["PartitionKey"],
                                    "sequenceNumber": record["SequenceNumber"], "data": base64.b64encode(record["Data"]).decode(),
                                    "approximateArrivalTimestamp": record["ApproximateArrivalTimestamp"].timestamp()},
                        "eventSource": "aws:kinesis", "eventVersion": "1.0", "eventID": f"{shard['ShardId']}:{record['SequenceNumber']}",
                        "eventName": "aws:kinesis:record", "invokeIdentityArn": f"arn:aws:iam::{account}:role/log-archive-consumer",
                        "awsRegion": region, "eventSourceARN": stream_arn})
        return {"Records": records}

    # --- STS ---------------------------------------------------------------------------------------------
    def _assume_role(self, params: dict[str, Any], context: dict[str, Any] | None = None, request_signer: Any = None, **_: Any) -> Any:
        """Who may assume a role: its trust policy must allow sts:AssumeRole to the caller (IAM guide, "Granting a user
        permissions to switch roles" / "How to use trust policies": a principal naming a role admits that role's sessions
        only; one naming an account, or its root, leaves the decision to that account's identity policies, not modelled
        here). A role that does not exist is refused the same way (FIDELITY.md O9, O10)."""
        body = params.get("body") or {}
        role_arn = body.get("RoleArn", "") if isinstance(body, dict) else ""
        # Credentials an earlier AssumeRole answered act as that role (role chaining); else the caller of as_role, or the root.
        key = getattr(getattr(request_signer, "_credentials", None), "access_key", None)
        chained = self._issued.get(key) if key else None
        caller = chained.split(":")[4] if chained else _caller()
        principal = chained or self.principal or f"arn:aws:iam::{caller}:root"
        allowed = _trust_admits(role_arn, caller, principal)
        self.assumed.append((principal, role_arn, allowed))
        if allowed:
            return None  # moto answers: credentials of the role's account (moto's STS: "The ARN can point to another account")
        who = (f"arn:aws:sts::{caller}:assumed-role/{principal.rsplit('/', 1)[-1]}/{body.get('RoleSessionName', 'session')}"
               if ":role/" in principal else principal)
        return _Answered(403), {"Error": {"Code": "AccessDenied", "Type": "Sender",
                                          "Message": f"User: {who} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"},
                                "ResponseMetadata": {"HTTPStatusCode": 403}}

    def _issued_keys(self, parsed: dict[str, Any], **_: Any) -> None:
        credentials, session = parsed.get("Credentials") or {}, (parsed.get("AssumedRoleUser") or {}).get("Arn", "")
        if credentials.get("AccessKeyId") and session.count(":") >= 5 and "assumed-role/" in session:
            account, role_name = session.split(":")[4], session.split("assumed-role/", 1)[1].split("/")[0]
            self._issued[credentials["AccessKeyId"]] = f"arn:aws:iam::{account}:role/{role_name}"

    def _as_credentials(self, request_signer: Any = None, **_: Any) -> None:
        """A call signed with credentials AssumeRole answered acts in the role's account."""
        credentials = getattr(request_signer, "_credentials", None)
        key = getattr(credentials, "access_key", None)
        role = self._issued.get(key) if key else None
        if role is None:
            return
        account = role.split(":")[4]
        self._switched.append(os.environ.get("MOTO_ACCOUNT_ID"))
        os.environ["MOTO_ACCOUNT_ID"] = account

    def _restore_account(self, **_: Any) -> None:
        if not self._switched:
            return
        before = self._switched.pop()
        if before is None:
            os.environ.pop("MOTO_ACCOUNT_ID", None)
        else:
            os.environ["MOTO_ACCOUNT_ID"] = before

    # --- EventBridge ---------------------------------------------------------------------------------
    def _put_events(self, params: dict[str, Any], context: dict[str, Any] | None = None, **_: Any) -> Any:
        request = json.loads(params.get("body") or b"{}")
        entries = request.get("Entries", [])
        caller, region = _caller(), _region(context)
        foreign = [e for e in entries if str(e.get("EventBusName", "")).startswith("arn:") and e["EventBusName"].split(":")[4] != caller]
        if not foreign:
            return None  # moto's own
        results, failed = [], 0
        for entry in entries:
            bus = entry.get("EventBusName", "")
            if self._admits(self.bus_policies.get(bus, {}), caller, "events:PutEvents") is None:
                results.append({"ErrorCode": "AccessDeniedException", "ErrorMessage": f"{caller} may not put events on {bus}"})
                failed += 1
                continue
            event_id = str(uuid.uuid4())
            self.delivered.setdefault(bus, []).append({
                "version": "0", "id": event_id, "detail-type": entry.get("DetailType"), "source": entry.get("Source"), "account": caller,
                "time": "2026-11-29T03:14:00Z", "region": region, "resources": entry.get("Resources", []),
                "detail": json.loads(entry.get("Detail") or "{}")})
            results.append({"EventId": event_id})
        return _Answered(), {"FailedEntryCount": failed, "Entries": results}

    def _admits(self, policy: dict[str, Any], caller: str, action: str) -> str | None:
        """How a resource policy (a destination's, a bus's) allows ``caller`` to do ``action``: "account"
        (listed), "organization" (``*`` with ``aws:PrincipalOrgID``), or None (it does not)."""
        for statement in policy.get("Statement", []):
            actions = statement.get("Action", [])
            actions = [actions] if isinstance(actions, str) else actions
            if statement.get("Effect") != "Allow" or action not in actions:
                continue
            principal = statement.get("Principal", {})
            principals = principal.get("AWS", []) if isinstance(principal, dict) else principal
            principals = [principals] if isinstance(principals, str) else principals
            org = statement.get("Condition", {}).get("StringEquals", {}).get("aws:PrincipalOrgID")
            orgs = [org] if isinstance(org, str) else (org or [])
            if any(p in (caller, f"arn:aws:iam::{caller}:root") for p in principals):
                return "account"
            if "*" in principals and orgs and self.organization_id in orgs and caller in self.accounts:
                return "organization"
        return None


def _trust_admits(role_arn: str, caller: str, principal: str) -> bool:
    """Whether the trust policy of ``role_arn`` (moto's IAM of its account) allows ``principal`` of ``caller`` to assume it."""
    from moto.iam.models import iam_backends

    parts = role_arn.split(":")
    if len(parts) < 6 or not parts[5].startswith("role/"):
        return False
    try:
        role = iam_backends[parts[4]]["global"].get_role_by_arn(role_arn)
    except Exception:  # moto's IAMNotFoundException
        return False
    trust = role.assume_role_policy_document
    trust = json.loads(trust) if isinstance(trust, str) else trust
    statements = trust.get("Statement", [])
    admitted = False
    for statement in [statements] if isinstance(statements, dict) else statements:
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if not {"sts:AssumeRole", "sts:*", "*"} & set(actions):
            continue
        named = statement.get("Principal") or {}
        named = named.get("AWS", []) if isinstance(named, dict) else named
        named = [named] if isinstance(named, str) else named
        matches = any(p in ("*", principal, caller, f"arn:aws:iam::{caller}:root") for p in named)
        if matches and statement.get("Effect") == "Deny":
            return False
        admitted = admitted or (matches and statement.get("Effect") == "Allow")
    return admitted


def _caller() -> str:
    return os.environ.get("MOTO_ACCOUNT_ID", ACCOUNT_ID)


def _region(context: dict[str, Any] | None) -> str:
    return (context or {}).get("client_region") or os.environ.get("AWS_DEFAULT_REGION", DEFAULT_REGION)


def _error(code: str, message: str) -> Any:
    return _Answered(400), {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": 400}}
