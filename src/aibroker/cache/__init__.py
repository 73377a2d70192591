"""The response cache: the gateway's Cache hook."""
