"""The configuration's building blocks that the policy keys and the rules share (governor.config.policy,
governor.rules): destinations, retention days and modes, log group classes, a name pattern's cost. Below both, so
neither imports the other's module to read them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Any

from shared.config import ConfigError

#: The values PutRetentionPolicy accepts, in days.
VALID_RETENTION_DAYS: tuple[int, ...] = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
)


class RetentionMode(str, Enum):
    """How a group's retention is judged against the configured one."""

    #: Set where none, raise where shorter, keep a longer one (a team may keep more).
    MINIMUM = "minimum"
    #: Exactly the configured value: raise or shorten.
    EXACT = "exact"
    #: Between ``retentionMinDays`` and ``retentionMaxDays``: raise below, shorten above, leave between.
    CLAMP = "clamp"


class DestinationKind(str, Enum):
    LAMBDA = "lambda"
    KINESIS = "kinesis"
    FIREHOSE = "firehose"
    LOGS_DESTINATION = "logs-destination"


_ARN = re.compile(
    r"^arn:(?P<partition>aws|aws-cn|aws-us-gov|aws-iso(?:-[a-z])?):(?P<service>[a-z]+):"
    r"(?P<region>[a-z]{2}(?:-[a-z]+)+-\d):(?P<account>\d{12}):(?P<resource>.+)$"
)
_RESOURCE_BY_SERVICE = {
    "lambda": (DestinationKind.LAMBDA, re.compile(r"^function:(?P<name>[A-Za-z0-9_-]{1,64})(?::[A-Za-z0-9$_-]+)?$")),
    "kinesis": (DestinationKind.KINESIS, re.compile(r"^stream/(?P<name>[A-Za-z0-9_.-]{1,128})$")),
    "firehose": (DestinationKind.FIREHOSE, re.compile(r"^deliverystream/(?P<name>[A-Za-z0-9_.-]{1,64})$")),
    "logs": (DestinationKind.LOGS_DESTINATION, re.compile(r"^destination:(?P<name>[^:*]{1,512})$")),
}
_ROLE_ARN = re.compile(r"^arn:(aws|aws-cn|aws-us-gov|aws-iso(?:-[a-z])?):iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
_DESTINATION_FORMS = (
    "arn:<partition>:lambda:<region>:<account>:function:<name>, "
    "arn:<partition>:kinesis:<region>:<account>:stream/<name>, "
    "arn:<partition>:firehose:<region>:<account>:deliverystream/<name> or "
    "arn:<partition>:logs:<region>:<account>:destination:<name>"
)


@dataclass(frozen=True)
class Destination:
    """Where subscribed log groups ship to."""

    arn: str
    kind: DestinationKind
    name: str
    account: str
    region: str
    partition: str
    role_arn: str | None = None

    @property
    def default_log_group(self) -> str | None:
        """The log group Lambda writes the destination function's own logs to unless LoggingConfig says otherwise."""
        return f"/aws/lambda/{self.name}" if self.kind is DestinationKind.LAMBDA else None


def parse_destination(arn: Any, role_arn: Any, *, key: str = "destinationArn", role_key: str = "destinationRoleArn") -> Destination:
    if not isinstance(arn, str) or not arn:
        raise ConfigError(f"{key}: expected the ARN of the log destination, one of {_DESTINATION_FORMS}; got {arn!r}")
    match = _ARN.match(arn)
    known = _RESOURCE_BY_SERVICE.get(match["service"]) if match else None
    resource = known[1].match(match["resource"]) if match and known else None
    if not match or not known or not resource:
        raise ConfigError(f"{key}: {arn!r} is not a supported destination; use {_DESTINATION_FORMS}")
    kind = known[0]
    role = role_arn or None
    if role is not None and (not isinstance(role, str) or not _ROLE_ARN.match(role)):
        raise ConfigError(f"{role_key}: expected an IAM role ARN (arn:<partition>:iam::<account>:role/<name>); got {role_arn!r}")
    if kind in (DestinationKind.KINESIS, DestinationKind.FIREHOSE) and role is None:
        raise ConfigError(
            f"{role_key}: a {kind.value} destination needs the ARN of a role that CloudWatch Logs "
            f"(logs.amazonaws.com) may assume to write to {arn}"
        )
    if kind is DestinationKind.LAMBDA and role is not None:
        raise ConfigError(f"{role_key}: a Lambda destination takes no role (CloudWatch Logs invokes it through its resource policy); "
                          f"remove it for {arn}")
    # A CloudWatch Logs destination whose access policy admits an organization (aws:PrincipalOrgID) needs
    # the sender's role here (CloudWatch Logs guide, "Step 2: (Only if using an organization) Create an IAM
    # role"); one whose policy lists accounts needs none, so the role is optional for that kind.
    return Destination(
        arn=arn, kind=kind, name=resource["name"], account=match["account"], region=match["region"],
        partition=match["partition"], role_arn=role,
    )


_DAYS = ", ".join(map(str, VALID_RETENTION_DAYS))
#: What a rule's selector and retention accept (governor.rules parses them; the schema below says the same).
RULE_CLASSES = ("STANDARD", "INFREQUENT_ACCESS", "ESSENTIALS", "DELIVERY")
RULE_RETENTION_MODES = (RetentionMode.MINIMUM.value, RetentionMode.EXACT.value)


def retention_days(value: Any, key: str, *, allow_none: bool) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or value not in VALID_RETENTION_DAYS:
        valid = ", ".join(map(str, VALID_RETENTION_DAYS))
        never = " or null (leave retention alone)" if allow_none else ""
        raise ConfigError(f"{key}: {value!r} is not a retention CloudWatch Logs accepts; valid values (days): {valid}{never}")
    return int(value)


#: A log group's name has at most 512 characters (the API model's LogGroupName), so no quantifier repeats more often.
_MAX_NAME_LENGTH = 512
#: The most work a name pattern may give a backtracking matcher (Python's re) at one position of a name: the ways to split
#: it (two unbounded quantifiers one after another: 513 x 513, each takes 0 to 512 characters) times the characters each way
#: then matches one by one (a fixed count ``{n}`` costs n steps on every way, not one). Measured on 512-character names: two
#: unbounded quantifiers take at most a third of a second (``\w+\d+$``); three take seconds (``.*-.*-.*x``: 3 s); two
#: followed by ``\w{100}`` 3.9 s (review of #26); a quantifier inside a quantified group, longer than any timeout.
MAX_PATTERN_BACKTRACKING = (_MAX_NAME_LENGTH + 1) ** 2


class _Backtracks(Exception):
    pass


def refuse_backtracking(pattern: str, key: str) -> None:
    """Refuse a name pattern (``excludePatterns``, a rule's ``match.namePatterns``) that Python's backtracking matcher can
    take longer than the function's timeout to try on one name (every group is matched, on every path): a quantifier or an
    alternation inside a quantified group (``(a+)+$``, ``(a|aa)+``: exponential), a backreference or a lookaround, or more
    choices one after another than two unbounded quantifiers make. Refused at synth, naming ``key``; never timed."""
    from re import _constants as sre, _parser as sre_parse  # the parser re.compile uses (Python 3.11+)

    repeats = {sre.MAX_REPEAT, sre.MIN_REPEAT, getattr(sre, "POSSESSIVE_REPEAT", sre.MAX_REPEAT)}

    def choices(items: Any, quantified: bool) -> int:
        found = 1
        for op, av in items:
            if op in (sre.GROUPREF, sre.GROUPREF_EXISTS):
                raise _Backtracks("a backreference (\\1, (?P=name), (?(1)...)) makes matching exponential")
            if op in (sre.ASSERT, sre.ASSERT_NOT):
                raise _Backtracks("a lookaround ((?=, (?!, (?<=, (?<!) is not offered")
            if op is sre.SUBPATTERN:
                found *= choices(av[-1], quantified)
            elif op is getattr(sre, "ATOMIC_GROUP", None):
                found *= choices(av, quantified)
            elif op is sre.BRANCH:
                if quantified:
                    raise _Backtracks("an alternation inside a quantified group (as in (a|aa)+) makes matching exponential")
                found *= sum(choices(branch, False) for branch in av[1])
            elif op in repeats:
                low, high, body = av
                if quantified and low != high:
                    raise _Backtracks("a quantifier inside a quantified group (as in (a+)+) makes matching exponential")
                ways = min(high, _MAX_NAME_LENGTH) - min(low, _MAX_NAME_LENGTH) + 1
                steps = max(1, min(low, _MAX_NAME_LENGTH))  # the characters matched one by one before any choice remains
                found *= ways * steps * choices(body, quantified or high > 1)
        return found

    try:
        tried = choices(sre_parse.parse(pattern), False)
        if tried > MAX_PATTERN_BACKTRACKING:
            raise _Backtracks(f"more than two unbounded quantifiers (or alternatives, bounded or fixed counts of the like) one after "
                              f"another give the matcher {tried:,} steps at each position of a name, more than "
                              f"{MAX_PATTERN_BACKTRACKING:,}")
    except _Backtracks as why:
        raise ConfigError(f"{key}: {pattern!r} can take longer than the function's timeout to match one 512-character name: {why}; "
                          "write it with fewer quantifiers (a prefix, [^/]+ between the slashes, one .*), or use namePrefixes") from None


class Via(str, Enum):
    """Where an aspect is enforced: a write per log group, or a native account-level policy (issue #9)."""

    PER_GROUP = "per-group"
    ACCOUNT_POLICY = "account-policy"
