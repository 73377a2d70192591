"""Plans, rate limits, quotas and input rules: the gateway's Admission hook."""
