"""`aibroker worker [--concurrency N]`: run jobs continuously, with the app's services."""

from __future__ import annotations

import asyncio
import contextlib
import signal

import typer


async def _work(concurrency: int, types: list[str] | None) -> None:
    from aibroker.app import Services
    from aibroker.config import get_settings
    from aibroker.jobs.runner import Worker

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    # The same services as `serve`: AI calls go through the gateway and its money writer.
    services = await Services.start(get_settings())
    try:
        worker = Worker(services, concurrency=concurrency, types=types or None)
        typer.echo(f"worker {worker.id} running {concurrency} slot(s); Ctrl+C stops after the running jobs")
        await worker.run(stop)
    finally:
        await services.stop()


def worker(
    concurrency: int = typer.Option(4, "--concurrency", "-c", min=1, help="Jobs run at the same time."),
    type: list[str] = typer.Option(None, "--type", help="Only these job types (repeatable)."),
) -> None:
    """Run queued jobs continuously (AI replies, channel sends ...). Run as many as you like."""
    from aibroker.config import get_settings
    from aibroker.migrations.runner import upgrade
    from aibroker.ops.logging import configure

    configure(get_settings().server.log_level)
    upgrade()
    asyncio.run(_work(concurrency, type))


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)
