"""The job queue: jobs are rows, enqueued in the caller's transaction and claimed by workers
(`FOR UPDATE SKIP LOCKED` on PostgreSQL, one atomic UPDATE under SQLite's write lock)."""

from aibroker.jobs.queue import enqueue
from aibroker.jobs.registry import GiveUp, JobContext, RetryLater, register

__all__ = ["GiveUp", "JobContext", "RetryLater", "enqueue", "register"]
