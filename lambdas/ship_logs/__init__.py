"""ship-logs: decode CloudWatch Logs subscription batches, parse Lambda's lines, derive metrics, forward."""
