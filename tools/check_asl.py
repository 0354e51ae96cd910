"""Static checks for Amazon States Language definitions.

cfn-lint, ``sam validate`` and moto accept a definition whose ``Next`` names no state, whose
states can never run, or whose waiting task retries its own timeouts. This tool catches those
mistakes, and our house style, before a deploy or a sandbox run does.

Usage::

    python tools/check_asl.py [--template template.yaml] statemachine/*.asl.json

It prints ``FILE: STATE: message`` for every finding and exits 1, or prints
``ok: N states checked in FILE`` for each clean file and exits 0. Findings about the
definition as a whole use ``(definition)`` in place of a state name.

Checks:
 1. ``StartAt``, ``Next``, ``Default`` and every Choice rule and Catch ``Next`` name a state of
    the same ``States`` map (Parallel branches and Map processors are maps of their own).
 2. Every state is reachable from ``StartAt``; state names are unique in the whole machine.
 3. Every state other than Choice, Succeed and Fail has exactly one of ``Next`` / ``End``.
 4. Every state has a non-empty ``Comment``.
 5. Every Task has a non-empty ``Retry`` and a ``TimeoutSeconds`` (a positive integer or a
    JSONata ``{% ... %}`` expression); ``HeartbeatSeconds`` has the same form and is smaller.
 6. A task waiting for a token (``.waitForTaskToken``) retries neither ``States.ALL``,
    ``States.Timeout`` nor ``States.HeartbeatTimeout``: a retried timeout makes reminders and
    deadlines vanish silently. A retrier with ``MaxAttempts: 0`` retries nothing and is allowed.
 7. In Catch and Retry lists, a ``States.HeartbeatTimeout`` handler comes before any handler
    matching ``States.Timeout`` or ``States.ALL`` (both also match a heartbeat timeout);
    ``States.ALL`` stands alone in its ``ErrorEquals`` and in the last handler.
 8. With a template: every ``${Name}`` in the definition has a ``DefinitionSubstitutions`` key,
    and every key is used.
 9. Every retrier that retries (``MaxAttempts`` > 0; the default is 3) sets
    ``JitterStrategy: FULL``; ``BackoffRate``, when set, is at least 1.
10. Fields match the state's query language: JSONPath-only fields (``Parameters``,
    ``ResultPath``, ...) are findings in JSONata states and JSONata-only fields (``Arguments``,
    ``Output``, ...) in JSONPath states. A state inherits the language of the definition or of
    the Parallel/Map state around it; a JSONata scope cannot switch back to JSONPath (AWS
    rejects such a definition).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeGuard

__all__ = [
    "TemplateError",
    "check_definition",
    "definition_substitutions",
    "main",
]

DEFINITION = "(definition)"

JSONPATH = "JSONPath"
JSONATA = "JSONata"
QUERY_LANGUAGES = (JSONPATH, JSONATA)

STATE_TYPES = frozenset({"Task", "Pass", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map"})
# States that end or branch by their own rules and so take neither Next nor End.
NO_TRANSITION_TYPES = frozenset({"Choice", "Succeed", "Fail"})
# Fields that hold a nested state machine; their states are checked as scopes of their own.
NESTED_FIELDS = ("Branches", "ItemProcessor", "Iterator")

JSONPATH_ONLY_FIELDS = (
    "InputPath",
    "Parameters",
    "ResultSelector",
    "ResultPath",
    "OutputPath",
    "TimeoutSecondsPath",
    "HeartbeatSecondsPath",
    "ItemsPath",
    "MaxConcurrencyPath",
    "ToleratedFailureCountPath",
    "ToleratedFailurePercentagePath",
    "SecondsPath",
    "TimestampPath",
    "ErrorPath",
    "CausePath",
)
JSONATA_ONLY_FIELDS = ("Arguments", "Output", "Items")
STATE_FIELDS = "state"
# Fields that a state of the given query language must not use: on the state itself, on its
# Choice rules and on its catchers.
FOREIGN_FIELDS: dict[str, dict[str, tuple[str, ...]]] = {
    JSONATA: {
        STATE_FIELDS: JSONPATH_ONLY_FIELDS,
        "Choices": ("Variable", "And", "Or", "Not"),
        "Catch": ("ResultPath",),
    },
    JSONPATH: {
        STATE_FIELDS: JSONATA_ONLY_FIELDS,
        "Choices": ("Condition",),
        "Catch": ("Output",),
    },
}

STATES_ALL = "States.ALL"
STATES_TIMEOUT = "States.Timeout"
STATES_HEARTBEAT_TIMEOUT = "States.HeartbeatTimeout"
TIMEOUT_ERRORS = (STATES_ALL, STATES_TIMEOUT, STATES_HEARTBEAT_TIMEOUT)

CALLBACK_SUFFIX = ".waitForTaskToken"
DEFAULT_MAX_ATTEMPTS = 3  # ASL's default when a retrier omits MaxAttempts

STATE_MACHINE_TYPES = frozenset(
    {"AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine"}
)
DEFINITION_FILE_PROPERTIES = ("DefinitionUri", "DefinitionS3Location")

PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_.:-]+)\}")
JSONATA_EXPRESSION = re.compile(r"\{%.*%\}", re.DOTALL)


class TemplateError(Exception):
    """The template cannot be read, or its state machine resource is malformed."""


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _placeholders(value: object) -> Iterable[str]:
    """Yield every ``${Name}`` in the keys and strings of a JSON value."""
    if isinstance(value, str):
        yield from PLACEHOLDER.findall(value)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _placeholders(key)
            yield from _placeholders(item)
    elif isinstance(value, list):
        for item in value:
            yield from _placeholders(item)


def _transitions(state: Mapping[str, Any]) -> list[tuple[str, object]]:
    """Each (field, target) pair through which a state can hand over to another."""
    found: list[tuple[str, object]] = []
    for field in ("Next", "Default"):
        if field in state:
            found.append((field, state[field]))
    for field in ("Choices", "Catch"):
        rules = state.get(field)
        if isinstance(rules, list):
            for index, rule in enumerate(rules):
                if isinstance(rule, Mapping) and "Next" in rule:
                    found.append((f"{field}[{index}].Next", rule["Next"]))
    return found


class _Checker:
    """Walks one definition and collects findings as ``STATE: message`` strings."""

    def __init__(self, substitutions: set[str] | None) -> None:
        self.substitutions = substitutions
        self.findings: list[str] = []
        self.state_count = 0
        self._names: Counter[str] = Counter()
        self._placeholders: dict[str, list[str]] = {}

    def report(self, where: str, message: str) -> None:
        self.findings.append(f"{where}: {message}")

    def check(self, definition: object) -> list[str]:
        if not isinstance(definition, Mapping):
            self.report(DEFINITION, "the definition must be a JSON object")
            return self.findings
        language = definition.get("QueryLanguage", JSONPATH)
        if language not in QUERY_LANGUAGES:
            self.report(DEFINITION, f"QueryLanguage must be JSONPath or JSONata, not {language!r}")
            language = JSONPATH
        self._scope(definition, DEFINITION, language)
        for name, count in self._names.items():
            if count > 1:
                self.report(
                    name,
                    f"the state name is used {count} times; "
                    "names must be unique in the whole state machine",
                )
        if self.substitutions is not None:
            self._check_substitutions(self.substitutions)
        return self.findings

    # Scopes: the definition, each Parallel branch, each Map processor.

    def _scope(self, machine: Mapping[str, Any], owner: str, language: str) -> None:
        self._note_placeholders(owner, {k: v for k, v in machine.items() if k != "States"})
        states = machine.get("States")
        if not isinstance(states, Mapping) or not states:
            self.report(owner, "States must be a non-empty object")
            return
        start = machine.get("StartAt")
        start_ok = isinstance(start, str) and start in states
        if not start_ok:
            self.report(owner, f"StartAt {start!r} names no state in the same States map")
        for name, state in states.items():
            self._names[name] += 1
            self.state_count += 1
            if not isinstance(state, Mapping):
                self.report(name, "a state must be a JSON object")
                continue
            self._state(name, state, states, language)
        if start_ok:
            self._check_reachable(str(start), states)

    def _check_reachable(self, start: str, states: Mapping[str, Any]) -> None:
        seen = {start}
        pending = [start]
        while pending:
            state = states[pending.pop()]
            if not isinstance(state, Mapping):
                continue
            for _, target in _transitions(state):
                if isinstance(target, str) and target in states and target not in seen:
                    seen.add(target)
                    pending.append(target)
        for name in states:
            if name not in seen:
                self.report(name, f"unreachable: no path from StartAt {start!r} leads here")

    # One state.

    def _state(
        self,
        name: str,
        state: Mapping[str, Any],
        states: Mapping[str, Any],
        inherited_language: str,
    ) -> None:
        self._note_placeholders(name, {k: v for k, v in state.items() if k not in NESTED_FIELDS})
        kind = state.get("Type")
        if kind not in STATE_TYPES:
            self.report(name, f"Type {kind!r} is not a state type")
        comment = state.get("Comment")
        if not isinstance(comment, str) or not comment.strip():
            self.report(name, "every state needs a non-empty Comment")
        language = self._language(name, state, inherited_language)
        for field, target in _transitions(state):
            if not isinstance(target, str) or target not in states:
                self.report(name, f"{field} {target!r} names no state in the same States map")
        self._check_next_or_end(name, state, kind)
        self._check_query_language_fields(name, state, language)
        if kind == "Task":
            self._check_task(name, state, language)
        elif "Retry" in state:
            self._check_retriers(name, state["Retry"], waiting=False)
        if "Catch" in state:
            self._check_catchers(name, state["Catch"])
        if kind == "Choice":
            self._check_choice(name, state)
        elif kind == "Parallel":
            self._check_parallel(name, state, language)
        elif kind == "Map":
            self._check_map(name, state, language)

    def _language(self, name: str, state: Mapping[str, Any], inherited: str) -> str:
        own = state.get("QueryLanguage")
        if own is None:
            return inherited
        if own not in QUERY_LANGUAGES:
            self.report(name, f"QueryLanguage must be JSONPath or JSONata, not {own!r}")
            return inherited
        if inherited == JSONATA and own == JSONPATH:
            self.report(
                name,
                "QueryLanguage JSONPath inside a JSONata scope: Step Functions cannot switch "
                "a JSONata state machine back to JSONPath",
            )
        return str(own)

    def _check_next_or_end(self, name: str, state: Mapping[str, Any], kind: object) -> None:
        if kind in NO_TRANSITION_TYPES:
            for field in ("Next", "End"):
                if field in state:
                    self.report(name, f"a {kind} state must not set {field}")
            return
        has_next, has_end = "Next" in state, "End" in state
        if has_next and has_end:
            self.report(name, "sets both Next and End; it needs exactly one")
        elif not has_next and not has_end:
            self.report(name, "sets neither Next nor End; it needs exactly one")
        elif has_end and state["End"] is not True:
            self.report(name, f"End must be true, not {state['End']!r}")

    def _check_query_language_fields(
        self, name: str, state: Mapping[str, Any], language: str
    ) -> None:
        foreign = FOREIGN_FIELDS[language]
        for field in foreign[STATE_FIELDS]:
            if field in state:
                self.report(name, f"{field} is not a {language} field")
        for list_field in ("Choices", "Catch"):
            entries = state.get(list_field)
            if not isinstance(entries, list):
                continue
            for index, entry in enumerate(entries):
                if not isinstance(entry, Mapping):
                    continue
                for field in foreign[list_field]:
                    if field in entry:
                        self.report(
                            name, f"{list_field}[{index}].{field} is not a {language} field"
                        )

    # Tasks, retriers and catchers.

    def _check_task(self, name: str, state: Mapping[str, Any], language: str) -> None:
        resource = state.get("Resource")
        waiting = isinstance(resource, str) and resource.endswith(CALLBACK_SUFFIX)
        retriers = state.get("Retry")
        if not isinstance(retriers, list) or not retriers:
            self.report(name, "a Task needs a non-empty Retry list")
        if retriers is not None:
            self._check_retriers(name, retriers, waiting=waiting)

        timeout = state.get("TimeoutSeconds")
        if "TimeoutSeconds" in state:
            self._check_seconds(name, "TimeoutSeconds", timeout, language)
        elif not (language == JSONPATH and "TimeoutSecondsPath" in state):
            self.report(
                name,
                "a Task needs TimeoutSeconds (without it a stuck task waits 99999999 s)",
            )
        if "HeartbeatSeconds" in state:
            heartbeat = state["HeartbeatSeconds"]
            self._check_seconds(name, "HeartbeatSeconds", heartbeat, language)
            if _is_int(heartbeat) and _is_int(timeout) and heartbeat >= timeout:
                self.report(name, "HeartbeatSeconds must be smaller than TimeoutSeconds")

    def _check_seconds(self, name: str, field: str, value: object, language: str) -> None:
        if _is_int(value) and value > 0:
            return
        if isinstance(value, str) and JSONATA_EXPRESSION.fullmatch(value):
            if language != JSONATA:
                self.report(
                    name,
                    f"{field} is a JSONata expression in a JSONPath state; "
                    f"use {field}Path or QueryLanguage JSONata",
                )
            return
        self.report(
            name,
            f"{field} must be a positive integer or a JSONata {{% ... %}} expression, "
            f"not {value!r}",
        )

    def _check_retriers(self, name: str, retriers: object, *, waiting: bool) -> None:
        if not isinstance(retriers, list):
            self.report(name, "Retry must be a list")
            return
        self._check_error_order(name, "Retry", retriers)
        for index, retrier in enumerate(retriers):
            if not isinstance(retrier, Mapping):
                continue
            where = f"Retry[{index}]"
            attempts = retrier.get("MaxAttempts", DEFAULT_MAX_ATTEMPTS)
            if not _is_int(attempts) or attempts < 0:
                self.report(name, f"{where}.MaxAttempts must be a non-negative integer")
            if attempts == 0:
                continue  # a retrier that retries nothing only stops later retriers matching
            errors = retrier.get("ErrorEquals")
            errors = errors if isinstance(errors, list) else []
            if waiting:
                retried = [error for error in TIMEOUT_ERRORS if error in errors]
                if retried:
                    self.report(
                        name,
                        f"{where} retries {', '.join(retried)} on a task that waits for a "
                        "task token: a retried timeout makes reminders and deadlines vanish "
                        "silently",
                    )
            if retrier.get("JitterStrategy") != "FULL":
                self.report(name, f'{where} must set JitterStrategy: "FULL"')
            if "BackoffRate" in retrier:
                rate = retrier["BackoffRate"]
                if not _is_number(rate) or rate < 1:
                    self.report(name, f"{where}.BackoffRate must be a number >= 1, not {rate!r}")

    def _check_catchers(self, name: str, catchers: object) -> None:
        if not isinstance(catchers, list):
            self.report(name, "Catch must be a list")
            return
        self._check_error_order(name, "Catch", catchers)
        for index, catcher in enumerate(catchers):
            if isinstance(catcher, Mapping) and "Next" not in catcher:
                self.report(name, f"Catch[{index}] has no Next")

    def _check_error_order(self, name: str, field: str, handlers: list[Any]) -> None:
        """Rule 7: what AWS requires of States.ALL, and heartbeat handlers first."""
        broad: int | None = None  # the first handler that also matches a heartbeat timeout
        last = len(handlers) - 1
        for index, handler in enumerate(handlers):
            where = f"{field}[{index}]"
            errors = handler.get("ErrorEquals") if isinstance(handler, Mapping) else None
            if (
                not isinstance(errors, list)
                or not errors
                or not all(isinstance(error, str) for error in errors)
            ):
                self.report(name, f"{where}.ErrorEquals must be a non-empty list of error names")
                continue
            if STATES_ALL in errors:
                if len(errors) > 1:
                    self.report(name, f"{where}: States.ALL must be alone in its ErrorEquals")
                if index != last:
                    self.report(name, f"{where}: States.ALL must be in the last {field} entry")
            if STATES_HEARTBEAT_TIMEOUT in errors and broad is not None:
                self.report(
                    name,
                    f"{where} handles States.HeartbeatTimeout after {field}[{broad}] already "
                    "matched it (States.Timeout and States.ALL also match a heartbeat "
                    "timeout); put it first",
                )
            if broad is None and (STATES_TIMEOUT in errors or STATES_ALL in errors):
                broad = index

    # Choice, Parallel, Map.

    def _check_choice(self, name: str, state: Mapping[str, Any]) -> None:
        rules = state.get("Choices")
        if not isinstance(rules, list) or not rules:
            self.report(name, "a Choice state needs a non-empty Choices list")
            return
        for index, rule in enumerate(rules):
            if not isinstance(rule, Mapping) or "Next" not in rule:
                self.report(name, f"Choices[{index}] has no Next")

    def _check_parallel(self, name: str, state: Mapping[str, Any], language: str) -> None:
        branches = state.get("Branches")
        if not isinstance(branches, list) or not branches:
            self.report(name, "a Parallel state needs a non-empty Branches list")
            return
        for index, branch in enumerate(branches):
            if isinstance(branch, Mapping):
                self._scope(branch, name, language)
            else:
                self.report(name, f"Branches[{index}] must be an object")

    def _check_map(self, name: str, state: Mapping[str, Any], language: str) -> None:
        processor = state.get("ItemProcessor", state.get("Iterator"))
        if isinstance(processor, Mapping):
            self._scope(processor, name, language)
        else:
            self.report(name, "a Map state needs an ItemProcessor (or Iterator) object")

    # DefinitionSubstitutions.

    def _note_placeholders(self, where: str, value: object) -> None:
        for placeholder in _placeholders(value):
            places = self._placeholders.setdefault(placeholder, [])
            if where not in places:
                places.append(where)

    def _check_substitutions(self, substitutions: set[str]) -> None:
        for placeholder, places in self._placeholders.items():
            if placeholder not in substitutions:
                for where in places:
                    self.report(where, f"${{{placeholder}}} has no key in DefinitionSubstitutions")
        for key in sorted(substitutions - self._placeholders.keys()):
            self.report(DEFINITION, f"DefinitionSubstitutions key {key!r} is never used")


def check_definition(
    definition: Mapping[str, Any], substitutions: set[str] | None = None
) -> list[str]:
    """Return every finding for one parsed definition, each as ``STATE: message``.

    ``substitutions`` are the state machine's ``DefinitionSubstitutions`` keys; ``None`` skips
    the placeholder check (rule 8).
    """
    return _Checker(substitutions).check(definition)


def _load_template(template_path: Path) -> Mapping[str, Any]:
    # cfn-lint's decoder understands the short intrinsic tags (!Ref, !GetAtt, !Sub ...).
    from cfnlint.decode import decode

    template, matches = decode(str(template_path))
    if matches or not isinstance(template, Mapping):
        reasons = "; ".join(match.message for match in matches) or "not a template"
        raise TemplateError(f"cannot read template {template_path}: {reasons}")
    return template


def definition_substitutions(
    template_path: str | Path, definition_path: str | Path
) -> set[str] | None:
    """The ``DefinitionSubstitutions`` keys of the state machine whose definition file this is.

    The state machine resource is the one whose ``DefinitionUri`` (SAM) or
    ``DefinitionS3Location`` (CloudFormation) names ``definition_path``, relative to the
    template's directory. ``None`` if no resource does; if several do, the keys they all
    define. Raises ``TemplateError`` when the template cannot be read.
    """
    template_file = Path(template_path)
    template = _load_template(template_file)
    target = Path(definition_path).resolve()
    base = template_file.resolve().parent
    resources = template.get("Resources")
    if not isinstance(resources, Mapping):
        return None
    found: list[set[str]] = []
    for logical_id, resource in resources.items():
        if not isinstance(resource, Mapping) or resource.get("Type") not in STATE_MACHINE_TYPES:
            continue
        properties = resource.get("Properties")
        if not isinstance(properties, Mapping):
            continue
        uris = [properties.get(field) for field in DEFINITION_FILE_PROPERTIES]
        if not any(isinstance(uri, str) and (base / uri).resolve() == target for uri in uris):
            continue
        substitutions = properties.get("DefinitionSubstitutions", {})
        if not isinstance(substitutions, Mapping):
            raise TemplateError(f"{logical_id}: DefinitionSubstitutions must be a map")
        found.append({str(key) for key in substitutions})
    if not found:
        return None
    return set.intersection(*found)


def _load_definition(path: Path) -> tuple[object, list[str]]:
    """Parse a definition file; duplicate keys (which JSON silently collapses) are findings."""
    duplicates: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen = Counter(key for key, _ in items)
        duplicates.extend(
            f"{DEFINITION}: key {key!r} appears {count} times in one JSON object"
            for key, count in seen.items()
            if count > 1
        )
        return dict(items)

    definition = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=pairs)
    return definition, duplicates


def _check_file(path: Path, template: Path | None) -> tuple[list[str], int]:
    try:
        definition, findings = _load_definition(path)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        return [f"{DEFINITION}: cannot read the definition: {error}"], 0
    substitutions: set[str] | None = None
    if template is not None:
        try:
            substitutions = definition_substitutions(template, path)
        except TemplateError as error:
            findings.append(f"{DEFINITION}: {error}")
        else:
            if substitutions is None:
                findings.append(
                    f"{DEFINITION}: template {template} has no state machine whose "
                    "DefinitionUri or DefinitionS3Location names this file"
                )
    checker = _Checker(substitutions)
    findings.extend(checker.check(definition))
    return findings, checker.state_count


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Static checks for Amazon States Language files (see the module doc)."
    )
    parser.add_argument(
        "--template",
        type=Path,
        help="SAM/CloudFormation template; enables the DefinitionSubstitutions check",
    )
    parser.add_argument("definitions", nargs="+", type=Path, metavar="FILE")
    args = parser.parse_args(argv)

    failed = False
    for path in args.definitions:
        findings, state_count = _check_file(path, args.template)
        for finding in findings:
            print(f"{path}: {finding}")
        if findings:
            failed = True
        else:
            print(f"ok: {state_count} states checked in {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
