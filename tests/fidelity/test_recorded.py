"""Replays real AWS answers recorded by public projects against localaws (issue #27, "recorded corpus").

Each file in ``tests/fidelity/recorded/`` is one request whose real answer a public project recorded: a LocalStack
snapshot of a test marked ``@markers.aws.validated``, a moto test marked ``@aws_verified``, terraform-provider-aws's
error handling, or an issue thread quoting AWS's error verbatim (``source``). The runner makes the case's ``setup``
calls, then its ``request``, in a fresh in-process localaws account, and checks what the recording shows:

- ``expect.error``: the error code AWS answered;
- ``expect.fields``: for a success, the response's field names and value types (``str``, ``int``, ``bool``, ``list``,
  ``dict``, ``datetime``; a dotted name reaches into the first item of a list, ``logGroups.0.arn``). Volatile values
  (timestamps, ids, tokens) are never compared.

Placeholders in a request: ``{account}`` and ``{region}`` (the local account's), ``{foreign_account}`` (another
account, where the recording used someone else's), ``{now_ms}`` / ``{now_ms-172800000}`` (epoch milliseconds, an int),
``{repeat:a:513}`` (513 a's), and any name a setup step saved (``"save": {"name": "Dotted.Path"}``). Setup steps are
calls (``{"operation": "kinesis:CreateStream", "request": {...}}``) or helpers (``{"helper": "function", ...}``,
see ``_HELPERS``) for what JSON cannot carry (a function's code) or what localaws models outside moto (another
account's destination).

Where localaws answers differently today the case carries ``"xfail": "#27 item N: ..."`` and runs as
``xfail(strict=True)``: once localaws is fixed it fails, and the marker must go.
"""

from __future__ import annotations

import datetime
import json
import re
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore import xform_name
from botocore.config import Config
from botocore.exceptions import ClientError

from localaws.account import LocalAccount

RECORDED = Path(__file__).parent / "recorded"
#: Stands in for the other account of a recording (a Lambda, a destination that is not the caller's).
FOREIGN_ACCOUNT = "210987654321"
ORG_ID = "o-recorded27"
_TYPES: dict[str, type | tuple[type, ...]] = {"str": str, "int": int, "bool": bool, "list": list, "dict": dict,
                                              "datetime": datetime.datetime, "float": (int, float)}
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*(?:[+-]\d+)?|repeat:[^:}]*:\d+)\}")


def _cases() -> list[Any]:
    found = []
    for path in sorted(RECORDED.glob("*.json")):
        case = json.loads(path.read_text())
        marks = [pytest.mark.xfail(strict=True, reason=case["xfail"])] if case.get("xfail") else []
        found.append(pytest.param(path.stem, case, id=path.stem, marks=marks))
    return found


def _service_and_operation(name: str) -> tuple[str, str]:
    service, _, operation = name.rpartition(":")
    return service or "logs", operation


def _substitute(value: Any, names: dict[str, Any]) -> Any:
    if isinstance(value, dict):
        return {k: _substitute(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, names) for v in value]
    if not isinstance(value, str):
        return value

    def one(token: str) -> Any:
        if token.startswith("repeat:"):
            _, text, count = token.split(":")
            return text * int(count)
        match = re.fullmatch(r"now_ms([+-]\d+)?", token)
        if match:
            return int(time.time() * 1000) + int(match[1] or 0)
        return names[token]

    whole = _PLACEHOLDER.fullmatch(value)
    if whole:
        return one(whole[1])
    return _PLACEHOLDER.sub(lambda m: str(one(m[1])), value)


def _dig(document: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        document = document[int(part)] if isinstance(document, list) else document[part]
    return document


def _call(account: LocalAccount, operation: str, request: dict[str, Any]) -> dict[str, Any]:
    """One attempt, as the recording made it: botocore would retry LimitExceededException as a throttle."""
    service, name = _service_and_operation(operation)
    client = boto3.client(service, region_name=account.region, endpoint_url=account.endpoint_url,
                          config=Config(retries={"mode": "standard", "total_max_attempts": 1}))
    return getattr(client, xform_name(name))(**request)


# --- helpers: set-up a JSON request cannot express ---------------------------------------------------------------

def _function(account: LocalAccount, step: dict[str, Any], names: dict[str, Any]) -> Any:
    """A Lambda function in the account (moto stores it); ``permission``: let logs.<region>.amazonaws.com invoke it
    from the account's log groups, as the recordings did before subscribing."""
    arn = account.create_function(step["name"], logs_may_invoke=False)
    if step.get("permission"):
        account.lambda_.add_permission(FunctionName=step["name"], StatementId="logs", Action="lambda:InvokeFunction",
                                       Principal=f"logs.{account.region}.amazonaws.com", SourceAccount=account.account_id,
                                       SourceArn=f"arn:aws:logs:{account.region}:{account.account_id}:log-group:*")
    return arn


def _role(account: LocalAccount, step: dict[str, Any], names: dict[str, Any]) -> Any:
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": step.get("trusted_by", "logs.amazonaws.com")},
                                                     "Action": "sts:AssumeRole"}]}
    return account.iam.create_role(RoleName=step["name"], AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]


def _stream(account: LocalAccount, step: dict[str, Any], names: dict[str, Any]) -> Any:
    return account.create_stream(step["name"])


def _foreign_destination(account: LocalAccount, step: dict[str, Any], names: dict[str, Any]) -> Any:
    """A CloudWatch Logs destination of another account (localaws.organization), its access policy admitting
    ``admits``: "organization" (``*`` with ``aws:PrincipalOrgID``), "account" (the caller's account listed) or "nobody"."""
    from localaws.organization import Organization

    organization = Organization(ORG_ID, {FOREIGN_ACCOUNT, account.account_id})
    organization.install(boto3.DEFAULT_SESSION)
    arn = f"arn:aws:logs:{account.region}:{FOREIGN_ACCOUNT}:destination:{step['name']}"
    statement: dict[str, Any] = {"Effect": "Allow", "Action": ["logs:PutSubscriptionFilter", "logs:PutAccountPolicy"], "Resource": arn}
    admits = step.get("admits", "organization")
    if admits == "organization":
        statement |= {"Principal": {"AWS": "*"}, "Condition": {"StringEquals": {"aws:PrincipalOrgID": [ORG_ID]}}}
    else:  # "account": the caller's listed; "nobody": another account listed, not the caller's
        statement |= {"Principal": {"AWS": [account.account_id if admits == "account" else "999999999999"]}}
    stream = f"arn:aws:kinesis:{account.region}:{FOREIGN_ACCOUNT}:stream/{step['name']}"
    return organization.create_destination(FOREIGN_ACCOUNT, step["name"], stream, {"Version": "2012-10-17", "Statement": [statement]},
                                           region=account.region)


_HELPERS = {"function": _function, "role": _role, "stream": _stream, "foreign_destination": _foreign_destination}


def _set_up(account: LocalAccount, steps: list[dict[str, Any]], names: dict[str, Any]) -> None:
    for step in steps:
        step = _substitute(step, names)
        if "helper" in step:
            value = _HELPERS[step["helper"]](account, step, names)
            if step.get("save"):
                names[step["save"]] = value
            continue
        answer = _call(account, step["operation"], step.get("request", {}))
        for name, dotted in step.get("save", {}).items():
            names[name] = _dig(answer, dotted)


def _check_fields(answer: dict[str, Any], fields: dict[str, str]) -> list[str]:
    problems = []
    for dotted, type_name in fields.items():
        try:
            value = _dig(answer, dotted)
        except (KeyError, IndexError, TypeError):
            problems.append(f"{dotted}: missing")
            continue
        wanted = _TYPES[type_name]
        if not isinstance(value, wanted) or (type_name == "int" and isinstance(value, bool)):
            problems.append(f"{dotted}: {type(value).__name__}, recorded {type_name}")
    return problems


@pytest.mark.parametrize(("name", "case"), _cases())
def test_recorded_answer(name: str, case: dict[str, Any], account: LocalAccount) -> None:
    names: dict[str, Any] = {"account": account.account_id, "region": account.region, "foreign_account": FOREIGN_ACCOUNT}
    _set_up(account, case.get("setup", []), names)
    request = _substitute(case["request"], names)
    expect = case["expect"]
    if "error" in expect:
        with pytest.raises(ClientError) as refused:
            _call(account, case["operation"], request)
        assert refused.value.response["Error"]["Code"] == expect["error"], refused.value.response["Error"]
        return
    answer = _call(account, case["operation"], request)
    assert _check_fields(answer, expect.get("fields", {})) == []
    for dotted in expect.get("absent", []):
        with pytest.raises((KeyError, IndexError)):
            _dig(answer, dotted)


def test_every_case_names_its_recording() -> None:
    """A case without a public recording is an assumption, not a recording: it belongs in FIDELITY.md, not here."""
    for path in sorted(RECORDED.glob("*.json")):
        case = json.loads(path.read_text())
        source = case["source"]
        assert ("repository" in source and "path" in source) or ("thread" in source and source.get("quote")), path.name
        if source.get("commit"):
            assert re.fullmatch(r"[0-9a-f]{40}", source["commit"]), path.name
        assert set(case["expect"]) <= {"error", "fields", "absent"} and ("error" in case["expect"]) != ("fields" in case["expect"]), path.name
        if case.get("xfail"):
            assert case["xfail"].startswith("#27 item "), path.name
