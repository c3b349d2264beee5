"""The CloudTrail trail whose management (write) events EventBridge needs to see CreateLogGroup calls."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudtrail as cloudtrail
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from .buckets import private_bucket

#: The trail exists to feed EventBridge; its S3 copy is a by-product kept for a quarter.
TRAIL_OBJECT_EXPIRY = Duration.days(90)


class ManagementEventsTrail(Construct):
    """Written with the L1 resource so the bucket policy can name the trail in ``aws:SourceArn`` (the
    L2 grants CloudTrail the bucket without it: any trail of any account could write there)."""

    def __init__(self, scope: Construct, construct_id: str, *, access_logs: s3.IBucket) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.bucket = private_bucket(
            self, "Bucket", expire_after=TRAIL_OBJECT_EXPIRY, access_logs=access_logs, access_logs_prefix="trail-bucket/"
        )
        trail_name = f"{stack.stack_name}-management-events"
        trail_arn = stack.format_arn(service="cloudtrail", resource="trail", resource_name=trail_name)
        cloudtrail_principal = iam.ServicePrincipal("cloudtrail.amazonaws.com")
        only_this_trail = {"StringEquals": {"aws:SourceArn": trail_arn}}
        self.bucket.add_to_resource_policy(iam.PolicyStatement(
            actions=["s3:GetBucketAcl"], principals=[cloudtrail_principal], resources=[self.bucket.bucket_arn],
            conditions=only_this_trail,
        ))
        self.bucket.add_to_resource_policy(iam.PolicyStatement(
            actions=["s3:PutObject"], principals=[cloudtrail_principal],
            resources=[self.bucket.arn_for_objects(f"AWSLogs/{stack.account}/*")],
            conditions={"StringEquals": {"aws:SourceArn": trail_arn, "s3:x-amz-acl": "bucket-owner-full-control"}},
        ))
        self.trail = cloudtrail.CfnTrail(
            self,
            "Trail",
            trail_name=trail_name,
            is_logging=True,
            s3_bucket_name=self.bucket.bucket_name,
            include_global_service_events=False,
            is_multi_region_trail=False,
            enable_log_file_validation=True,
            event_selectors=[cloudtrail.CfnTrail.EventSelectorProperty(read_write_type="WriteOnly", include_management_events=True)],
        )
        self.trail.node.add_dependency(self.bucket.policy)
