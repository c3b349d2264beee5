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

from collections.abc import Mapping
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

from shared.config import ConfigError

from .functions import acknowledge
from .governor_stack import GovernorComposition
from .org_settings import ROLLOUT, ROLLOUT_KEYS, ROLLOUT_PREFIX, RolloutSettings, member_base, member_context  # noqa: F401
from .overrides import StackSetGroup, group_context
from .settings import DeploymentSettings


def member_settings(context: Mapping[str, Any], rollout: RolloutSettings, region: str, organization_id: str | None,
                    group: StackSetGroup | None = None) -> DeploymentSettings:
    """A member's settings in ``region``: the organization's governor: keys, the overrides of its StackSet, and what the
    rollout sets itself (stacks.org_settings.member_context, which the CLI's --member shares)."""
    base = member_base(context, organization_trail=rollout.organization_trail)
    resolved = group_context(base, group) if group is not None else base
    overridden = frozenset(k for o in (group.overrides if group else ()) for k in o.governor)
    member = DeploymentSettings.from_context(member_context(resolved, rollout=rollout, region=region, organization_id=organization_id,
                                                            overridden=overridden))
    if organization_id and not member.sender_role:
        raise ConfigError("the archive admits the organization (archive:organizationId), so every member must pass a sender "
                          "role: the member template must set governor:senderRole")
    return member


def check_member_settings(context: Mapping[str, Any], rollout: RolloutSettings, organization_id: str | None) -> None:
    """Every StackSet's configuration, of every wave (a later wave's mistake is found before its deploy), each error once
    (under the first overrides that show it), and StackSet names that would collide."""
    errors: list[str] = []
    seen: set[str] = set()
    groups = rollout.stack_sets(every_wave=True)
    names: dict[str, StackSetGroup] = {}
    for group in groups:
        other = names.setdefault(group.stack_set_name(rollout.regions[0]), group)
        if other is not group:
            errors.append(f"rollout:overrides ({', '.join(o.name for o in group.overrides)}): its StackSet would be named "
                          f"{group.stack_set_name(rollout.regions[0])}, as that of {', '.join(o.name for o in other.overrides) or 'the organization'}: "
                          f"rename an override (a StackSet is named by its overrides' names, joined by '-')")
        if not group.overrides:
            continue
        try:
            member_settings(context, rollout, rollout.regions[0], organization_id, group)
        except ConfigError as error:
            where = f"rollout:overrides ({', '.join(o.name for o in group.overrides)})"
            for message in error.messages:
                if message not in seen:
                    seen.add(message)
                    errors.append(f"{where}: {message}")
    if errors:
        raise ConfigError(*errors)


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
            bucket = s3.Bucket.from_bucket_attributes(self, f"Assets-{region}", bucket_name=f"{rollout.asset_bucket_prefix}-{region}",
                                                      region=region)
            ou_stack_set: StackSet | None = None
            for group in rollout.stack_sets():
                member = member_settings(context, rollout, region, organization_id, group)
                suffix = f"-{group.short_label}" if group.label else ""  # the organization's own keeps the ids it had before overrides
                template = MemberGovernorStack(self, f"Member-{region}{suffix}", settings=member, asset_bucket=bucket,
                                               asset_bucket_prefix=rollout.asset_bucket_prefix)
                self.members[group.stack_set_name(region)] = template
                stack_set = StackSet(
                    self, f"StackSet-{region}{suffix}",
                    stack_set_name=group.stack_set_name(region),
                    description=f"log-group-governor in {region}, shipping to the central archive of {rollout.central_account}"
                                + (f"; overrides: {', '.join(o.name for o in group.overrides)}" if group.overrides else ""),
                    template=StackSetTemplate.from_stack_set_stack(template),
                    target=StackSetTarget.from_organizational_units(
                        regions=[region], organizational_units=list(group.organizational_units),
                        exclude_accounts=list(group.exclude_accounts) or None, intersection_accounts=list(group.intersection_accounts) or None),
                    deployment_type=DeploymentType.service_managed(auto_deploy_enabled=True, auto_deploy_retain_stacks=False,
                                                                   delegated_admin=rollout.delegated_admin),
                    capabilities=[Capability.NAMED_IAM],
                    operation_preferences=OperationPreferences(
                        failure_tolerance_percentage=rollout.failure_tolerance_percentage,
                        max_concurrent_percentage=rollout.max_concurrent_percentage,
                        region_concurrency_type=RegionConcurrencyType.PARALLEL if rollout.parallel_regions else RegionConcurrencyType.SEQUENTIAL),
                    managed_execution=True,
                )
                if group.intersection_accounts and ou_stack_set is not None:
                    # An account given an override leaves its OU's StackSet (DIFFERENCE) before this one deploys it: never
                    # two governors, with their fixed-name roles, in one account at once.
                    stack_set.node.add_dependency(ou_stack_set)
                else:
                    ou_stack_set = stack_set
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
