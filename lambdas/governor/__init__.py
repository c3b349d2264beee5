"""log-group-governor: every CloudWatch Logs log group subscribed to the shipping destination, with a sane retention."""
