"""The fleet table (central account): the latest report of each member, and its alarms' last states."""

from __future__ import annotations

import json
from typing import Any

import boto3

from shared.clients import client_config

from .rollup import ROW_TTL_S, AlarmState, MemberReport

SILENT_SET_KEY = "check#silent"


class FleetTable:
    def __init__(self, table_name: str, client: Any = None) -> None:
        self.table_name = table_name
        self.client = client or boto3.client("dynamodb", config=client_config())

    def put_report(self, report: MemberReport) -> None:
        """The member's latest report replaces the previous one (a reconcile publishes one a day)."""
        self.client.put_item(TableName=self.table_name, Item={
            "pk": {"S": f"member#{report.account}#{report.region}"}, "account": {"S": report.account}, "region": {"S": report.region},
            "receivedAt": {"N": str(report.received_at)}, "coverage": {"S": json.dumps(report.coverage, sort_keys=True)},
            "expiresAt": {"N": str(int(report.received_at + ROW_TTL_S))}})

    def put_alarm(self, alarm: AlarmState) -> None:
        self.client.put_item(TableName=self.table_name, Item={
            "pk": {"S": f"alarm#{alarm.account}#{alarm.region}#{alarm.name}"}, "account": {"S": alarm.account}, "region": {"S": alarm.region},
            "name": {"S": alarm.name}, "state": {"S": alarm.state}, "at": {"N": str(alarm.at)},
            "expiresAt": {"N": str(int(alarm.at + ROW_TTL_S))}})

    def forget(self, account: str, region: str) -> int:
        """Remove a member's rows (it left the organization, or its row was written by mistake). Answers how many."""
        reports, alarms = self.contents()
        keys = [f"member#{account}#{region}" for r in reports if (r.account, r.region) == (account, region)]
        keys += [f"alarm#{a.account}#{a.region}#{a.name}" for a in alarms if (a.account, a.region) == (account, region)]
        for key in keys:
            self.client.delete_item(TableName=self.table_name, Key={"pk": {"S": key}})
        return len(keys)

    def swap_silent(self, silent: list[str]) -> set[str]:
        """Record the members silent at this check; answer those silent at the previous one."""
        answer = self.client.put_item(TableName=self.table_name, Item={"pk": {"S": SILENT_SET_KEY}, "members": {"S": json.dumps(sorted(silent))}},
                                      ReturnValues="ALL_OLD")
        return set(json.loads(answer.get("Attributes", {}).get("members", {}).get("S", "[]")))

    def contents(self) -> tuple[list[MemberReport], list[AlarmState]]:
        reports, alarms, request = [], [], {"TableName": self.table_name}
        while True:
            answer = self.client.scan(**request)
            for item in answer.get("Items", []):
                if item["pk"]["S"].startswith("member#"):
                    reports.append(MemberReport(item["account"]["S"], item["region"]["S"], float(item["receivedAt"]["N"]),
                                                json.loads(item["coverage"]["S"])))
                elif item["pk"]["S"].startswith("alarm#"):
                    alarms.append(AlarmState(item["account"]["S"], item["region"]["S"], item["name"]["S"], item["state"]["S"], float(item["at"]["N"])))
            if "LastEvaluatedKey" not in answer:
                return reports, alarms
            request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
