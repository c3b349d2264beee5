"""The member rollout (#10): the governor, deployed to an organization's OUs and regions with
service-managed CloudFormation StackSets, each member pointed at its region's central archive.

- One StackSet per region (``LogGroupGovernor-<region>``): a member's ``destinationArn`` names its
  region's destination (a destination takes only its own region's groups), so each region's template
  carries its own, as a literal; no parameters to get wrong.
- Service-managed permissions with automatic deployment: an account that joins a targeted OU gets the
  governor; one that leaves keeps nothing (``autoDeployRetainStacks: false``).
- Waves: ``rollout:waves`` lists OU lists, and ``rollout:wave`` (default 0) says how many are targeted
  so far: the first deploy reaches the first wave only. Failure tolerance and concurrency come from
  context, by default no failure tolerated and 10% of accounts at a time.
- The Lambda code. StackSets deploy a template, not CDK's assets: each target account and region must
  be able to read the code. The ``cdk-stacksets`` construct (cdklabs) copies every file asset of the
  member template into a bucket per region named ``<rollout:assetBucketPrefix>-<region>``, which
  ``AssetStagingStack`` creates in the administrator account with a policy that lets only the
  organization's accounts read it (``aws:PrincipalOrgID``). Chosen over a hand-made staging step
  because it also carries the assets CDK adds itself (the custom resources' provider code) and is
  maintained with CDK's asset format.
- No SAM transform anywhere in the member template (StackSets refuse them); a test checks it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_cdk import Duration, RemovalPolicy, Stack, Token
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from cdk_stacksets import (
    Capability,
    DeploymentType,
    OperationPreferences,
    RegionConcurrencyType,
    StackSet,
    StackSetStack,
    StackSetTarget,
    StackSetTemplate,
)
from constructs import Construct

from shared.config import ConfigError, Key, Keys, unknown_keys_error

from .archive import ARCHIVE_LOG_GROUP_PREFIX, ARCHIVE_LOG_GROUPS, DEFAULT_DESTINATION_NAME
from .fleet import fleet_bus_arn
from .functions import acknowledge
from .governor_stack import GovernorComposition
from .settings import DeploymentSettings

ROLLOUT_PREFIX = "rollout:"
#: The organization app's rollout keys (org_app.py, from the StackSet administrator).
ROLLOUT = Keys(
    ROLLOUT_PREFIX, "rollout: the StackSet rollout (org_app.py, StackSet administrator)",
    Key("centralAccount", str, "", "The logging account that holds the archive (12 digits).", example="111111111111",
        schema={"pattern": "^\\d{12}$"}, required=True),
    Key("regions", list, [], "The regions to govern, each with the archive deployed.", example=["eu-west-1"],
        schema={"items": {"type": "string"}, "minItems": 1}, required=True),
    Key("waves", list, [], "A list of waves, each a list of OU ids (ou-xxxx-xxxxxxxx, or the root r-xxxx), the first wave "
        "first.", example=[["ou-exam-11111111"], ["ou-exam-22222222"]], schema={"items": {"type": "array", "minItems": 1}, "minItems": 1},
        required=True),
    Key("wave", int, 0, "The last wave rolled out, an index into waves: 0 rolls out the first wave, 1 the first two, and so on; "
        "raise it by one per deploy to roll out wave by wave.", example=1,
        schema={"minimum": 0}),
    Key("destinationName", str, DEFAULT_DESTINATION_NAME, "The archive's destinationName (archive:destinationName).",
        example="central-log-archive"),
    Key("assetBucketPrefix", str, "log-group-governor-assets", "The code's staging buckets' name prefix (a region is appended; "
        "3 to 41 lowercase letters, digits and '-').", example="acme-lgg-assets", schema={"pattern": "^[a-z0-9-]{3,41}$"}),
    Key("failureTolerancePercentage", int, 0, "StackSets: the share of accounts per region that may fail before the region stops "
        "(0 to 100).", example=10, schema={"minimum": 0, "maximum": 100}),
    Key("maxConcurrentPercentage", int, 10, "StackSets: the share of accounts deployed at once per region (1 to 100).", example=25,
        schema={"minimum": 1, "maximum": 100}),
    Key("regionConcurrency", str, "SEQUENTIAL", "StackSets: SEQUENTIAL (a region at a time) or PARALLEL.", example="PARALLEL",
        schema={"enum": ["SEQUENTIAL", "PARALLEL"]}),
    Key("callAs", str, "DELEGATED_ADMIN", "DELEGATED_ADMIN: deploy from a delegated StackSet administrator (as AWS advises); SELF: "
        "from the management account.", example="SELF", schema={"enum": ["DELEGATED_ADMIN", "SELF"]}),
)
ROLLOUT_KEYS = ROLLOUT.names
_OU = re.compile(r"^(ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}|r-[a-z0-9]{4,32})$")
_ACCOUNT = re.compile(r"^\d{12}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_BUCKET_PREFIX = re.compile(r"^[a-z0-9][a-z0-9-]{2,40}$")


@dataclass(frozen=True)
class RolloutSettings:
    central_account: str
    regions: tuple[str, ...]
    waves: tuple[tuple[str, ...], ...]
    wave: int = 0
    destination_name: str = DEFAULT_DESTINATION_NAME
    asset_bucket_prefix: str = "log-group-governor-assets"
    failure_tolerance_percentage: int = 0
    max_concurrent_percentage: int = 10
    parallel_regions: bool = False
    #: Deployed from a delegated StackSet administrator (the default, as AWS advises), or from the management account.
    delegated_admin: bool = True

    @property
    def organizational_units(self) -> tuple[str, ...]:
        """The OUs targeted so far: every wave up to ``wave``."""
        return tuple(ou for wave in self.waves[: self.wave + 1] for ou in wave)

    def destination_arn(self, region: str, partition: str = "aws") -> str:
        return f"arn:{partition}:logs:{region}:{self.central_account}:destination:{self.destination_name}"

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> RolloutSettings | None:
        """None when the context has no ``rollout:`` key (the organization app deploys the archive alone)."""
        raw = {k[len(ROLLOUT_PREFIX):]: v for k, v in context.items() if k.startswith(ROLLOUT_PREFIX)}
        if not raw:
            return None
        unknown = sorted(set(raw) - set(ROLLOUT_KEYS))
        if unknown:
            raise unknown_keys_error(ROLLOUT_PREFIX, unknown, ROLLOUT_KEYS)
        central = ROLLOUT.read(raw, "centralAccount")
        if not _ACCOUNT.match(central):
            raise ConfigError(f"rollout:centralAccount: the logging account that holds the archive (12 digits); got {central!r}")
        regions = ROLLOUT.read(raw, "regions")
        if not regions or any(not isinstance(r, str) or not _REGION.match(r) for r in regions):
            raise ConfigError(f"rollout:regions: the regions to govern, each with the archive deployed (e.g. [\"eu-west-1\"]); got {regions!r}")
        waves = ROLLOUT.read(raw, "waves")
        if not waves or any(not isinstance(w, list) or not w or any(not isinstance(o, str) or not _OU.match(o) for o in w) for w in waves):
            raise ConfigError("rollout:waves: a list of waves, each a list of OU ids (ou-xxxx-xxxxxxxx, or the root r-xxxx), "
                              f"the first wave first; got {waves!r}")
        wave = ROLLOUT.read(raw, "wave")
        if not 0 <= wave < len(waves):
            raise ConfigError(f"rollout:wave: the last wave rolled out, an index into rollout:waves (0: the first wave; 0 to {len(waves) - 1}); got {wave}")
        prefix = ROLLOUT.read(raw, "assetBucketPrefix")
        if not _BUCKET_PREFIX.match(prefix):
            raise ConfigError(f"rollout:assetBucketPrefix: 3 to 41 lowercase letters, digits and '-' (a region is appended); got {prefix!r}")
        tolerance = ROLLOUT.read(raw, "failureTolerancePercentage")
        concurrency = ROLLOUT.read(raw, "maxConcurrentPercentage")
        if not 0 <= tolerance <= 100 or not 1 <= concurrency <= 100:
            raise ConfigError(f"rollout:failureTolerancePercentage (0-100, default 0) / maxConcurrentPercentage (1-100, default 10); "
                              f"got {tolerance} and {concurrency}")
        parallel = ROLLOUT.read(raw, "regionConcurrency")
        if parallel not in ("SEQUENTIAL", "PARALLEL"):
            raise ConfigError(f"rollout:regionConcurrency: SEQUENTIAL (default) or PARALLEL; got {parallel!r}")
        call_as = ROLLOUT.read(raw, "callAs")
        if call_as not in ("DELEGATED_ADMIN", "SELF"):
            raise ConfigError(f"rollout:callAs: DELEGATED_ADMIN (default: deploy from a delegated StackSet administrator) or SELF "
                              f"(from the management account); got {call_as!r}")
        return cls(central_account=central, regions=tuple(regions), waves=tuple(tuple(w) for w in waves), wave=wave,
                   delegated_admin=call_as == "DELEGATED_ADMIN",
                   destination_name=ROLLOUT.read(raw, "destinationName"), asset_bucket_prefix=prefix,
                   failure_tolerance_percentage=tolerance, max_concurrent_percentage=concurrency, parallel_regions=parallel == "PARALLEL")


def _guard(context: Mapping[str, Any]) -> list[str]:
    names = [*_as_list(context.get("governor:shippingPathLogGroups")), *ARCHIVE_LOG_GROUPS]
    if str(context.get("governor:subscriptionMode", "per-group")) != "account-policy":
        names.append(ARCHIVE_LOG_GROUP_PREFIX + "*")
    return list(dict.fromkeys(names))


def _as_list(value: Any) -> list[str]:
    """A context list, as cdk.json holds it or as `-c` passes it (JSON in a string)."""
    if isinstance(value, str):
        import json
        value = json.loads(value) if value else []
    return list(value or [])


class AssetStagingStack(Stack):
    """The bucket a region's members read the governor's code from (in the StackSet administrator's
    account): encrypted, private, readable by the organization's accounts only."""

    def __init__(self, scope: Construct, construct_id: str, *, bucket_name: str, organization_id: str | None, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.bucket = s3.Bucket(self, "Assets", bucket_name=bucket_name, encryption=s3.BucketEncryption.S3_MANAGED,
                                block_public_access=s3.BlockPublicAccess.BLOCK_ALL, enforce_ssl=True, versioned=True,
                                removal_policy=RemovalPolicy.RETAIN,
                                lifecycle_rules=[s3.LifecycleRule(noncurrent_version_expiration=Duration.days(90))])
        if organization_id:
            self.bucket.add_to_resource_policy(iam.PolicyStatement(
                actions=["s3:GetObject"], principals=[iam.AnyPrincipal()], resources=[self.bucket.arn_for_objects("*")],
                conditions={"StringEquals": {"aws:PrincipalOrgID": organization_id}}))
        acknowledge(self.bucket, "AwsSolutions::AwsSolutions-S1",
                    "a staging bucket of code, read by CloudFormation in the members' accounts; CloudTrail data events cover reads if needed")


class MemberGovernorStack(GovernorComposition, StackSetStack):
    """The governor as a StackSet template."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: DeploymentSettings, asset_bucket: s3.IBucket,
                 asset_bucket_prefix: str) -> None:
        StackSetStack.__init__(self, scope, construct_id, asset_buckets=[asset_bucket], asset_bucket_prefix=asset_bucket_prefix)
        self._compose(settings)


class RolloutStack(Stack):
    """One StackSet per region, each rolling the member governor out to the targeted OUs."""

    def __init__(self, scope: Construct, construct_id: str, *, rollout: RolloutSettings, context: Mapping[str, Any],
                 organization_id: str | None, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.members: dict[str, MemberGovernorStack] = {}
        for region in rollout.regions:
            member = DeploymentSettings.from_context({**context, "governor:destinationArn": rollout.destination_arn(region),
                                                      "governor:destinationRoleArn": "",
                                                      # An organization-wide destination checks each sender through a
                                                      # role of its own (CreateSubscriptionFilter-IAMrole); listed accounts need none.
                                                      "governor:senderRole": organization_id is not None,
                                                      "governor:fleetBusArn": fleet_bus_arn(region, rollout.central_account),
                                                      # The loop guard, for a member that is the logging account itself: the
                                                      # archive's exact names (what an account policy's NOT IN takes), and in
                                                      # per-group mode its prefix too (whatever the archive adds later).
                                                      "governor:shippingPathLogGroups": _guard(context)})
            if organization_id and not member.sender_role:
                raise ConfigError("the archive admits the organization (archive:organizationId), so every member must pass a sender "
                                  "role: the member template must set governor:senderRole")
            bucket = s3.Bucket.from_bucket_attributes(self, f"Assets-{region}", bucket_name=f"{rollout.asset_bucket_prefix}-{region}",
                                                      region=region)
            template = MemberGovernorStack(self, f"Member-{region}", settings=member, asset_bucket=bucket,
                                           asset_bucket_prefix=rollout.asset_bucket_prefix)
            self.members[region] = template
            StackSet(
                self, f"StackSet-{region}",
                stack_set_name=f"LogGroupGovernor-{region}",
                description=f"log-group-governor in {region}, shipping to the central archive of {rollout.central_account}",
                template=StackSetTemplate.from_stack_set_stack(template),
                target=StackSetTarget.from_organizational_units(regions=[region], organizational_units=list(rollout.organizational_units)),
                deployment_type=DeploymentType.service_managed(auto_deploy_enabled=True, auto_deploy_retain_stacks=False,
                                                               delegated_admin=rollout.delegated_admin),
                capabilities=[Capability.NAMED_IAM],
                operation_preferences=OperationPreferences(
                    failure_tolerance_percentage=rollout.failure_tolerance_percentage,
                    max_concurrent_percentage=rollout.max_concurrent_percentage,
                    region_concurrency_type=RegionConcurrencyType.PARALLEL if rollout.parallel_regions else RegionConcurrencyType.SEQUENTIAL),
                managed_execution=True,
            )
        self._acknowledge_asset_copier(rollout)

    def _acknowledge_asset_copier(self, rollout: RolloutSettings) -> None:
        """cdk-stacksets copies the member template's assets into the staging buckets with CDK's
        BucketDeployment: a singleton function of CDK's own (its runtime, its managed basic execution
        policy, the wildcards of its S3 grants). Accepted on that function alone, never on the stack."""
        copier = next((c for c in self.node.children if c.node.id.startswith("Custom::CDKBucketDeployment")), None)
        if copier is None:
            return
        # cdk-nag names an unresolved account or region by its pseudo parameter.
        account = "<AWS::AccountId>" if Token.is_unresolved(self.account) else self.account
        region = "<AWS::Region>" if Token.is_unresolved(self.region) else self.region
        why = "CDK's BucketDeployment, which cdk-stacksets uses to copy the member template's code into the staging buckets"
        findings = ["AwsSolutions-L1", "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
                    *(f"AwsSolutions-IAM5[Action::{a}]" for a in ("s3:GetBucket*", "s3:GetObject*", "s3:List*", "s3:Abort*", "s3:DeleteObject*")),
                    f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-{account}-{region}/*]",
                    *(f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::{rollout.asset_bucket_prefix}-{r}/*]" for r in rollout.regions)]
        for finding in findings:
            acknowledge(copier, f"AwsSolutions::{finding}", f"{why}: its own role and runtime, scoped to the asset buckets")
