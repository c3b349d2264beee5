"""The CloudTrail trail whose management (write) events EventBridge needs to see CreateLogGroup calls."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudtrail as cloudtrail
from aws_cdk import aws_s3 as s3
from constructs import Construct

from .buckets import private_bucket

#: The trail exists to feed EventBridge; its S3 copy is a by-product kept for a quarter.
TRAIL_OBJECT_EXPIRY = Duration.days(90)


class ManagementEventsTrail(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, access_logs: s3.IBucket) -> None:
        super().__init__(scope, construct_id)
        self.bucket = private_bucket(
            self, "Bucket", expire_after=TRAIL_OBJECT_EXPIRY, access_logs=access_logs, access_logs_prefix="trail-bucket/"
        )
        self.trail = cloudtrail.Trail(
            self,
            "Trail",
            bucket=self.bucket,
            management_events=cloudtrail.ReadWriteType.WRITE_ONLY,
            include_global_service_events=False,
            is_multi_region_trail=False,
            enable_file_validation=True,
        )
