"""The sandbox's HTTP front: Slack's and CodePipeline's stand-ins, and API Gateway.

Paths are a public interface (DESIGN §6, docs/sandbox.md): extend, never break.
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, ThreadedWSGIServer
from werkzeug.wrappers import Request, Response

from sandbox.engine import ACCOUNT, DEFAULT_SIGNING_SECRET, Sandbox
from sandbox.fake_codepipeline import CodePipelineError
from sandbox.fake_slack import (
    block_actions_payload,
    form_body,
    signed_request,
    view_submission_payload,
)
from sandbox.faults import FaultError

PAGE = Path(__file__).with_name("page.html")


def _json(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data, default=str), status=status, mimetype="application/json")


def _body_json(request: Request) -> dict[str, Any]:
    if not request.get_data():
        return {}
    try:
        data = json.loads(request.get_data(as_text=True))
    except ValueError:
        raise _BadJson() from None
    if not isinstance(data, dict):
        raise _BadJson()
    return data


class _BadJson(HTTPException):
    code = 400
    description = "the body must be a JSON object"


def http_api_event(request: Request, route_key: str) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) event, as API Gateway builds it.

    Form and other non-text bodies are base64-encoded with isBase64Encoded true.
    """
    raw = request.get_data()
    content_type = request.headers.get("Content-Type", "")
    textual = content_type.startswith(("application/json", "text/"))
    now = datetime.now(UTC)
    return {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": request.path,
        "rawQueryString": request.query_string.decode("latin-1"),
        "headers": {key.lower(): value for key, value in request.headers.items()},
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": "sandbox",
            "domainName": request.host,
            "http": {
                "method": request.method,
                "path": request.path,
                "protocol": "HTTP/1.1",
                "sourceIp": request.remote_addr or "127.0.0.1",
                "userAgent": request.headers.get("User-Agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "body": raw.decode("utf-8", errors="replace")
        if textual
        else base64.b64encode(raw).decode(),
        "isBase64Encoded": not textual,
    }


def _drop_connection(request: Request) -> None:
    """Shut the request's socket both ways: the client reads the end of the stream where
    the answer should be (http.client's RemoteDisconnected, a ConnectionResetError);
    werkzeug then finds the connection dropped and writes nothing."""
    sock = request.environ.get("werkzeug.socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


class _Server(ThreadedWSGIServer):
    """werkzeug's threaded server with room for every connection a burst opens at once.

    Its listen backlog is 128: when 200 pipeline runs start at once, the kernel drops the
    connections past it and each client retries its connect only after a second or more
    (TCP's SYN retransmission), so a burst slowed far more than its size. API Gateway
    and CodePipeline take any such burst; so does the sandbox, up to the kernel's
    net.core.somaxconn (4096 by default), which caps this."""

    request_queue_size = 4096


class SandboxServer:
    """Binds a loopback port, starts the sandbox behind it, and serves until stopped."""

    def __init__(
        self,
        *,
        policy_file: Path,
        port: int = 8400,
        host: str = "127.0.0.1",
        signing_secret: str = DEFAULT_SIGNING_SECRET,
        slack_fixture: dict[str, Any] | None = None,
        echo_logs: bool = False,
        language: str | None = None,
    ) -> None:
        """``language``, when given, is the policy's ``defaults.language`` in force (the
        CLI's ``--language``), whatever the file says."""
        self._server: BaseWSGIServer = _Server(host, port, self._wsgi)
        self.port = self._server.server_port
        self.url = f"http://{host}:{self.port}"
        self.sandbox = Sandbox(
            policy_file=policy_file,
            base_url=self.url,
            signing_secret=signing_secret,
            slack_fixture=slack_fixture,
            echo_logs=echo_logs,
            language=language,
        )
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._map = Map(
            [
                Rule("/", endpoint="page", methods=["GET"]),
                Rule("/slack/api/<method>", endpoint="slack_api", methods=["POST", "GET"]),
                Rule("/_sandbox/health", endpoint="health", methods=["GET"]),
                Rule("/_sandbox/reset", endpoint="reset", methods=["POST"]),
                Rule("/_sandbox/slack/workspace", endpoint="workspace", methods=["GET"]),
                Rule("/_sandbox/slack/messages", endpoint="messages", methods=["GET"]),
                Rule("/_sandbox/slack/calls", endpoint="slack_calls", methods=["GET"]),
                Rule(
                    "/_sandbox/slack/response-url/<key>", endpoint="response_url", methods=["POST"]
                ),
                Rule("/_sandbox/slack/click", endpoint="click", methods=["POST"]),
                Rule("/_sandbox/slack/submit", endpoint="submit", methods=["POST"]),
                Rule("/_sandbox/slack/views", endpoint="views", methods=["GET"]),
                Rule("/_sandbox/slack/interactions", endpoint="interactions", methods=["GET"]),
                Rule(
                    "/_sandbox/slack/channels/<channel_id>",
                    endpoint="slack_channel",
                    methods=["POST"],
                ),
                Rule("/_sandbox/slack/limits", endpoint="slack_limits", methods=["GET", "POST"]),
                Rule("/_sandbox/pipelines/<name>/runs", endpoint="start_run", methods=["POST"]),
                Rule(
                    "/_sandbox/pipelines/<name>/executions/<execution_id>"
                    "/<any(supersede, stop):how>",
                    endpoint="end_run",
                    methods=["POST"],
                ),
                Rule(
                    "/_sandbox/pipelines/<name>/approvals/<token>",
                    endpoint="console_decision",
                    methods=["POST"],
                ),
                Rule(
                    "/_sandbox/codepipeline/approval-results",
                    endpoint="approval_results",
                    methods=["GET"],
                ),
                Rule(
                    "/_sandbox/codepipeline/calls", endpoint="codepipeline_calls", methods=["GET"]
                ),
                Rule("/_sandbox/approvals", endpoint="approvals", methods=["GET"]),
                Rule("/_sandbox/notifications", endpoint="notifications", methods=["GET"]),
                Rule("/_sandbox/events", endpoint="events", methods=["GET"]),
                Rule("/_sandbox/faults", endpoint="faults", methods=["GET", "POST"]),
                Rule("/_sandbox/policy", endpoint="policy", methods=["POST"]),
                Rule("/_sandbox/alarms/<path:name>", endpoint="alarm", methods=["POST"]),
                Rule("/_sandbox/checks/<name>", endpoint="check", methods=["GET", "POST"]),
                Rule("/_sandbox/aws", endpoint="aws", methods=["GET"]),
                Rule("/_sandbox/slack/scopes", endpoint="slack_scopes", methods=["GET", "POST"]),
                Rule("/_sandbox/slack/app", endpoint="slack_app", methods=["GET"]),
            ]
        )

    # --- life -------------------------------------------------------------------------

    def start(self) -> SandboxServer:
        # shutdown() waits for the loop's next look at its flag: every 50 ms, not 0.5 s.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="sandbox-http",
            daemon=True,
        )
        self._thread.start()
        try:
            # Slack answers only for channels the workspace has: give it the policy's.
            from approval_gate.policy import load_policy_file, policy_channels

            # The user's file, so that a bad policy's error names it, not the copy.
            for channel in sorted(policy_channels(load_policy_file(self.sandbox.policy_source))):
                self.sandbox.slack.add_channel(channel)
            self.sandbox.start()
        except BaseException:
            # An invalid policy (or any failure to start): serve nothing, hold no port.
            self._server.shutdown()
            self._server.server_close()
            self.sandbox.stop()
            raise
        self._ready.set()
        return self

    def stop(self) -> None:
        # The status feed's queued events call the fake Slack this server answers: deliver
        # them while it still does, or each would retry a closed port (seconds apiece).
        self.sandbox.wait_for_events()
        self._ready.clear()
        self._server.shutdown()
        self._server.server_close()
        self.sandbox.stop()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- WSGI ---------------------------------------------------------------------------

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        try:
            response = self._dispatch(request)
        except HTTPException as exc:
            response = _json({"error": exc.description}, exc.code or 500)
        return response(environ, start_response)

    def _dispatch(self, request: Request) -> Response:
        route = (request.method, request.path)
        if route in self.sandbox.routes:
            return self._api_gateway(request, self.sandbox.routes[route])
        adapter = self._map.bind_to_environ(request.environ)
        endpoint, args = adapter.match()
        if endpoint != "health" and not self._ready.is_set():
            return _json({"error": "starting"}, 503)
        result: Response = getattr(self, f"_on_{endpoint}")(request, **args)
        return result

    # --- API Gateway → Lambda ---------------------------------------------------------

    def _api_gateway(self, request: Request, function: str) -> Response:
        if not self._ready.is_set():
            return _json({"message": "Service Unavailable"}, 503)
        event = http_api_event(request, f"{request.method} {request.path}")
        # Background work waits until the answer has been sent (the response is closed),
        # so writing it back to Slack never queues behind a workflow step.
        answered = self.sandbox.begin_serving()
        try:
            response = self._integration_response(function, event)
        except BaseException:
            answered()
            raise
        response.call_on_close(answered)
        return response

    def _integration_response(self, function: str, event: dict[str, Any]) -> Response:
        try:
            with self.sandbox.serving_on_this_thread():
                result = self.sandbox.invoke(function, event)
        except Exception:  # API Gateway answers 500 for a crashed integration
            return _json({"message": "Internal Server Error"}, 500)
        if not isinstance(result, dict) or "statusCode" not in result:
            return _json(result)
        body = result.get("body") or ""
        raw = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
        return Response(raw, status=int(result["statusCode"]), headers=result.get("headers") or {})

    # --- fake Slack ---------------------------------------------------------------------

    def _on_slack_api(self, request: Request, method: str) -> Response:
        args: dict[str, Any] = {k: v for k, v in request.args.items()}
        content_type = request.headers.get("Content-Type", "")
        if content_type.startswith("application/json"):
            args.update(_body_json(request))
        else:
            args.update({k: v for k, v in request.form.items()})
        try:
            status, headers, body = self.sandbox.slack.api(
                method, args, request.headers.get("Authorization")
            )
        except ConnectionResetError:
            # A reset_after_effect fault (sandbox.faults.AnswerLost): the call was carried
            # out; close the connection unanswered, so the client sees it dropped.
            _drop_connection(request)
            return Response(b"", status=204)
        response = _json(body, status)
        for key, value in headers.items():
            response.headers[key] = value
        return response

    def _on_workspace(self, request: Request) -> Response:
        return _json(self.sandbox.slack.workspace())

    def _on_messages(self, request: Request) -> Response:
        try:
            messages = self.sandbox.slack.messages(
                channel=request.args.get("channel"), oldest=request.args.get("oldest")
            )
        except ValueError:
            return _json({"error": "oldest must be a Slack ts, like 1795806333.000001"}, 400)
        return _json(messages)

    def _on_slack_calls(self, request: Request) -> Response:
        return _json(self.sandbox.slack.calls())

    def _on_response_url(self, request: Request, key: str) -> Response:
        status, body = self.sandbox.slack.apply_response_url(key, _body_json(request))
        return _json(body, status)

    def _on_click(self, request: Request) -> Response:
        """The page's buttons: Slack builds and signs the payload, then calls the app."""
        body = _body_json(request)
        message = self.sandbox.slack.find_message(str(body.get("channel")), str(body.get("ts")))
        if message is None:
            raise NotFound("no such message")
        try:
            payload = self.click_payload(
                message, str(body.get("user") or ""), str(body.get("action_id"))
            )
        except ValueError as exc:
            return _json({"error": str(exc)}, 400)
        self.sandbox.slack.record_interaction(payload)
        status, text = send_interaction(self.url, payload, self.sandbox.signing_secret)
        return _json({"status": status, "body": text})

    def click_payload(self, message: dict[str, Any], user: str, action: str) -> dict[str, Any]:
        """The block_actions payload Slack sends when `user` clicks `action` on `message`,
        with a response_url this sandbox serves. ValueError if there is no such button."""
        key = self.sandbox.slack.new_response_url_key(
            channel=message["channel"], message_ts=message["ts"], user=user
        )
        return block_actions_payload(
            self.sandbox.slack,
            message=message,
            user_id=user,
            action_id=action,
            response_url=f"{self.url}/_sandbox/slack/response-url/{key}",
        )

    def _on_submit(self, request: Request) -> Response:
        """The page's modals: Slack builds and signs the view_submission, then closes the
        modal unless the app answered with errors (as Slack does)."""
        body = _body_json(request)
        slack = self.sandbox.slack
        view_id = str(body.get("view_id"))
        raw = body.get("values")
        values: dict[str, dict[str, str | int]] = raw if isinstance(raw, dict) else {}
        try:
            payload = view_submission_payload(
                slack, view_id=view_id, user_id=str(body.get("user") or ""), values=values
            )
        except ValueError as exc:
            return _json({"error": str(exc)}, 400)
        slack.record_interaction(payload)
        status, text = send_interaction(self.url, payload, self.sandbox.signing_secret)
        errors = None
        if text:
            try:
                answer = json.loads(text)
            except ValueError:
                answer = {}
            if isinstance(answer, dict) and answer.get("response_action") == "errors":
                errors = answer.get("errors")
        if status == 200 and errors is None:
            slack.close_view(view_id)
        return _json({"status": status, "errors": errors})

    def _on_views(self, request: Request) -> Response:
        return _json(self.sandbox.slack.views())

    def _on_interactions(self, request: Request) -> Response:
        return _json(self.sandbox.slack.interactions())

    def _on_slack_channel(self, request: Request, channel_id: str) -> Response:
        body = _body_json(request)
        unknown = sorted(set(body) - {"bot_member"})
        if unknown:
            return _json({"error": f"unknown field: {unknown[0]}"}, 400)
        if not isinstance(body.get("bot_member"), bool):
            return _json({"error": "bot_member must be true or false"}, 400)
        try:
            channel = self.sandbox.slack.set_bot_member(channel_id, body["bot_member"])
        except KeyError:
            raise NotFound("no such channel") from None
        return _json(channel)

    def _on_slack_scopes(self, request: Request) -> Response:
        """The bot token's scopes (GET), or ``{scopes: [...]}`` from now on (POST)."""
        slack = self.sandbox.slack
        if request.method == "POST":
            body = _body_json(request)
            unknown = sorted(set(body) - {"scopes"})
            if unknown:
                return _json({"error": f"unknown field: {unknown[0]}"}, 400)
            try:
                slack.set_scopes(body.get("scopes"))
            except ValueError as exc:
                return _json({"error": str(exc)}, 400)
        return _json({"scopes": slack.scopes()})

    def _on_slack_app(self, request: Request) -> Response:
        """The app's id, manifest and interactivity request URL (apps.manifest.update)."""
        return _json(self.sandbox.slack.app())

    def _on_slack_limits(self, request: Request) -> Response:
        limits = self.sandbox.slack.limits
        if request.method == "GET":
            return _json(limits.snapshot())
        try:
            return _json(limits.configure(_body_json(request)))
        except ValueError as exc:
            return _json({"error": str(exc)}, 400)

    # --- fake CodePipeline ------------------------------------------------------------

    def _on_start_run(self, request: Request, name: str) -> Response:
        try:
            run = self.sandbox.start_run(name, _body_json(request))
        except ValueError as exc:  # a body CodePipeline could not have produced
            return _json({"error": str(exc)}, 400)
        # A run that failed before its approval (fail_at) never asked for one. One that did
        # may be decided already (a quick click while a slow start still ran): its token.
        token = run.token if run.approval is not None else None
        return _json({"pipelineExecutionId": run.execution_id, "approvalToken": token})

    def _on_end_run(self, request: Request, name: str, execution_id: str, how: str) -> Response:
        try:
            run = self.sandbox.codepipeline.end_run(name, execution_id, how)
        except KeyError:
            raise NotFound("no such pipeline execution") from None
        except ValueError as exc:
            return _json({"error": str(exc)}, 409)
        return _json({"pipelineExecutionId": run.execution_id, "status": run.status})

    def _on_console_decision(self, request: Request, name: str, token: str) -> Response:
        try:
            result = self.sandbox.codepipeline.decide_in_console(name, token, _body_json(request))
        except CodePipelineError as exc:
            return _json({"error": exc.code, "message": exc.message}, 400)
        return _json(result)

    def _on_approval_results(self, request: Request) -> Response:
        return _json(self.sandbox.codepipeline.approval_results())

    def _on_codepipeline_calls(self, request: Request) -> Response:
        return _json(self.sandbox.codepipeline.calls())

    # --- faults ---------------------------------------------------------------------------

    def _on_faults(self, request: Request) -> Response:
        if request.method == "GET":
            return _json(self.sandbox.faults.snapshot())
        try:
            body = json.loads(request.get_data(as_text=True) or "{}")
        except ValueError:
            return _json(FaultError("body", "the body must be a JSON object").body(), 400)
        try:
            return _json(self.sandbox.faults.configure(body))
        except FaultError as exc:
            return _json(exc.body(), 400)

    def _on_policy(self, request: Request) -> Response:
        """A policy document (YAML or JSON), validated, then in force for requests from
        now on (DESIGN §8.6); 400 with the validator's error otherwise."""
        try:
            policy = self.sandbox.set_policy(request.get_data(as_text=True))
        except ValueError as exc:
            return _json({"error": str(exc)}, 400)
        from approval_gate.policy import policy_channels

        for channel in sorted(policy_channels(policy)):
            self.sandbox.slack.add_channel(channel)
        return _json({"ok": True})

    # --- health checks ---------------------------------------------------------------------

    def _on_alarm(self, request: Request, name: str) -> Response:
        """Set an alarm's state; CloudWatch's state-change event when it changed."""
        try:
            return _json(self.sandbox.set_alarm(name, _body_json(request)))
        except KeyError:
            raise NotFound("no such alarm") from None
        except ValueError as exc:
            return _json({"error": str(exc)}, 400)

    def _on_check(self, request: Request, name: str) -> Response:
        """A check function's answer from now on (POST), and the payloads it received."""
        try:
            check = self.sandbox.check_function(name)
        except KeyError:
            raise NotFound("no such check function") from None
        if request.method == "GET":
            return _json(check.snapshot())
        try:
            return _json(check.configure(_body_json(request)))
        except ValueError as exc:
            return _json({"error": str(exc)}, 400)

    # --- the sandbox itself -------------------------------------------------------------

    def _on_health(self, request: Request) -> Response:
        if self._ready.is_set():
            return _json({"ok": True})
        return _json({"ok": False}, 503)

    def _on_reset(self, request: Request) -> Response:
        self.sandbox.reset()
        return _json({"ok": True})

    def _on_aws(self, request: Request) -> Response:
        """Where the sandbox's AWS APIs, resources, parameters, Slack and policy are."""
        return _json(self.sandbox.aws())

    def _on_approvals(self, request: Request) -> Response:
        return _json(self.sandbox.approvals())

    def _on_notifications(self, request: Request) -> Response:
        return _json(self.sandbox.fallback_notifications())

    def _on_events(self, request: Request) -> Response:
        """Every SNS message and EventBridge event delivered to a function, oldest first."""
        return _json(self.sandbox.deliveries())

    def _on_page(self, request: Request) -> Response:
        return Response(PAGE.read_text(encoding="utf-8"), mimetype="text/html")


def send_interaction(
    base_url: str, payload: dict[str, Any], signing_secret: str, timestamp: int | None = None
) -> tuple[int, str]:
    """POST a payload to the sandbox's Slack interactivity URL, signed exactly as Slack signs."""
    body = form_body(payload)
    return post_interaction(
        base_url, body, signed_request(body, signing_secret, timestamp or int(time.time()))
    )


def post_interaction(
    base_url: str, body: bytes, headers: dict[str, str], timeout: float = 10.0
) -> tuple[int, str]:
    """POST raw bytes with the given headers to /slack/interactions: (status, body text)."""
    request = urllib.request.Request(  # noqa: S310 - loopback only
        f"{base_url}/slack/interactions", data=body, headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
