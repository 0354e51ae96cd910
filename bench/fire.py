"""Sends prepared HTTP POSTs all at once, from a process of its own, and prints each one's
status and seconds from request sent to response received (JSON on stdout).

The burst benchmark's clients: Slack is not in the sandbox's interpreter, so the clients
that stand in for it must not take its CPU either. Input on stdin:
``{"url": ..., "requests": [{"body": <latin-1 text>, "headers": {...}}, ...]}``.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import urllib.error
import urllib.request
from typing import Any


def fire(url: str, requests: list[dict[str, Any]], timeout: float = 60.0) -> list[list[Any]]:
    """[status, seconds] per request, in order; all released at the same instant."""
    barrier = threading.Barrier(len(requests))
    results: list[list[Any]] = [[0, 0.0] for _ in requests]

    def one(index: int, request: dict[str, Any]) -> None:
        prepared = urllib.request.Request(  # noqa: S310 - loopback only
            url, data=request["body"].encode("latin-1"), headers=request["headers"], method="POST"
        )
        barrier.wait(timeout=30)
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(prepared, timeout=timeout) as response:  # noqa: S310
                response.read()
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        results[index] = [status, time.perf_counter() - started]

    threads = [threading.Thread(target=one, args=item) for item in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout + 30)
    return results


def main() -> None:
    spec = json.load(sys.stdin)
    json.dump(fire(spec["url"], spec["requests"]), sys.stdout)


if __name__ == "__main__":
    main()
