"""Field indexes (#28's sixth control, one module: governor/controls/field_indexes.py): a policy put on a new group, a
policy someone else set widened (never narrowed), the account's policy carried over, a deletion by another principal
repaired, the quota held, the reconcile and the account-level form; through the one generic entry point (``govern``,
GOVERNOR_ASPECT field-indexes) and the CLI, against localaws's model of the calls."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from governor.handlers.create_log_group import govern
from localaws.account import LocalAccount
from localaws.events import create_log_group_event, log_group_call_event, sqs_batch
from tests.conftest import OWN_ROLES, call

PROD = "/aws/lambda/prod-orders"
DEV = "/aws/lambda/dev-orders"
OTHER_TOOL = "arn:aws:iam::123456789012:role/terraform-apply"
RULES = [{"name": "lambda queries", "match": {"namePrefixes": ["/aws/lambda/prod-"]}, "fieldIndexes": ["requestId", "orderId"]}]


@pytest.fixture
def indexed(account: LocalAccount, configure: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("GOVERNOR_ASPECT", "field-indexes")  # as the stack sets it on the control's function
    configure(rules=RULES)
    account.create_log_group(PROD)
    account.create_log_group(DEV)
    return PROD


def _policy(account: LocalAccount, name: str) -> dict[str, Any] | None:
    found = account.logs.describe_index_policies(logGroupIdentifiers=[name])["indexPolicies"]
    return {**found[0], "document": json.loads(found[0]["policyDocument"])} if found else None


def test_a_new_group_the_rule_matches_gets_the_policy_and_the_others_none(account: LocalAccount, indexed: str) -> None:
    invocation = call(govern, sqs_batch([create_log_group_event(PROD), create_log_group_event(DEV)]))

    assert invocation.result == {"batchItemFailures": []}
    assert account.calls["logs.DescribeIndexPolicies"] == 1  # read only for the group a rule sets it for
    assert _policy(account, PROD)["document"] == {"Fields": ["orderId", "requestId"]} and _policy(account, DEV) is None
    assert invocation.metrics()[("FieldIndexPoliciesSet", None)] == 1


def test_a_policy_someone_else_set_keeps_its_fields_and_facets_and_gains_the_rules(account: LocalAccount, indexed: str) -> None:
    theirs = {"Fields": ["sessionId"], "FieldsV2": {"status": {"type": "FACET"}}}
    account.logs.put_index_policy(logGroupIdentifier=PROD, policyDocument=json.dumps(theirs))

    widened = call(govern, create_log_group_event(PROD))

    assert (widened.result["action"], widened.result["reason"]) == ("put-index-policy", "field-indexes-narrower")
    assert _policy(account, PROD)["document"] == {"Fields": ["sessionId", "orderId", "requestId"], "FieldsV2": {"status": {"type": "FACET"}}}
    again = call(govern, create_log_group_event(PROD))
    assert (again.result["action"], again.result["reason"]) == ("leave", "field-indexes-compliant")


def test_the_accounts_policy_is_carried_over_where_it_lacks_a_field_and_left_to_work_where_it_has_them(account: LocalAccount, indexed: str) -> None:
    account.logs.put_account_policy(policyName="platform", policyType="FIELD_INDEX_POLICY", scope="ALL",
                                    policyDocument=json.dumps({"Fields": ["tenantId", "requestId"]}))

    carried = call(govern, create_log_group_event(PROD))

    # A group's own policy replaces the account's for the group (the page): tenantId must stay indexed.
    assert (carried.result["action"], carried.result["reason"]) == ("put-index-policy", "field-indexes-missing")
    assert _policy(account, PROD)["document"] == {"Fields": ["tenantId", "requestId", "orderId"]}  # theirs as written, ours added

    account.logs.delete_index_policy(logGroupIdentifier=PROD)
    account.logs.put_account_policy(policyName="platform", policyType="FIELD_INDEX_POLICY", scope="ALL",
                                    policyDocument=json.dumps({"Fields": ["tenantId", "requestId", "orderId"]}))
    left = call(govern, create_log_group_event(PROD))
    assert (left.result["action"], left.result["reason"]) == ("leave", "field-indexes-by-account-policy")
    assert _policy(account, PROD)["source"] == "ACCOUNT"


def test_a_policy_deleted_by_another_principal_is_put_back_and_our_own_call_wakes_nothing(account: LocalAccount, indexed: str) -> None:
    call(govern, create_log_group_event(PROD))
    account.logs.delete_index_policy(logGroupIdentifier=PROD)

    repaired = call(govern, log_group_call_event("DeleteIndexPolicy", PROD, role_arn=OTHER_TOOL))
    own = call(govern, log_group_call_event("PutIndexPolicy", PROD, role_arn=OWN_ROLES[0]))

    assert (repaired.result["action"], repaired.result["reason"]) == ("put-index-policy", "field-indexes-missing")
    assert repaired.metrics()[("DriftRepaired", None)] == 1
    assert own.result["status"] == "ignored" and own.result["reason"] == "own-call"
    assert account.calls["logs.PutIndexPolicy"] == 2  # the first put and the repair; our own call woke nothing
    assert _policy(account, PROD)["document"] == {"Fields": ["orderId", "requestId"]}


def test_past_twenty_fields_the_group_is_left_as_it_is_and_alarms(account: LocalAccount, indexed: str) -> None:
    theirs = {"Fields": [f"field{i}" for i in range(19)]}
    account.logs.put_index_policy(logGroupIdentifier=PROD, policyDocument=json.dumps(theirs))

    conflict = call(govern, create_log_group_event(PROD))

    assert (conflict.result["action"], conflict.result["reason"]) == ("conflict", "field-indexes-too-many")
    assert "21, past the 20" in conflict.result["detail"] and _policy(account, PROD)["document"] == theirs
    assert conflict.metrics()[("Conflicts", "field-indexes-too-many")] == 1


def test_exact_makes_the_groups_policy_the_rules_fields_alone(account: LocalAccount, configure: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOVERNOR_ASPECT", "field-indexes")
    configure(rules=[{"match": {}, "fieldIndexes": {"fields": ["requestId"], "mode": "exact"}}])
    account.create_log_group(PROD)
    account.logs.put_index_policy(logGroupIdentifier=PROD, policyDocument=json.dumps({"Fields": ["sessionId", "requestId"]}))

    replaced = call(govern, create_log_group_event(PROD))

    assert (replaced.result["action"], replaced.result["reason"]) == ("put-index-policy", "field-indexes-differs")
    assert _policy(account, PROD)["document"] == {"Fields": ["requestId"]}


def test_a_group_of_another_class_is_left_alone_without_a_call(account: LocalAccount, indexed: str) -> None:
    account.logs.create_log_group(logGroupName="/aws/lambda/prod-archive", logGroupClass="INFREQUENT_ACCESS")

    left = call(govern, create_log_group_event("/aws/lambda/prod-archive"))

    assert (left.result["action"], left.result["reason"]) == ("leave", "field-indexes-unsupported-class")
    assert account.calls["logs.DescribeIndexPolicies"] == 0 and account.calls["logs.PutIndexPolicy"] == 0


def test_a_policy_aws_refuses_is_a_conflict_not_a_retry(account: LocalAccount, indexed: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore.exceptions import ClientError

    def refuse(*_: Any, **__: Any) -> Any:
        raise ClientError({"Error": {"Code": "InvalidParameterException", "Message": "Invalid field name"}}, "PutIndexPolicy")
    from governor.handlers import create_log_group as handlers

    parts = handlers.control_parts(handlers.control_aspect({"GOVERNOR_ASPECT": "field-indexes"}))
    monkeypatch.setattr(parts.governor.logs.client, "put_index_policy", refuse)

    refused = call(govern, sqs_batch([create_log_group_event(PROD)]))

    assert refused.result == {"batchItemFailures": []}  # finished with a reason: asking again cannot help
    assert refused.metrics()[("Conflicts", "field-index-policy-refused")] == 1


def test_a_reconcile_indexes_what_events_missed_and_counts_the_control(account: LocalAccount, indexed: str) -> None:
    import time

    from tests.conftest import reconcile_runner

    run = reconcile_runner(wall=time.time() + 2 * 86400)("nightly-1")

    assert _policy(account, PROD)["document"] == {"Fields": ["orderId", "requestId"]} and _policy(account, DEV) is None
    assert run.result["summary"]["coverage"]["byControl"]["field-indexes"] == {"governed": 2, "compliant": 2, "compliantPercent": 100.0}


def test_the_generic_entry_refuses_a_function_without_its_aspect(account: LocalAccount, configure: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from governor.config import ConfigError
    from tests.conftest import call_failing

    monkeypatch.setenv("GOVERNOR_ASPECT", "subscription")  # not a control only rules set: the stack never sets this

    error, _ = call_failing(govern, create_log_group_event(PROD))
    assert isinstance(error, ConfigError) and "GOVERNOR_ASPECT" in str(error) and "field-indexes" in str(error)


def test_plan_explain_names_the_rule_behind_the_groups_field_indexes(account: LocalAccount, shipper_arn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    import cli.__main__ as cli

    monkeypatch.setattr(cli.boto3, "Session", lambda **_: boto3.DEFAULT_SESSION)
    account.create_log_group(PROD)
    out = io.StringIO()
    code = cli.main(["plan", "--context", str(Path(__file__).resolve().parents[2] / "cdk.json"), "--region", account.region,
                     "-c", f"destinationArn={shipper_arn}", "-c", f"rules={json.dumps(RULES)}", "--explain", PROD], stdout=out, stderr=io.StringIO())

    assert code == 0
    assert "fieldIndexes: rules[0] 'lambda queries'" in out.getvalue() and "put-index-policy" in out.getvalue()


# --- fieldIndexesVia account-policy: the account's FIELD_INDEX_POLICY policies --------------------------------------

@pytest.fixture
def native(account: LocalAccount, shipper_arn: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    import boto3

    import cli.__main__ as cli

    monkeypatch.setattr(cli.boto3, "Session", lambda **_: boto3.DEFAULT_SESSION)

    def run(mode: str, rules: list[dict[str, Any]], *args: str) -> tuple[int, str]:
        err = io.StringIO()
        code = cli.main([mode, "--context", str(Path(__file__).resolve().parents[2] / "cdk.json"), "--region", account.region, "--no-progress",
                         "--no-count", "--out-file", "/dev/null", "-c", f"destinationArn={shipper_arn}", "-c", "fieldIndexesVia=account-policy",
                         "-c", "excludeTags={}", "-c", f"rules={json.dumps(rules)}", *args], stderr=err)
        return code, err.getvalue()
    return run


def _account_policies(account: LocalAccount) -> dict[str, dict[str, Any]]:
    return {p["policyName"]: p for p in account.logs.describe_account_policies(policyType="FIELD_INDEX_POLICY")["accountPolicies"]}


def test_plan_says_apply_writes_the_accounts_policies_and_no_group_gets_its_own(account: LocalAccount, native: Any) -> None:
    account.create_log_group(PROD)
    rules = [{"match": {"namePrefixes": ["/aws/lambda/"]}, "fieldIndexes": ["requestId"]},
             {"match": {"namePrefixes": ["/ecs/"]}, "fieldIndexes": ["taskId"]}]

    code, planned = native("plan", rules, "--detailed-exitcode")
    assert code == 6 and planned.count("; to be written") == 2 and _account_policies(account) == {}

    code, _ = native("apply", rules)
    written = {p["selectionCriteria"]: p for p in _account_policies(account).values()}
    assert code == 0 and sorted(written) == ['LogGroupNamePrefix IN ["/aws/lambda/"]', 'LogGroupNamePrefix IN ["/ecs/"]']
    assert json.loads(written['LogGroupNamePrefix IN ["/aws/lambda/"]']["policyDocument"]) == {"Fields": ["requestId"]}
    assert all(p["policyName"].startswith("log-group-governor-field-indexes-") for p in written.values())
    assert account.calls["logs.PutIndexPolicy"] == 0  # the account's policies, not a group's
    assert _policy(account, PROD)["source"] == "ACCOUNT"

    code, again = native("plan", rules, "--detailed-exitcode")
    assert code == 0 and again.count("; in place") == 2

    code, shrunk = native("apply", rules[:1])
    ecs = written['LogGroupNamePrefix IN ["/ecs/"]']["policyName"]
    assert code == 0 and f"{ecs}: no longer configured; deleted" in shrunk
    assert sorted(_account_policies(account)) == [written['LogGroupNamePrefix IN ["/aws/lambda/"]']["policyName"]]


def test_another_tools_field_index_policy_is_not_replaced(account: LocalAccount, native: Any) -> None:
    account.logs.put_account_policy(policyName="platform", policyType="FIELD_INDEX_POLICY", scope="ALL",
                                    policyDocument=json.dumps({"Fields": ["tenantId"]}))

    code, refused = native("apply", [{"match": {}, "fieldIndexes": ["requestId"]}])

    assert code == 1 and "another FIELD_INDEX_POLICY ('platform')" in refused
    assert sorted(_account_policies(account)) == ["platform"]


@pytest.mark.parametrize("rules, says", [
    ([{"match": {"tags": {"team": "a"}}, "fieldIndexes": ["requestId"]}], "selects by name prefix only"),
    ([{"match": {"namePrefixes": ["/aws/"]}, "fieldIndexes": ["a"]}, {"match": {"namePrefixes": ["/aws/lambda/"]}, "fieldIndexes": ["b"]}], "overlap"),
    ([{"match": {"namePrefixes": ["/aws/"]}, "fieldIndexes": ["a"]}, {"match": {}, "fieldIndexes": ["b"]}], "no prefix policies beside it"),
    ([{"match": {}, "fieldIndexes": {"fields": ["a"], "mode": "exact"}}], "mode exact needs a policy per group"),
    ([{"match": {}, "fieldIndexes": ["a"] * 2}], "listed twice"),
])
def test_what_the_accounts_policies_cannot_say_is_refused_at_synth(rules: list[dict[str, Any]], says: str) -> None:
    from governor.config import ConfigError, parse_policy_config

    with pytest.raises(ConfigError, match=says):
        parse_policy_config({"destinationArn": "arn:aws:lambda:eu-west-1:123456789012:function:x", "fieldIndexesVia": "account-policy",
                             "rules": rules})


def test_the_accounts_facets_stay_facets_when_carried_over(account: LocalAccount, indexed: str) -> None:
    """Review of #28: a group's own policy replaces the account's, facets included (the model): minimum keeps their types."""
    account.logs.put_account_policy(policyName="platform", policyType="FIELD_INDEX_POLICY", scope="ALL",
                                    policyDocument=json.dumps({"Fields": ["tenantId"], "FieldsV2": {"status": {"type": "FACET"}}}))

    call(govern, create_log_group_event(PROD))

    assert _policy(account, PROD)["document"] == {"Fields": ["tenantId", "orderId", "requestId"], "FieldsV2": {"status": {"type": "FACET"}}}


@pytest.mark.parametrize("document", ['{"Fields":"sessionId"}', "not json", '{"Fields":[1,2]}'])
def test_a_group_policy_that_cannot_be_read_is_a_conflict_under_minimum_and_replaced_under_exact(document: str) -> None:
    """Review of #28: minimum replaces nothing it cannot read (a string Fields was split into letters before)."""
    from governor.config import parse_policy_config
    from governor.controls.field_indexes import IndexPolicy
    from governor.policy import KnownFacts, Policy

    facts = KnownFacts(PROD, facts={"fieldIndexes": IndexPolicy(document, "LOG_GROUP")})
    config = {"destinationArn": "arn:aws:lambda:eu-west-1:123456789012:function:x"}
    minimum = Policy(parse_policy_config({**config, "rules": RULES})).decide(facts, "fieldIndexes")
    exact = Policy(parse_policy_config({**config, "rules": [{**RULES[0], "fieldIndexes": {"fields": ["requestId"], "mode": "exact"}}]}))

    assert (minimum.action.value, minimum.reason.value) == ("conflict", "field-index-policy-unreadable")
    replaced = exact.decide(facts, "fieldIndexes")
    assert (replaced.action.value, json.loads(replaced.payload)) == ("put-index-policy", {"Fields": ["requestId"]})


@pytest.mark.parametrize("before, after", [
    ([{"match": {"namePrefixes": ["/a/"]}, "fieldIndexes": ["x"]}, {"match": {"namePrefixes": ["/b/"]}, "fieldIndexes": ["y"]}],
     [{"match": {"namePrefixes": ["/b/"]}, "fieldIndexes": ["y"]}]),
    ([{"match": {}, "fieldIndexes": ["x"]}], [{"match": {"namePrefixes": ["/b/"]}, "fieldIndexes": ["y"]}]),
    ([{"match": {"namePrefixes": ["/b/"]}, "fieldIndexes": ["y"]}], [{"match": {}, "fieldIndexes": ["x"]}]),
])
def test_editing_the_rules_then_apply_leaves_the_account_with_the_new_policies(account: LocalAccount, native: Any, before: list, after: list) -> None:
    """Review of #28: apply deletes what is no longer configured before it writes (AWS refuses an overlap with a policy still
    there), and a policy is named by what it selects, so removing one rule does not move another onto its name."""
    assert native("apply", before)[0] == 0

    code, applied = native("apply", after)

    assert code == 0, applied
    expected = {json.loads(p["policyDocument"])["Fields"][0]: p.get("selectionCriteria") for p in _account_policies(account).values()}
    assert expected == {r["fieldIndexes"][0]: (f'LogGroupNamePrefix IN ["{r["match"]["namePrefixes"][0]}"]' if r["match"] else None) for r in after}
    assert native("plan", after, "--detailed-exitcode")[0] == 0


def test_a_refusal_says_what_was_done_before_it_and_nothing_it_did_not_do(account: LocalAccount, native: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Review of #28: each line is printed once its call is made; a refusal names what was done before it."""
    import boto3
    from botocore.exceptions import ClientError

    assert native("apply", [{"match": {"namePrefixes": ["/a/"]}, "fieldIndexes": ["x"]}])[0] == 0
    real = boto3.DEFAULT_SESSION.client

    def refusing(*args: Any, **kwargs: Any) -> Any:
        client = real(*args, **kwargs)
        if args and args[0] == "logs":
            def put(**_: Any) -> Any:
                raise ClientError({"Error": {"Code": "LimitExceededException", "Message": "no"}}, "PutAccountPolicy")
            client.put_account_policy = put
        return client
    monkeypatch.setattr(boto3.DEFAULT_SESSION, "client", refusing)

    code, said = native("apply", [{"match": {"namePrefixes": ["/b/"]}, "fieldIndexes": ["y"]}])

    assert code == 1 and "no longer configured; deleted" in said and "; written" not in said and "AWS refused it" in said


def test_the_same_prefix_in_two_rules_is_refused_at_synth() -> None:
    from governor.config import ConfigError, parse_policy_config

    with pytest.raises(ConfigError, match="overlap"):
        parse_policy_config({"destinationArn": "arn:aws:lambda:eu-west-1:123456789012:function:x", "fieldIndexesVia": "account-policy",
                             "rules": [{"match": {"namePrefixes": ["/aws/"]}, "fieldIndexes": ["a"]},
                                       {"match": {"namePrefixes": ["/aws/"]}, "fieldIndexes": ["b"]}]})


def test_explain_under_the_account_form_says_the_accounts_policies_decide(account: LocalAccount) -> None:
    from governor.config import parse_policy_config
    from governor.policy import KnownFacts, Policy

    policy = Policy(parse_policy_config({"destinationArn": "arn:aws:lambda:eu-west-1:123456789012:function:x",
                                         "fieldIndexesVia": "account-policy", "rules": [{"match": {}, "fieldIndexes": ["requestId"]}]}))
    decided = policy.decide(KnownFacts(PROD), "fieldIndexes")

    assert (decided.action.value, decided.reason.value) == ("leave", "field-indexes-by-account-policy")
    assert "fieldIndexesVia account-policy" in decided.detail
