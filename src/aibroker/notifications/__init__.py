"""Notifications: stored events (low balance, ...) delivered to the platform's webhook."""
