"""`aibroker serve` (one worker, uvloop + httptools, as in production) under yappi's CPU clock,
every thread profiled (the money writer settles on its own thread). On SIGTERM the server
stops and the per-function totals are written as JSON for bench/stages.py."""

from __future__ import annotations

import argparse
import json
import signal

import uvicorn
import yappi


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    config = uvicorn.Config("aibroker.app:create_app", factory=True, host="127.0.0.1", port=args.port, loop="uvloop",
                            http="httptools", access_log=False, log_level="warning", timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    yappi.set_clock_type("cpu")
    yappi.start(builtins=False, profile_threads=True)
    signal.signal(signal.SIGUSR1, lambda *_: yappi.clear_stats())  # the warm-up is over: count from here
    # uvicorn re-raises the SIGTERM it handled once it has shut down; it must not kill us
    # before the stats are written.
    signal.signal(signal.SIGTERM, lambda *_: None)
    server.run()
    yappi.stop()
    stats = [
        {"module": s.module, "name": s.name, "calls": s.ncall, "ttot": s.ttot, "tsub": s.tsub}
        for s in yappi.get_func_stats()
    ]
    threads = [{"name": t.name, "ttot": t.ttot} for t in yappi.get_thread_stats()]
    with open(args.out, "w") as out:
        json.dump({"functions": stats, "threads": threads}, out)


if __name__ == "__main__":
    main()
