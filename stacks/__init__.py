"""The CDK side of log-group-governor: one Construct per concern, composed by GovernorStack."""
