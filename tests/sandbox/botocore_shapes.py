"""botocore's service models as the judge of what the sandbox's fake AWS services answer.

`response_problems(service, operation, response)` checks one answer, as the fake gave it
before any client parsed it, against the operation's output shape: member names (none the
model does not know), types, required members, enum values, lengths, ranges and patterns.
It reuses botocore's input validator (`botocore.validate.ParamValidator`), which walks a
shape checking types, required and unknown members, and adds what that one leaves to the
server: enums, maximums and patterns. `error_problem(service, operation, code)` checks an
error code against the operation's modelled errors, plus the common errors every AWS API
may answer (`COMMON_ERRORS`).
"""

from __future__ import annotations

import functools
import re
from typing import Any

import botocore.session
from botocore.model import OperationModel, ServiceModel, Shape
from botocore.validate import ParamValidator, ValidationErrors

__all__ = [
    "CODECOMMIT_OPERATIONS",
    "COMMON_ERRORS",
    "call_problems",
    "error_problem",
    "modelled_errors",
    "response_problems",
]

#: What the fake CodePipeline answers for CodeCommit (its pipelines' source repositories).
CODECOMMIT_OPERATIONS = frozenset({"GetCommit"})

#: Errors any operation may answer although no operation's model lists them: the AWS API
#: references' "Common Errors". Only those a fake raises are allowed here, each for a reason:
#: - ThrottlingException: "The request was denied due to request throttling" (400). Neither
#:   CodePipeline's nor CodeCommit's model lists it for any operation; the fault kind
#:   `throttled` answers it, as CodePipeline does when a caller exceeds its rate.
COMMON_ERRORS = frozenset({"ThrottlingException"})


@functools.cache
def _service(service: str) -> ServiceModel:
    return botocore.session.get_session().get_service_model(service)


def _operation(service: str, operation: str) -> OperationModel:
    return _service(service).operation_model(operation)


def modelled_errors(service: str, operation: str) -> frozenset[str]:
    """The error codes the operation's model lists (its `errors`)."""
    codes = set()
    for shape in _operation(service, operation).error_shapes:
        codes.add(shape.name)
        code = (shape.metadata.get("error") or {}).get("code")
        if code:
            codes.add(str(code))
    return frozenset(codes)


def error_problem(service: str, operation: str, code: str) -> str | None:
    """Why ``code`` is not an error ``operation`` can answer, or None if it is."""
    if code in modelled_errors(service, operation) or code in COMMON_ERRORS:
        return None
    listed = ", ".join(sorted(modelled_errors(service, operation)))
    return f"{service} {operation} does not answer {code} (its model lists {listed})"


class _Errors(ValidationErrors):
    """botocore's report, and the reasons the stricter checks add."""

    def _format_error(self, error: tuple[str, str, dict[str, Any]]) -> str:
        reason, name, extra = error
        where = self._get_name(name)
        if reason == "not in enum":
            return f"{where}: {extra['param']!r} is not one of {extra['valid']}"
        if reason == "too large":
            return f"{where}: {extra['param']!r} is more than the maximum {extra['max_allowed']}"
        if reason == "pattern":
            return f"{where}: {extra['param']!r} does not match {extra['pattern']!r}"
        if reason == "boolean for number":
            return f"{where}: {extra['param']!r} is a boolean, not a number"
        formatted: str = super()._format_error(error)
        return formatted


class OutputValidator(ParamValidator):
    """botocore's ParamValidator, for answers: enums, maximums and patterns checked too."""

    # Members with any of these are walked one by one, also inside lists.
    VALIDATED_METADATA_ATTRS = ParamValidator.VALIDATED_METADATA_ATTRS | {
        "max",
        "pattern",
        "enum",
    }

    def validate(self, params: Any, shape: Shape) -> _Errors:
        errors = _Errors()
        self._validate(params, shape, errors, name="")
        return errors

    def _shape_has_constraints(self, shape: Shape) -> bool:
        return bool(super()._shape_has_constraints(shape) or getattr(shape, "enum", None))

    def _validate_string(self, param: Any, shape: Shape, errors: Any, name: str) -> None:
        super()._validate_string(param, shape, errors, name)
        if not isinstance(param, str):
            return
        enum = getattr(shape, "enum", None)
        if enum and param not in enum:
            errors.report(name, "not in enum", param=param, valid=list(enum))
        _at_most(name, len(param), shape, errors)
        pattern = shape.metadata.get("pattern")
        if pattern and not re.fullmatch(pattern, param, flags=re.DOTALL):
            errors.report(name, "pattern", param=param, pattern=pattern)

    def _validate_list(self, param: Any, shape: Shape, errors: Any, name: str) -> None:
        super()._validate_list(param, shape, errors, name)
        if isinstance(param, list | tuple):
            _at_most(name, len(param), shape, errors)

    def _validate_integer(self, param: Any, shape: Shape, errors: Any, name: str) -> None:
        if isinstance(param, bool):
            errors.report(name, "boolean for number", param=param)
            return
        super()._validate_integer(param, shape, errors, name)
        if isinstance(param, int):
            _at_most(name, param, shape, errors)

    _validate_long = _validate_integer


def _at_most(name: str, value: int, shape: Shape, errors: Any) -> None:
    maximum = shape.metadata.get("max")
    if maximum is not None and value > maximum:
        errors.report(name, "too large", param=value, max_allowed=maximum)


def response_problems(service: str, operation: str, response: Any) -> list[str]:
    """What in ``response`` botocore's output shape of ``operation`` does not allow."""
    shape = _operation(service, operation).output_shape
    if shape is None:
        return [] if response in ({}, None) else [f"{operation} answers nothing: {response!r}"]
    report = OutputValidator().validate(response, shape)
    if not report.has_errors():
        return []
    return [f"{service} {operation}: {line}" for line in report.generate_report().splitlines()]


def call_problems(calls: list[dict[str, Any]]) -> list[str]:
    """What botocore's models do not allow in a fake's recorded calls (its ``calls()`` or
    ``GET /_sandbox/codepipeline/calls``): each ``response`` against the operation's output
    shape, each ``error`` code against the operation's errors."""
    problems = []
    for call in calls:
        method = str(call["method"])
        service = "codecommit" if method in CODECOMMIT_OPERATIONS else "codepipeline"
        if "response" in call:
            problems += response_problems(service, method, call["response"])
        elif "error" in call:
            problem = error_problem(service, method, str(call["error"]["code"]))
            if problem is not None:
                problems.append(problem)
        else:
            problems.append(f"{service} {method}: recorded with neither response nor error")
    return problems
