"""The web console: server-rendered pages at /console over the same services as the JSON API."""
