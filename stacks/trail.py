"""The CloudTrail trail whose management (write) events EventBridge needs to see CreateLogGroup calls."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudtrail as cloudtrail
from aws_cdk import aws_s3 as s3
from constructs import Construct

#: The trail exists to feed EventBridge; its S3 copy is a by-product kept for a quarter.
TRAIL_OBJECT_EXPIRY = Duration.days(90)


def _private_bucket(scope: Construct, construct_id: str, **kwargs: object) -> s3.Bucket:
    return s3.Bucket(
        scope,
        construct_id,
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        lifecycle_rules=[s3.LifecycleRule(expiration=TRAIL_OBJECT_EXPIRY)],
        **kwargs,
    )


class ManagementEventsTrail(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        access_logs = _private_bucket(self, "AccessLogs")
        self.bucket = _private_bucket(self, "Bucket", server_access_logs_bucket=access_logs, server_access_logs_prefix="trail-bucket/")
        self.trail = cloudtrail.Trail(
            self,
            "Trail",
            bucket=self.bucket,
            management_events=cloudtrail.ReadWriteType.WRITE_ONLY,
            include_global_service_events=False,
            is_multi_region_trail=False,
            enable_file_validation=True,
        )
