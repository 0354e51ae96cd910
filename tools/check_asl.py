"""Our own static checks for Amazon States Language definitions: house style and the traps
that the ASL validators accept.

The ASL validators (``tools/asl/validate.js``, run by ``make lint``: AWS's
amazon-states-language-service and the community asl-validator) check a definition's
structure and ASL's own rules. They accept a waiting task that retries its own timeouts, a
heartbeat handler that an earlier handler hides, a ``${Name}`` that no
``DefinitionSubstitutions`` key fills, and a state without a ``Comment``: this tool catches
those, before a deploy or a sandbox run does.

Usage::

    python tools/check_asl.py [--template template.yaml] statemachine/*.asl.json

It prints ``FILE: STATE: message`` for every finding and exits 1, or prints
``ok: N states checked in FILE`` for each clean file and exits 0. Findings about the
definition as a whole use ``(definition)`` in place of a state name. States in Parallel
branches and Map processors are checked like the others.

Checks:
 1. Every state has a non-empty ``Comment``.
 2. Every Task has a non-empty ``Retry`` and a ``TimeoutSeconds`` (in a JSONPath state,
    ``TimeoutSecondsPath`` will do); a constant ``HeartbeatSeconds`` is smaller than a
    constant ``TimeoutSeconds``.
 3. A task waiting for a token (``.waitForTaskToken``) retries neither ``States.ALL``,
    ``States.Timeout`` nor ``States.HeartbeatTimeout``: a retried timeout makes reminders and
    deadlines vanish silently. A retrier with ``MaxAttempts: 0`` retries nothing and is allowed.
 4. In Catch and Retry lists, a ``States.HeartbeatTimeout`` handler comes before any handler
    matching ``States.Timeout`` or ``States.ALL`` (both also match a heartbeat timeout);
    ``States.ALL`` stands alone in its ``ErrorEquals`` and in the last handler.
 5. With a template: every ``${Name}`` in the definition has a ``DefinitionSubstitutions`` key,
    and every key is used.
 6. Every retrier that retries (``MaxAttempts`` > 0; the default is 3) sets
    ``JitterStrategy: FULL``.
 7. Fields match the state's query language: JSONPath-only fields (``Parameters``,
    ``ResultPath``, ...) are findings in JSONata states and JSONata-only fields (``Arguments``,
    ``Output``, ...) in JSONPath states, on the state, its Choice rules and its catchers. A
    state inherits the language of the definition or of the Parallel/Map state around it; a
    JSONata scope cannot switch back to JSONPath (AWS rejects such a definition). The
    validators miss the catchers and the switch; the rest they report as a state or Choice
    rule that matches none of their schemas, without naming the field.

The ASL validators check the rest, at the top level and in every branch and processor:

- amazon-states-language-service (AWS's, behind the AWS Toolkit's ASL editor): every
  ``StartAt``, ``Next``, ``Default``, Choice rule and Catch target names a state of the same
  ``States`` map; every state is reachable; exactly one of ``Next`` / ``End``, and neither on
  Choice, Succeed and Fail; state types and required fields (``Choices``, ``Branches``, each
  rule's and catcher's ``Next``, ``ErrorEquals``); ``TimeoutSeconds`` and
  ``HeartbeatSeconds`` are integers up to 99999999 or JSONata expressions; ``MaxAttempts``
  >= 0, ``BackoffRate`` >= 1; ``QueryLanguage`` values; duplicate JSON keys.
- asl-validator (the ASL JSON schemas and graph checks): state names unique in the whole
  state machine; ``End`` is ``true``; a Map has an ``ItemProcessor``; ``TimeoutSeconds`` and
  ``HeartbeatSeconds`` are positive, and no JSONata expression in a JSONPath state; and most
  of the above again.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
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

# Fields that hold a nested state machine; their states are checked like the others.
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


class TemplateError(Exception):
    """The template cannot be read, or its state machine resource is malformed."""


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


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


class _Checker:
    """Walks one definition and collects findings as ``STATE: message`` strings.

    A part that is malformed (a state that is no object, a Retry that is no list, ...) is
    skipped without a finding: the ASL validators report it, and its rules cannot be read.
    """

    def __init__(self, substitutions: set[str] | None) -> None:
        self.substitutions = substitutions
        self.findings: list[str] = []
        self.state_count = 0
        self._placeholders: dict[str, list[str]] = {}

    def report(self, where: str, message: str) -> None:
        self.findings.append(f"{where}: {message}")

    def check(self, definition: object) -> list[str]:
        if isinstance(definition, Mapping):
            language = definition.get("QueryLanguage")
            self._scope(
                definition, DEFINITION, language if language in QUERY_LANGUAGES else JSONPATH
            )
        if self.substitutions is not None:
            self._check_substitutions(self.substitutions)
        return self.findings

    # Scopes: the definition, each Parallel branch, each Map processor.

    def _scope(self, machine: Mapping[str, Any], owner: str, language: str) -> None:
        self._note_placeholders(owner, {k: v for k, v in machine.items() if k != "States"})
        states = machine.get("States")
        if not isinstance(states, Mapping):
            return
        for name, state in states.items():
            self.state_count += 1
            if isinstance(state, Mapping):
                self._state(name, state, language)

    # One state.

    def _state(self, name: str, state: Mapping[str, Any], inherited_language: str) -> None:
        self._note_placeholders(name, {k: v for k, v in state.items() if k not in NESTED_FIELDS})
        kind = state.get("Type")
        comment = state.get("Comment")
        if not isinstance(comment, str) or not comment.strip():
            self.report(name, "every state needs a non-empty Comment")
        language = self._language(name, state, inherited_language)
        self._check_query_language_fields(name, state, language)
        if kind == "Task":
            self._check_task(name, state, language)
        elif "Retry" in state:
            self._check_retriers(name, state["Retry"], waiting=False)
        if "Catch" in state:
            self._check_catchers(name, state["Catch"])
        for nested in self._nested_machines(state, kind):
            self._scope(nested, name, language)

    @staticmethod
    def _nested_machines(state: Mapping[str, Any], kind: object) -> list[Mapping[str, Any]]:
        if kind == "Parallel":
            branches = state.get("Branches")
            found = branches if isinstance(branches, list) else []
        elif kind == "Map":
            found = [state.get("ItemProcessor", state.get("Iterator"))]
        else:
            found = []
        return [machine for machine in found if isinstance(machine, Mapping)]

    def _language(self, name: str, state: Mapping[str, Any], inherited: str) -> str:
        own = state.get("QueryLanguage")
        if own not in QUERY_LANGUAGES:
            return inherited
        if inherited == JSONATA and own == JSONPATH:
            self.report(
                name,
                "QueryLanguage JSONPath inside a JSONata scope: Step Functions cannot switch "
                "a JSONata state machine back to JSONPath",
            )
        return str(own)

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
        self._check_retriers(name, retriers, waiting=waiting)

        timeout = state.get("TimeoutSeconds")
        if timeout is None and not (language == JSONPATH and "TimeoutSecondsPath" in state):
            self.report(
                name,
                "a Task needs TimeoutSeconds (without it a stuck task waits 99999999 s)",
            )
        heartbeat = state.get("HeartbeatSeconds")
        # Only constants compare here; an expression's value is known at run time.
        if _is_int(heartbeat) and _is_int(timeout) and heartbeat >= timeout:
            self.report(name, "HeartbeatSeconds must be smaller than TimeoutSeconds")

    def _check_retriers(self, name: str, retriers: object, *, waiting: bool) -> None:
        if not isinstance(retriers, list):
            return
        self._check_error_order(name, "Retry", retriers)
        for index, retrier in enumerate(retriers):
            if not isinstance(retrier, Mapping):
                continue
            if retrier.get("MaxAttempts", DEFAULT_MAX_ATTEMPTS) == 0:
                continue  # a retrier that retries nothing only stops later retriers matching
            where = f"Retry[{index}]"
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

    def _check_catchers(self, name: str, catchers: object) -> None:
        if isinstance(catchers, list):
            self._check_error_order(name, "Catch", catchers)

    def _check_error_order(self, name: str, field: str, handlers: list[Any]) -> None:
        """Rule 4: what AWS requires of States.ALL, and heartbeat handlers first."""
        broad: int | None = None  # the first handler that also matches a heartbeat timeout
        last = len(handlers) - 1
        for index, handler in enumerate(handlers):
            errors = handler.get("ErrorEquals") if isinstance(handler, Mapping) else None
            if not isinstance(errors, list):
                continue
            where = f"{field}[{index}]"
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
    the placeholder check (rule 5).
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


def _check_file(path: Path, template: Path | None) -> tuple[list[str], int]:
    try:
        definition = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        return [f"{DEFINITION}: cannot read the definition: {error}"], 0
    findings: list[str] = []
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
