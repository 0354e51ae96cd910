"""docs/setup.md against the files it names (issue 24, defects 2 to 9).

A setup guide rots quietly: a renamed parameter, output or anchor only shows when someone
follows it on a real account. These tests read the guide and check each name it gives
against the template, the example pipeline, the Makefile and the other docs, and run its
secret-handling commands with stand-in `aws` and `curl` that record how they were called.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from approval_gate.policy import load_policy
from approval_gate.slack import SlackCredentials

ROOT = Path(__file__).resolve().parents[2]
BASH = shutil.which("bash")
DOCS = ROOT / "docs"
SETUP = DOCS / "setup.md"
#: What `sam deploy --guided` asks besides the template's parameters (SAM CLI's
#: guided_context.py), in its order; the authorization prompt names the one function
#: behind an API without an authorizer.
SAM_PROMPTS = (
    "Stack Name",
    "AWS Region",
    "Confirm changes before deploy",
    "Allow SAM CLI IAM role creation",
    "Disable rollback",
    "SlackInteractionsFunction has no authentication. Is this okay?",
    "Save arguments to configuration file",
    "SAM configuration file",
    "SAM configuration environment",
)


class _CfnLoader(yaml.SafeLoader):
    """Reads a CloudFormation template, ignoring its short-form tags (!Ref, !Sub, ...)."""


_CfnLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def _template(path: Path) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 (a SafeLoader subclass)


def _section(text: str, heading: str) -> str:
    """The text under a `## ` heading that starts with `heading`, up to the next `## `."""
    match = re.search(rf"^## {re.escape(heading)}.*?$(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"no section {heading!r}"
    return match.group(1)


def _code_blocks(text: str, lang: str) -> list[str]:
    return [
        textwrap.dedent(m.group(2))
        for m in re.finditer(rf"^( *)```{lang}\n(.*?)^\1```", text, re.M | re.S)
    ]


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = path.read_text()
    text_no_code = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    seen: dict[str, int] = {}
    anchors = set(re.findall(r'<a id="([^"]+)"></a>', text))
    for heading in re.findall(r"^#{1,6} (.+)$", text_no_code, re.M):
        slug = _slug(heading)
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def _links(path: Path) -> list[str]:
    text = re.sub(r"^ *```.*?^ *```", "", path.read_text(), flags=re.M | re.S)
    return re.findall(r"\]\(([^)\s]+)\)", text)


# ---------------------------------------------------------------------------------------
# Names: parameters, prompts, outputs, files, make targets, links.
# ---------------------------------------------------------------------------------------


def test_the_guided_prompts_table_has_every_parameter_and_sams_own_prompts_in_order() -> None:
    table = _section(SETUP.read_text(), "5. Build and deploy")
    rows = [line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| ")]
    rows = rows[rows.index("Stack Name") :]
    parameters = [
        name for row in rows if row.startswith("Parameter") for name in re.findall(r"`(\w+)`", row)
    ]
    assert parameters == list(_template(ROOT / "template.yaml")["Parameters"])
    prompts = [row.strip("`") for row in rows if not row.startswith("Parameter")]
    assert tuple(prompts[: len(SAM_PROMPTS)]) == SAM_PROMPTS


def test_only_the_slack_function_is_behind_an_api_so_only_it_is_asked_about() -> None:
    resources = _template(ROOT / "template.yaml")["Resources"]
    behind_api = [
        name
        for name, resource in resources.items()
        if resource["Type"] == "AWS::Serverless::Function"
        and any(
            event["Type"] in ("Api", "HttpApi")
            for event in (resource["Properties"].get("Events") or {}).values()
        )
    ]
    assert behind_api == ["SlackInteractionsFunction"]


def test_every_output_the_guide_reads_is_one_the_stacks_have() -> None:
    text = SETUP.read_text()
    gate = set(_template(ROOT / "template.yaml")["Outputs"])
    example = set(_template(ROOT / "examples" / "pipeline.yaml")["Outputs"])
    read = re.findall(
        r"--stack-name ([\w-]+) \\\n\s+--query \"Stacks\[0\]\.Outputs\[\?OutputKey=='(\w+)'", text
    )
    assert read, "the guide reads no output"
    for stack, output in read:
        assert output in (example if stack == "approval-gate-example" else gate), (stack, output)
    table = _section(text, "5. Build and deploy").split("| output | use |")[1]
    listed = re.findall(r"^\| `(\w+)` \|", table, re.M)
    assert sorted(listed) == sorted(gate)


def test_the_files_and_make_targets_it_names_exist() -> None:
    text = SETUP.read_text()
    named = set(
        re.findall(
            r"`((?:config|examples|functions|tools|statemachine|requirements)/[\w./-]+)`", text
        )
    )
    assert "config/policy.yaml" in named
    # tools/asl/node_modules is made by `make lint`, not checked in.
    missing = [p for p in sorted(named) if "node_modules" not in p and not (ROOT / p).exists()]
    assert not missing
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M))
    commands = re.findall(r"`make (\w+)`", text) + re.findall(
        r"^make (\w+)", "\n".join(_code_blocks(text, "sh")), re.M
    )
    assert "build" in commands
    for target in set(commands):
        assert target in targets, target


def test_every_link_in_the_guide_and_every_link_into_it_resolves() -> None:
    sources = [SETUP, *sorted(DOCS.glob("*.md")), ROOT / "README.md"]
    for source in sources:
        for link in _links(source):
            if re.match(r"\w+:", link):
                continue
            target, _, fragment = link.partition("#")
            path = (source.parent / target).resolve() if target else source
            if source != SETUP and path != SETUP:
                continue
            assert path.exists(), f"{source.name}: {link}"
            if fragment and path.suffix == ".md":
                assert fragment in _anchors(path), f"{source.name}: {link}"


# ---------------------------------------------------------------------------------------
# Order: the policy before the first deploy, one trial run, the guided deploy first.
# ---------------------------------------------------------------------------------------


def test_the_policy_is_written_before_the_first_deploy_and_one_run_is_started() -> None:
    text = SETUP.read_text()
    steps = re.findall(r"^## (\d)\. (.+)$", text, re.M)
    assert [int(n) for n, _ in steps] == list(range(len(steps)))
    titles = [title for _, title in steps]
    assert titles.index("Write the policy") < titles.index("Build and deploy")
    assert titles.index("Point Slack at the endpoint") < titles.index("First approval")
    commands = "\n".join(_code_blocks(text, "sh"))
    assert commands.count("start-pipeline-execution") == 1
    deploys = re.findall(r"^(?:\S*/)?sam deploy(?: --guided)?", commands, re.M)
    assert deploys and deploys[0].endswith("--guided")
    assert "before step" not in text


def test_the_trial_rule_lets_the_author_approve_the_example_pipeline_only() -> None:
    rule = next(b for b in _code_blocks(SETUP.read_text(), "yaml") if "allow_self_approval" in b)
    shipped = yaml.safe_load((ROOT / "config" / "policy.yaml").read_text())
    shipped["pipelines"] = yaml.safe_load(rule)["pipelines"] + shipped["pipelines"]
    policy = load_policy(yaml.safe_dump(shipped))
    example = policy.resolve("approval-gate-example-Pipeline-1A2B3C4D5E6F", "Approval", "Approve")
    assert example.allow_self_approval is True
    assert policy.resolve("prod-web", "Approval", "Approve").allow_self_approval is False
    assert policy.resolve("web", "Approval", "Approve").allow_self_approval is False


# ---------------------------------------------------------------------------------------
# Secrets: read without echo, handed on through pipes, never in argv or in a file.
# ---------------------------------------------------------------------------------------

BOT_TOKEN = "xoxb-1111-2222-SeCrEtBoT"
SIGNING_SECRET = "0123456789abcdefSeCrEtSiGn"
NEW_SIGNING_SECRET = "fedcba9876543210NeWsIgN"

#: Stand-ins that record their argv (what `ps` would show) and keep the secret in a file,
#: reading `--secret-string file://PATH` as the AWS CLI does.
STAND_IN = """\
import json, os, sys
log = os.environ["H6_LOG"]; store = os.environ["H6_STORE"]
name = os.path.basename(sys.argv[0]); args = sys.argv[1:]
with open(log, "a") as f:
    f.write(json.dumps([name, *args]) + "\\n")
if name == "python3":
    os.execv(os.environ["H6_PYTHON"], [os.environ["H6_PYTHON"], *args])
if name == "curl":
    assert "@-" in args
    header = sys.stdin.read()
    with open(log, "a") as f:
        sent = header.startswith("Authorization: Bearer xoxb-")
        f.write(json.dumps(["curl-stdin", sent]) + "\\n")
    print('{"ok":true,"team_id":"T0123ABCD"}')
    sys.exit(0)
op = args[1]
if op == "get-secret-value":
    print(open(store).read())
elif op in ("create-secret", "put-secret-value"):
    value = args[args.index("--secret-string") + 1]
    if value.startswith("file://"):
        value = open(value[len("file://"):]).read()
    open(store, "w").write(value)
    print("arn:aws:secretsmanager:eu-west-1:123456789012:secret:approval-gate/slack-AbCdEf")
"""


def _run_with_stand_ins(tmp_path: Path, script: str, pasted: str) -> list[list[Any]]:
    if BASH is None:
        pytest.skip("bash is not installed")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name in ("aws", "curl", "python3"):
        path = bin_dir / name
        path.write_text(f"#!{sys.executable}\n{STAND_IN}")
        path.chmod(0o755)
    log = tmp_path / "argv.jsonl"
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "H6_LOG": str(log),
        "H6_STORE": str(tmp_path / "store.json"),
        "H6_PYTHON": sys.executable,
    }
    subprocess.run([BASH, "-c", script], input=pasted, text=True, env=env, cwd=tmp_path, check=True)
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def _secret_blocks() -> tuple[str, str]:
    text = SETUP.read_text()
    setup = (
        _code_blocks(_section(text, "2. Collect"), "sh")[0]
        + _code_blocks(_section(text, "3. Store the secret"), "sh")[0]
    )
    rotation = _code_blocks(
        _section((DOCS / "operations.md").read_text(), "Rotating the Slack signing secret"), "sh"
    )[0]
    return setup, rotation


def test_no_heredoc_or_secret_file_in_the_secret_steps() -> None:
    for block in _secret_blocks():
        assert "<<" not in block
        assert "read -rs" in block
        assert re.findall(r"--secret-string (\S+)", block) == ["file:///dev/stdin"]


def test_setup_stores_both_secrets_without_putting_them_on_a_command_line(
    tmp_path: Path,
) -> None:
    setup, _ = _secret_blocks()
    calls = _run_with_stand_ins(tmp_path, setup, f"{BOT_TOKEN}\n{SIGNING_SECRET}\n")
    for call in calls:
        assert not any(s in str(arg) for arg in call for s in (BOT_TOKEN, SIGNING_SECRET)), call
    assert ["curl-stdin", True] in calls
    assert any(call[:3] == ["aws", "secretsmanager", "create-secret"] for call in calls)
    stored = json.loads((tmp_path / "store.json").read_text())
    credentials = SlackCredentials.from_secret(stored)
    assert (credentials.bot_token, credentials.signing_secret) == (BOT_TOKEN, SIGNING_SECRET)
    assert (credentials.team_id, credentials.app_id) == ("T0123ABCD", "A0123ABCD")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["argv.jsonl", "bin", "store.json"]


def test_rotation_replaces_the_signing_secret_only_and_an_empty_paste_stores_nothing(
    tmp_path: Path,
) -> None:
    _, rotation = _secret_blocks()
    before = {
        "bot_token": BOT_TOKEN,
        "signing_secret": SIGNING_SECRET,
        "team_id": "T1",
        "app_id": "A1",
    }
    store = tmp_path / "store.json"
    store.write_text(json.dumps(before))

    _run_with_stand_ins(tmp_path, rotation, "\n")
    assert json.loads(store.read_text()) == before

    calls = _run_with_stand_ins(tmp_path, rotation, f"{NEW_SIGNING_SECRET}\n")
    assert any(call[:3] == ["aws", "secretsmanager", "put-secret-value"] for call in calls)
    for call in calls:
        assert not any(NEW_SIGNING_SECRET in str(arg) for arg in call), call
    assert json.loads(store.read_text()) == {**before, "signing_secret": NEW_SIGNING_SECRET}


@pytest.mark.parametrize("doc", ["setup.md", "security.md"])
def test_no_checkov_or_test_counts_that_rot(doc: str) -> None:
    text = (DOCS / doc).read_text()
    assert not re.search(r"Passed checks: \d+|passed \d+ checks|\d+ passed in", text)
