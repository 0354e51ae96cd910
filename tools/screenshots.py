"""The README's pictures of what approvers see: `python -m tools.screenshots [folder]`.

Starts its own sandbox on a free loopback port, puts a policy in force (an alarm to check,
a change ticket and a rollout to give on Approve), and runs the pipeline `web` twice from
the same two sources: the first run approved, so the second request shows its revisions
and the compare link with its commit count. The sandbox's page, in Debian's Chromium at a
phone's width, shows that request (`request.png`); Bob approves it through the confirm
dialog and the inputs modal, and the closed message is `closed.png`. Writes to
`docs/images/` unless given another folder. The emoji need a color emoji font
(Debian's `fonts-noto-color-emoji`); without one Chromium draws boxes.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

from playwright.sync_api import Locator, Page, ViewportSize, sync_playwright

from sandbox.client import SandboxClient, wait_for
from sandbox.server import SandboxServer

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "images"
FONTS = Path("/usr/share/fonts")
PIPELINE = "web"
ALARM = "web-api-5xx"
POLICY = {
    "defaults": {
        "channel": "C0DEPLOYS",
        "approvers": {"users": ["U0ALICE", "U0BOB"]},
        "deadline": "4h",
        "checks": {"alarms": [ALARM]},
        "inputs": [
            {"id": "ticket", "label": "Change ticket", "pattern": "^CHG[0-9]{6}$"},
            {"id": "rollout", "label": "Rollout", "options": ["10%", "50%", "100%"]},
        ],
    },
    "people": {"alice@example.com": "U0ALICE"},
}
#: A phone's width, drawn at twice the pixels so the text stays sharp.
VIEWPORT: ViewportSize = {"width": 430, "height": 1200}
SCALE = 2
WAIT_MS = 15_000


def _sources(code_message: str, config_message: str) -> list[dict[str, Any]]:
    return [
        {
            "provider": "CodeCommit",
            "repository": "web",
            "message": code_message,
            "author": "alice@example.com",
        },
        {
            "action": "Config",
            "provider": "S3",
            "repository": "web-config/prod.zip",
            "message": config_message,
        },
    ]


def _request(client: SandboxClient, sources: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """Start a run of PIPELINE: its approval id and its request in Slack, once posted."""
    execution_id = client.start_run(PIPELINE, sources=sources)["pipelineExecutionId"]
    approval = wait_for(
        lambda: next(
            (a for a in client.approvals() if a["pipeline_execution_id"] == execution_id),
            None,
        ),
        what="the approval",
    )

    def posted() -> dict[str, Any] | None:
        for message in client.messages():
            if approval["approval_id"] in str(message["blocks"]):
                return message
        return None

    return approval["approval_id"], wait_for(posted, what="the request")


def _approve_over_http(client: SandboxClient, approval_id: str, request: dict[str, Any]) -> None:
    """Bob approves as Slack would send it: the click, then the inputs modal submitted."""
    click = {"channel": request["channel"], "ts": request["ts"], "action_id": "approve"}
    status, answer = client.request("POST", "/_sandbox/slack/click", {**click, "user": "U0BOB"})
    _answered(status, answer)
    view = wait_for(
        lambda: next((v for v in client.get("/_sandbox/slack/views") if not v["closed"]), None),
        what="the Approve modal",
    )
    values = {"ticket": {"ticket": "CHG104233"}, "rollout": {"rollout": "10%"}}
    submitted = {"view_id": view["id"], "user": "U0BOB", "values": values}
    status, answer = client.request("POST", "/_sandbox/slack/submit", submitted)
    _answered(status, answer)
    # The next run compares with this one once CodePipeline has it approved.
    wait_for(
        lambda: any(
            a["reported_at"] for a in client.approvals() if a["approval_id"] == approval_id
        ),
        what="the approval reported to CodePipeline",
    )


def _answered(status: int, answer: Any) -> None:
    if status != 200:
        raise SystemExit(f"the sandbox answered {status}: {answer}")


def _shoot(message: Locator, path: Path) -> None:
    message.scroll_into_view_if_needed()
    message.screenshot(path=str(path), animations="disabled")
    print(f"{path}: {path.stat().st_size // 1024} kB")


def _on_the_page(page: Page, ts: str) -> Locator:
    return page.locator(".msg", has=page.locator(".meta", has_text=ts)).first


def _has_emoji_font() -> bool:
    """Whether Debian's font folder has a color emoji font (a hint only: elsewhere, fonts
    live in other places)."""
    return any(FONTS.rglob("*Emoji*")) if FONTS.is_dir() else False


def take(folder: Path) -> list[Path]:
    """Run the scene in a sandbox of its own and save the two pictures in `folder`."""
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("no chromium on the PATH: `make browser` installs Debian's")
    if not _has_emoji_font():
        print("no emoji font (Debian: fonts-noto-color-emoji): emoji will show as boxes")
    folder.mkdir(parents=True, exist_ok=True)
    server = SandboxServer(policy_file=ROOT / "config" / "policy.yaml", port=0).start()
    try:
        return _scene(server, chromium, folder)
    finally:
        server.sandbox.wait_for_executions(timeout=30)
        server.stop()


def _scene(server: SandboxServer, chromium: str, folder: Path) -> list[Path]:
    client = SandboxClient(server.url)
    status, answer = client.request("POST", "/_sandbox/policy", POLICY)
    _answered(status, answer)
    alarm = {"state": "OK", "reason": "5xx at 0.1% of requests, under 2%"}
    status, answer = client.request("POST", f"/_sandbox/alarms/{ALARM}", alarm)
    _answered(status, answer)
    first = _request(client, _sources("Add the order history page", "Raise the API timeout"))
    _approve_over_http(client, *first)
    _, request = _request(client, _sources("Fix the total on the order page", "Cache prices 5 min"))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True)
        try:
            context = browser.new_context(viewport=VIEWPORT, device_scale_factor=SCALE)
            context.set_default_timeout(WAIT_MS)
            page = context.new_page()
            page.on("dialog", lambda dialog: dialog.accept())
            page.goto(server.url)
            page.locator("#user option").first.wait_for(state="attached")
            page.locator("#user").select_option("U0BOB")
            shown = _on_the_page(page, request["ts"])
            shown.get_by_text("Since the last deployment").wait_for()
            # The message's own ts line is the sandbox's, not Slack's: left out of the pictures.
            page.add_style_tag(content=".msg .meta { display: none; }")
            _shoot(shown, folder / "request.png")

            shown.locator('button[data-action="approve"]').click()
            page.locator('#modal textarea[data-block="ticket"]').fill("CHG104872")
            page.locator('#modal select[data-block="rollout"]').select_option("50%")
            page.locator("#modal-submit").click()
            page.locator("#modal").wait_for(state="hidden")
            shown.get_by_text("Approved:").first.wait_for()
            shown.locator("button[data-action]").first.wait_for(state="detached")
            _shoot(shown, folder / "closed.png")
        finally:
            browser.close()
    return [folder / "request.png", folder / "closed.png"]


def main(argv: list[str]) -> int:
    take(Path(argv[0]) if argv else IMAGES)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
