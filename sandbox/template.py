"""Read template.yaml as the one source of truth for the sandbox.

Resources, handlers, environment and state-machine substitutions all come from the
template, so what runs locally is what `sam deploy` creates. Only the intrinsic functions
the template uses where the sandbox looks (Ref, GetAtt, Sub, Join) are resolved.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Ref X → {"Ref": "X"}, !GetAtt A.B → ...)."""


def _construct_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if tag_suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        document = yaml.load(handle, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(document, dict):
        raise ValueError(f"{path} is not a template")
    return document


_SUB_VARIABLE = re.compile(r"\$\{([^}!]+)\}")


@dataclass
class Resolver:
    """Resolves intrinsic functions against the sandbox's resources."""

    parameters: dict[str, str]
    ref: Callable[[str], str]
    get_att: Callable[[str, str], str]
    pseudo: dict[str, str] = field(default_factory=dict)

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self._ref(str(arg))
            if key == "Fn::GetAtt":
                resource, attribute = arg if isinstance(arg, list) else str(arg).split(".", 1)
                return self.get_att(resource, attribute)
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::Join":
                separator, items = arg
                return separator.join(str(self.resolve(item)) for item in items)
        return {key: self.resolve(item) for key, item in value.items()}

    def _ref(self, name: str) -> str:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        return self.ref(name)

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(self.resolve(variables[name]))
            if "." in name:
                resource, attribute = name.split(".", 1)
                return self.get_att(resource, attribute)
            return self._ref(name)

        return _SUB_VARIABLE.sub(replace, text)


def parameter_defaults(template: dict[str, Any]) -> dict[str, str]:
    return {
        name: str(spec["Default"])
        for name, spec in (template.get("Parameters") or {}).items()
        if "Default" in spec
    }


def resources_of_type(template: dict[str, Any], *types: str) -> dict[str, dict[str, Any]]:
    return {
        name: resource
        for name, resource in (template.get("Resources") or {}).items()
        if resource.get("Type") in types
    }


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_dir: Path
    handler: str
    environment: dict[str, Any]
    events: dict[str, Any]
    timeout: int
    layers: list[Any]
    memory_mb: int = 128


def function_specs(template: dict[str, Any], root: Path) -> list[FunctionSpec]:
    """Every AWS::Serverless::Function with the Globals merged in, as SAM merges them."""
    globals_ = ((template.get("Globals") or {}).get("Function")) or {}
    global_env = ((globals_.get("Environment") or {}).get("Variables")) or {}
    specs = []
    for name, resource in resources_of_type(template, "AWS::Serverless::Function").items():
        props = resource.get("Properties") or {}
        env = dict(global_env)
        env.update(((props.get("Environment") or {}).get("Variables")) or {})
        specs.append(
            FunctionSpec(
                logical_id=name,
                code_dir=(root / props["CodeUri"]).resolve(),
                handler=props.get("Handler", globals_.get("Handler", "app.handler")),
                environment=env,
                events=props.get("Events") or {},
                timeout=int(props.get("Timeout", globals_.get("Timeout", 3))),
                layers=list(globals_.get("Layers") or []) + list(props.get("Layers") or []),
                memory_mb=int(props.get("MemorySize", globals_.get("MemorySize", 128))),
            )
        )
    return specs
