"""The fleet's status from the latest report of each member (pure: no boto3, no events).

A member is an account and region running the governor. Its reconcile publishes its coverage when it
finishes (daily by default); a member whose last report is older than ``stale_after_s`` is flagged
silent: its reconcile stopped, it was removed, or it cannot reach the central bus.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: Two missed daily reconciles and a half: silent.
DEFAULT_STALE_AFTER_S = 60 * 3600
#: A member's rows expire this long after its last word (DynamoDB TTL, and ignored once past it): a
#: member that left, or a row written once by mistake, does not pin the silent alarm for ever.
ROW_TTL_S = 4 * DEFAULT_STALE_AFTER_S
COVERAGE_DETAIL_TYPE = "log-group-governor coverage"
ALARM_DETAIL_TYPE = "CloudWatch Alarm State Change"
SOURCE = "log-group-governor"
#: The recorder's environment, and the metrics its hourly check publishes (shared with the stack).
ENV_FLEET_TABLE = "GOVERNOR_FLEET_TABLE"
ENV_STALE_AFTER_HOURS = "GOVERNOR_FLEET_STALE_AFTER_HOURS"
SILENT_METRIC = "FleetSilentMembers"
ALARMING_METRIC = "FleetMembersAlarming"
#: Members whose latest report is recent: the archive expects their deliveries while there are any.
REPORTING_METRIC = "FleetReportingMembers"
#: Members silent now that were not at the previous check: alarms each time the set grows.
NEWLY_SILENT_METRIC = "FleetNewlySilentMembers"
#: A member's alarm went into ALARM (counted as its state change arrives): for members without a topic of their own
#: (governor:alarmTopic false), the fleet view's alarm on it is the one that notifies, at once and again for each new one.
MEMBER_ALARM_RAISED_METRIC = "FleetMemberAlarmRaised"


@dataclass(frozen=True)
class MemberReport:
    account: str
    region: str
    #: When the central account received it (epoch seconds).
    received_at: float
    coverage: Mapping[str, Any]


@dataclass(frozen=True)
class AlarmState:
    account: str
    region: str
    name: str
    state: str
    at: float


@dataclass
class MemberStatus:
    account: str
    region: str
    report: MemberReport | None = None
    alarming: list[str] = field(default_factory=list)
    silent: bool = False

    def as_dict(self) -> dict[str, Any]:
        coverage = self.report.coverage if self.report else {}
        return {
            "account": self.account, "region": self.region, "silent": self.silent, "alarming": sorted(self.alarming),
            "logGroups": coverage.get("logGroups"), "governed": coverage.get("governed"),
            "compliantPercent": coverage.get("compliantPercent"), "conflicts": sum((coverage.get("conflicts") or {}).values()),
            "optOuts": (coverage.get("excluded") or {}).get("excluded-tag", 0), "errors": coverage.get("errors"),
            "lastRun": coverage.get("finishedAt"), "runId": coverage.get("runId"),
            # Per control (#21): each control's compliance, where the member's run reported it.
            "byControl": {c: v.get("compliantPercent") for c, v in (coverage.get("byControl") or {}).items()},
            "receivedAt": self.report.received_at if self.report else None,
        }


def statuses(reports: Iterable[MemberReport], alarms: Iterable[AlarmState], *, now: float,
             stale_after_s: float = DEFAULT_STALE_AFTER_S, ttl_s: float = ROW_TTL_S) -> list[MemberStatus]:
    """One status per member seen (by a report or an alarm) within ``ttl_s``, sorted by account then region."""
    members: dict[tuple[str, str], MemberStatus] = {}
    reports = [r for r in reports if now - r.received_at <= ttl_s]
    alarms = [a for a in alarms if now - a.at <= ttl_s]
    for report in reports:
        member = members.setdefault((report.account, report.region), MemberStatus(report.account, report.region))
        if member.report is None or report.received_at > member.report.received_at:
            member.report = report
    for alarm in alarms:
        member = members.setdefault((alarm.account, alarm.region), MemberStatus(alarm.account, alarm.region))
        if alarm.state == "ALARM":
            member.alarming.append(alarm.name)
    for member in members.values():
        member.silent = member.report is None or now - member.report.received_at > stale_after_s
    return [members[k] for k in sorted(members)]


def table(rows: Iterable[MemberStatus], *, now: float) -> str:
    """What `python -m cli fleet-status` prints."""
    header = f"{'account':<14}{'region':<16}{'groups':>9}{'governed':>10}{'compliant':>11}{'conflicts':>11}{'opt-outs':>10}{'errors':>8}  last report   status"
    lines = [header, "-" * len(header)]
    silent = members = 0
    for member in rows:
        members += 1
        row = member.as_dict()
        age = f"{(now - row['receivedAt']) / 3600:.0f} h ago" if row["receivedAt"] is not None else "never"
        status = "SILENT" if member.silent else "ok"
        silent += member.silent
        if member.alarming:
            status += " ALARM: " + ", ".join(sorted(member.alarming))
        compliant = f"{row['compliantPercent']:.1f}%" if row["compliantPercent"] is not None else "-"
        lines.append(f"{row['account']:<14}{row['region']:<16}{_n(row['logGroups']):>9}{_n(row['governed']):>10}{compliant:>11}"
                     f"{_n(row['conflicts']):>11}{_n(row['optOuts']):>10}{_n(row['errors']):>8}  {age:<13} {status}")
        if row["byControl"]:
            lines.append(" " * 30 + "per control: " + ", ".join(f"{c} {p:.1f}%" for c, p in sorted(row["byControl"].items()) if p is not None))
    lines.append(f"{members} members, {silent} silent")
    return "\n".join(lines)


def _n(value: Any) -> str:
    return "-" if value is None else f"{value:,}"
