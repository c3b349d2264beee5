"""localaws' model of field index policies (moto 5.2.5 has none: localaws/index_policies.py), through boto3 as code
calling AWS would: each test states a rule of localaws/FIDELITY.md's I1-I9 and E9 and asserts AWS's answer."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from localaws.account import LocalAccount
from localaws.events import log_group_call_event

GROUP = "/aws/lambda/orders-api"
ARN = f"arn:aws:logs:eu-west-1:123456789012:log-group:{GROUP}"
DOCUMENT = json.dumps({"Fields": ["TransactionId"], "FieldsV2": {"RequestId": {"type": "FIELD_INDEX"}, "APIName": {"type": "FACET"}}})


def _refusal(call: Any, **request: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as refused:
        call(**request)
    return refused.value.response["Error"]["Code"], refused.value.response["Error"]["Message"]


def _index(account: LocalAccount, name: str, prefixes: list[str] | None = None, document: str = DOCUMENT, *,
           selection: str | None = None) -> dict[str, Any]:
    request: dict[str, Any] = {"policyName": name, "policyType": "FIELD_INDEX_POLICY", "policyDocument": document}
    if prefixes is not None:
        request["selectionCriteria"] = "LogGroupNamePrefix IN " + json.dumps(prefixes)
    if selection is not None:
        request["selectionCriteria"] = selection
    return account.logs.put_account_policy(**request)


def _described(account: LocalAccount, identifier: str) -> list[dict[str, Any]]:
    return account.logs.describe_index_policies(logGroupIdentifiers=[identifier])["indexPolicies"]


# --- I1-I3: PutIndexPolicy --------------------------------------------------------------------------------

def test_i1_a_policy_put_by_name_or_arn_answers_the_arn_unnamed_and_a_second_replaces_it(account: LocalAccount) -> None:
    account.create_log_group(GROUP)

    by_name = account.logs.put_index_policy(logGroupIdentifier=GROUP, policyDocument=DOCUMENT)["indexPolicy"]
    replaced = json.dumps({"Fields": ["RequestId"]})
    by_arn = account.logs.put_index_policy(logGroupIdentifier=ARN, policyDocument=replaced)["indexPolicy"]

    for answer, document in ((by_name, DOCUMENT), (by_arn, replaced)):
        assert set(answer) == {"logGroupIdentifier", "lastUpdateTime", "policyDocument", "source"}  # no policyName
        assert (answer["logGroupIdentifier"], answer["policyDocument"], answer["source"]) == (ARN, document, "LOG_GROUP")
        assert isinstance(answer["lastUpdateTime"], int)
    assert _described(account, GROUP) == [by_arn]  # I3: "Creates or updates": the second replaced the first


def test_i2_only_standard_groups_take_a_policy_and_a_missing_group_is_not_found(account: LocalAccount) -> None:
    account.create_log_group("/ia", log_group_class="INFREQUENT_ACCESS")

    assert _refusal(account.logs.put_index_policy, logGroupIdentifier="/ia", policyDocument=DOCUMENT) == (
        "InvalidParameterException", "Only log groups in the Standard log class support field index policies")
    assert _refusal(account.logs.put_index_policy, logGroupIdentifier="/missing", policyDocument=DOCUMENT) == (
        "ResourceNotFoundException", "The specified log group does not exist.")
    assert _refusal(account.logs.put_index_policy, logGroupIdentifier=f"{ARN}:*", policyDocument=DOCUMENT)[0] == "InvalidParameterException"


@pytest.mark.parametrize(("document", "problem"), [
    ("not json", "must be JSON"),
    ("{}", "at least one field index"),
    (json.dumps({"Fields": [], "FieldsV2": {}}), "at least one field index"),
    (json.dumps({"Fields": ["RequestId"], "FieldsV2": {"RequestId": {"type": "FACET"}}}), "mutually exclusive"),
    (json.dumps({"FieldsV2": {"RequestId": {"type": "INDEX"}}}), "FIELD_INDEX or FACET"),
    (json.dumps({"Fields": "RequestId"}), "array of field names"),
    (json.dumps({"Fields": [f"f{n}" for n in range(11)], "FieldsV2": {f"g{n}": {"type": "FACET"} for n in range(10)}}), "20 fields"),
    (json.dumps({"Fields": ["x" * 101]}), "100 characters"),
    (json.dumps({"Fields": ["a"], "pad": "x" * 51_200}), "51200 characters"),
])
def test_i3_a_document_aws_refuses_is_refused(account: LocalAccount, document: str, problem: str) -> None:
    account.create_log_group(GROUP)

    code, message = _refusal(account.logs.put_index_policy, logGroupIdentifier=GROUP, policyDocument=document)

    assert code == "InvalidParameterException" and problem in message
    assert _described(account, GROUP) == []  # nothing stored


def test_i3_the_limits_themselves_are_accepted(account: LocalAccount) -> None:
    account.create_log_group(GROUP)
    document = json.dumps({"Fields": ["x" * 100, *(f"f{n}" for n in range(9))], "FieldsV2": {f"g{n}": {"type": "FACET"} for n in range(10)}})

    assert account.logs.put_index_policy(logGroupIdentifier=GROUP, policyDocument=document)["indexPolicy"]["policyDocument"] == document


# --- I4-I5, I9: DescribeIndexPolicies -------------------------------------------------------------------------

def test_i4_describe_takes_exactly_one_group(account: LocalAccount) -> None:
    account.create_log_group(GROUP)
    account.create_log_group("/other")

    code, message = _refusal(account.logs.describe_index_policies, logGroupIdentifiers=[GROUP, "/other"])

    assert code == "InvalidParameterException" and "less than or equal to 1" in message
    assert _refusal(account.logs.describe_index_policies, logGroupIdentifiers=["/missing"])[0] == "ResourceNotFoundException"
    assert _described(account, GROUP) == []  # no policy: an empty list


def test_i5_the_groups_own_policy_overrides_the_account_policy_that_selects_it(account: LocalAccount) -> None:
    account.create_log_group(GROUP)
    account.create_log_group("/ecs/web")
    _index(account, "lambda", ["/aws/lambda/"], json.dumps({"Fields": ["AccountWide"]}))

    [inherited] = _described(account, ARN)
    assert inherited == {"policyName": "lambda", "logGroupIdentifier": ARN, "lastUpdateTime": inherited["lastUpdateTime"],
                         "policyDocument": json.dumps({"Fields": ["AccountWide"]}), "source": "ACCOUNT"}
    assert _described(account, "/ecs/web") == []  # the prefix does not select it

    account.logs.put_index_policy(logGroupIdentifier=GROUP, policyDocument=DOCUMENT)
    [own] = _described(account, GROUP)
    assert (own["source"], own["policyDocument"], "policyName" in own) == ("LOG_GROUP", DOCUMENT, False)

    account.logs.delete_index_policy(logGroupIdentifier=GROUP)
    assert _described(account, GROUP)[0]["source"] == "ACCOUNT"  # the account policy applies again


def test_i9_an_all_groups_policy_applies_to_every_standard_group_only(account: LocalAccount) -> None:
    account.create_log_group("/ecs/web")
    account.create_log_group("/ia", log_group_class="INFREQUENT_ACCESS")
    _index(account, "everything")

    assert [p["policyName"] for p in _described(account, "/ecs/web")] == ["everything"]
    assert _described(account, "/ia") == []  # only Standard groups support field index policies (assumed for account policies)


# --- I6: DeleteIndexPolicy, DeleteLogGroup ----------------------------------------------------------------

def test_i6_delete_removes_the_policy_and_deleting_none_is_not_found(account: LocalAccount) -> None:
    account.create_log_group(GROUP)
    account.logs.put_index_policy(logGroupIdentifier=GROUP, policyDocument=DOCUMENT)

    account.logs.delete_index_policy(logGroupIdentifier=ARN)

    assert _described(account, GROUP) == []
    assert _refusal(account.logs.delete_index_policy, logGroupIdentifier=GROUP)[0] == "ResourceNotFoundException"
    assert _refusal(account.logs.delete_index_policy, logGroupIdentifier="/missing") == (
        "ResourceNotFoundException", "The specified log group does not exist.")


def test_i6_a_group_deleted_and_created_again_has_no_policy_and_a_refused_deletion_keeps_it(account: LocalAccount) -> None:
    account.create_log_group(GROUP)
    account.create_log_group("/kept")
    for name in (GROUP, "/kept"):
        account.logs.put_index_policy(logGroupIdentifier=name, policyDocument=DOCUMENT)
    account.logs.put_log_group_deletion_protection(logGroupIdentifier="/kept", deletionProtectionEnabled=True)

    account.logs.delete_log_group(logGroupName=GROUP)
    account.create_log_group(GROUP)
    with pytest.raises(ClientError):
        account.logs.delete_log_group(logGroupName="/kept")

    assert _described(account, GROUP) == []
    assert _described(account, "/kept")[0]["source"] == "LOG_GROUP"


# --- I7-I8: PutAccountPolicy of FIELD_INDEX_POLICY --------------------------------------------------------

def test_i7_prefixes_may_not_overlap_and_an_update_of_the_same_policy_may_keep_its_own(account: LocalAccount) -> None:
    _index(account, "my-log", ["my-log"])

    for prefix in ("my-logpprod", "my-logging", "my-", "my-log"):  # the guide's examples, and the prefixes above and equal
        code, message = _refusal(_index, account=account, name=f"other-{prefix}", prefixes=[prefix])
        assert code == "InvalidParameterException" and "overlaps" in message
    _index(account, "my-log", ["my-log", "your-log"])  # the same policy, updated
    _index(account, "other", ["other-"])

    found = account.logs.describe_account_policies(policyType="FIELD_INDEX_POLICY")["accountPolicies"]
    assert {p["policyName"]: p["selectionCriteria"] for p in found} == {"my-log": 'LogGroupNamePrefix IN ["my-log", "your-log"]',
                                                                        "other": 'LogGroupNamePrefix IN ["other-"]'}


def test_i7_an_all_groups_policy_stands_alone_and_prefix_policies_stop_at_20(account: LocalAccount) -> None:
    _index(account, "everything")
    assert _refusal(_index, account=account, name="lambda", prefixes=["/aws/lambda/"])[0] == "LimitExceededException"
    assert _refusal(_index, account=account, name="everything-else")[0] == "LimitExceededException"
    _index(account, "everything", document=json.dumps({"Fields": ["Updated"]}))  # updating it is no other policy
    account.logs.delete_account_policy(policyName="everything", policyType="FIELD_INDEX_POLICY")

    for n in range(20):
        _index(account, f"p{n:02}", [f"/team-{n:02}/"])
    assert _refusal(_index, account=account, name="p20", prefixes=["/team-20/"])[0] == "LimitExceededException"
    assert _refusal(_index, account=account, name="everything")[0] == "LimitExceededException"
    assert len(account.logs.describe_account_policies(policyType="FIELD_INDEX_POLICY")["accountPolicies"]) == 20


@pytest.mark.parametrize(("selection", "document"), [
    ('LogGroupName NOT IN ["/a"]', DOCUMENT),
    ("LogGroupNamePrefix IN []", DOCUMENT),
    ('DataSourceName = "amazon_vpc" AND DataSourceType = "flow"', DOCUMENT),  # not modelled
    ('LogGroupNamePrefix IN ["/a"]', "{}"),
])
def test_i7_a_selection_or_document_aws_would_not_take_is_refused(account: LocalAccount, selection: str, document: str) -> None:
    assert _refusal(_index, account=account, name="p", document=document, selection=selection)[0] == "InvalidParameterException"
    assert account.logs.describe_account_policies(policyType="FIELD_INDEX_POLICY")["accountPolicies"] == []


def test_i8_a_single_prefix_selection_as_aws_cdk_writes_it_and_a_deleted_policy_is_not_found(account: LocalAccount) -> None:
    account.create_log_group(GROUP)
    _index(account, "lambda", selection='LogGroupNamePrefix = "/aws/lambda/"')

    assert _described(account, GROUP)[0]["policyName"] == "lambda"
    account.logs.delete_account_policy(policyName="lambda", policyType="FIELD_INDEX_POLICY")
    assert _described(account, GROUP) == []
    assert _refusal(account.logs.delete_account_policy, policyName="lambda", policyType="FIELD_INDEX_POLICY")[0] == "ResourceNotFoundException"


# --- E9: the CloudTrail records ---------------------------------------------------------------------------

@pytest.mark.parametrize("event_name", ["PutIndexPolicy", "DeleteIndexPolicy"])
@pytest.mark.parametrize("identifier", [GROUP, ARN])
def test_e9_index_policy_records_name_the_group_as_the_request_did(event_name: str, identifier: str) -> None:
    from governor.events import parse_log_group_call

    event = log_group_call_event(event_name, identifier, role_arn="arn:aws:iam::123456789012:role/terraform-apply")

    assert event["detail"]["eventName"] == event_name
    assert event["detail"]["requestParameters"]["logGroupIdentifier"] == identifier
    assert ("policyDocument" in event["detail"]["requestParameters"]) == (event_name == "PutIndexPolicy")
    call = parse_log_group_call(event, (event_name,), origin=("123456789012", "eu-west-1"))
    assert call.log_group_name == GROUP and call.principal
