"""What the governor and ship-logs share: configuration errors and decoding, boto3 client settings."""
