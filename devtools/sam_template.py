"""Reads template.yaml (with cfn-lint's decoder, which understands the intrinsic-function tags)."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any


REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = REPO_ROOT / "template.yaml"


class TemplateError(Exception):
    pass


@dataclass(frozen=True)
class FunctionSpec:
    """A function's properties with the template's Globals applied."""

    logical_id: str
    handler: str
    code_uri: str
    runtime: str
    timeout: int
    layers: list[Any]
    environment: dict[str, Any]
    events: dict[str, Any]

    @property
    def module(self) -> str:
        return self.handler.rsplit(".", 1)[0]

    @property
    def function_name(self) -> str:
        return self.handler.rsplit(".", 1)[1]


class SamTemplate:
    def __init__(self, path: Path = TEMPLATE_PATH) -> None:
        from cfnlint.decode import decode  # half a second to import: only `ntp` commands that read the template pay it

        doc, matches = decode(str(path))
        if doc is None:
            raise TemplateError(f"cannot read {path}: {matches}")
        self.path = path
        self.doc: dict[str, Any] = doc

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return dict(self.doc.get("Resources", {}))

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {lid: res for lid, res in self.resources.items() if res["Type"] == resource_type}

    def parameter_defaults(self) -> dict[str, str]:
        return {
            name: str(spec["Default"]) for name, spec in self.doc.get("Parameters", {}).items() if "Default" in spec
        }

    def function(self, logical_id: str) -> FunctionSpec:
        resource = self.resources[logical_id]
        if resource["Type"] != "AWS::Serverless::Function":
            raise TemplateError(f"{logical_id} is not an AWS::Serverless::Function")
        globals_ = self.doc.get("Globals", {}).get("Function", {})
        props = resource["Properties"]
        env = {
            **globals_.get("Environment", {}).get("Variables", {}),
            **props.get("Environment", {}).get("Variables", {}),
        }
        return FunctionSpec(
            logical_id=logical_id,
            handler=props["Handler"],
            code_uri=props["CodeUri"],
            runtime=props.get("Runtime", globals_.get("Runtime")),
            timeout=int(props.get("Timeout", globals_.get("Timeout", 3))),
            layers=list(props.get("Layers", globals_.get("Layers", []))),
            environment=env,
            events=dict(props.get("Events", {})),
        )

    def functions(self) -> dict[str, FunctionSpec]:
        return {lid: self.function(lid) for lid in self.of_type("AWS::Serverless::Function")}


def load_function_module(template: SamTemplate, logical_id: str, module_name: str) -> ModuleType:
    """Import a function's handler module as Lambda does: its CodeUri on sys.path (like /var/task),
    the module named by Handler. Reads the environment as it is now: set the function's first."""
    spec = template.function(logical_id)
    code_dir = str(template.path.parent / spec.code_uri)
    if code_dir not in sys.path:
        sys.path.insert(0, code_dir)
    module_spec = importlib.util.spec_from_file_location(module_name, f"{code_dir}/{spec.module}.py")
    if module_spec is None or module_spec.loader is None:
        raise TemplateError(f"cannot load {spec.handler} from {spec.code_uri}")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module
