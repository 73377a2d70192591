"""Organizations, API keys, authentication."""
