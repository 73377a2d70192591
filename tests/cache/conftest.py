"""The cache tests share the limits tests' backends (memory, and Redis when configured)."""

from tests.limits.conftest import backend, broker_env, movable_clock  # noqa: F401
