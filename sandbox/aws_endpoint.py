"""The sandbox's AWS APIs over HTTP: moto in server mode on 127.0.0.1 (``GET /_sandbox/aws``).

The sandbox runs moto in process (``mock_aws``): its functions' boto3 calls never leave the
interpreter. Tools outside it (the ``approval-gate`` CLI, a script, another process) need an
endpoint instead. This serves moto's own WSGI application (the one ``moto_server`` runs) on
a free loopback port, in this process, so it answers from the very backends the in-process
sandbox writes to: a table item the gate wrote is what a Scan through the endpoint reads,
and the sandbox's patches (patch 4's CodePipeline routes) answer there too.

moto's ``ThreadedMotoServer`` would do the same, but it binds on its thread (a port taken
leaves ``start`` waiting forever) and never closes its socket; this binds on the caller's
thread, so a failure is an error at once, and ``stop`` frees the port.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

__all__ = ["LOOPBACK_PASSTHROUGH", "AwsEndpoint", "AwsEndpointError"]

#: moto's ``core.passthrough.urls`` entry that keeps its in-process interception (a running
#: ``mock_aws``) off requests to a loopback endpoint, so they reach this server.
LOOPBACK_PASSTHROUGH = r"http://127\.0\.0\.1:\d+/.*"
#: Connections the kernel queues before the server accepts them.
LISTEN_BACKLOG = 128


class AwsEndpointError(RuntimeError):
    """The endpoint could not start (the port is taken, moto's server cannot load)."""


class AwsEndpoint:
    """moto's server application on ``host:port`` (0: a free port), started and stopped
    with the sandbox. One per sandbox."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (boto3's ``endpoint_url``); only once started."""
        if self._server is None:
            raise AwsEndpointError("the AWS endpoint is not running")
        return f"http://{self.host}:{self._server.port}"

    def start(self) -> AwsEndpoint:
        try:
            from moto.moto_server.werkzeug_app import (
                DomainDispatcherApplication,
                MotoRequestHandler,
                create_backend_app,
            )

            app: Any = DomainDispatcherApplication(create_backend_app)
            # Bound here, not by werkzeug: on a taken port it prints and exits the process.
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listening:
                listening.bind((self.host, self.port))
                listening.listen(LISTEN_BACKLOG)
                server = make_server(
                    self.host,
                    self.port,
                    app,
                    threaded=True,
                    request_handler=MotoRequestHandler,
                    fd=listening.fileno(),  # werkzeug serves a duplicate of it
                )
        except (ImportError, OSError) as exc:
            raise AwsEndpointError(
                f"the sandbox's AWS endpoint could not start on {self.host}:{self.port}: {exc}"
            ) from None
        self._server = server
        # shutdown() waits for the loop's next look at its flag: every 50 ms, not 0.5 s.
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="sandbox-aws-endpoint",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port (idempotent)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
