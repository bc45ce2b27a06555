"""Reads template.yaml (its intrinsic-function tags in their long forms, as cfn-lint's decoder reads
them), with its `Fn::ForEach` loops expanded as CloudFormation's AWS::LanguageExtensions transform does."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from devtools.lambda_events import acting_as
from ntp.checkout import PARTNER_DIR_VARIABLE

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


#: libyaml's parser when PyYAML was built with it (the wheels are): ten times faster on template.yaml
#: (0.05 s against 0.45 s a parse, in every process and fixture that reads it), same document: only
#: the scanner and parser are C, the constructors and the tag resolution are PyYAML's own.
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _CloudFormationLoader(_SafeLoader):  # type: ignore[valid-type,misc]
    """YAML with CloudFormation's short-form tags (`!Ref X`, `!GetAtt A.B`, `!Sub ...`) read as their
    long forms. Hand-written: cfn-lint's decoder reads the same document (a unit test compares them)
    but costs 0.6 s of imports (sympy, networkx) in every process that reads the template."""


def _long_form(loader: yaml.SafeLoader, tag: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if tag == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {tag if tag in ("Ref", "Condition") else f"Fn::{tag}": value}


_CloudFormationLoader.add_multi_constructor("!", _long_form)


def read_template(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise TemplateError(f"cannot read {path}: {exc}") from exc
    return parse_template(text, str(path))


def parse_template(text: str, source: str = "template") -> dict[str, Any]:
    try:
        loader = _CloudFormationLoader(text)  # what yaml.safe_load does, with the tags added
        try:
            doc = loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise TemplateError(f"cannot read {source}: {exc}") from exc
    if not isinstance(doc, dict):
        raise TemplateError(f"cannot read {source}: not a template")
    return doc


class SamTemplate:
    def __init__(self, path: Path = TEMPLATE_PATH) -> None:
        doc = read_template(path)
        self.path = path
        #: The template as written (what `sam build` and `sam deploy` read).
        self.source: dict[str, Any] = doc
        #: The template as CloudFormation sees it after AWS::LanguageExtensions: every family's resources.
        self.doc: dict[str, Any] = expand_language_extensions(doc)

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
            # SAM appends a function's Layers to Globals' (lists in Globals are additive).
            layers=[*globals_.get("Layers", []), *props.get("Layers", [])],
            environment=env,
            events=dict(props.get("Events", {})),
        )

    def functions(self) -> dict[str, FunctionSpec]:
        return {lid: self.function(lid) for lid in self.of_type("AWS::Serverless::Function")}

    @property
    def families(self) -> tuple[str, ...]:
        """The event families, lower case: the `Fn::ForEach::Families` loop's list, the one family list."""
        return tuple(str(family).lower() for family in self.source["Resources"][FAMILIES_LOOP][1])

    def layer_dir(self, logical_id: str) -> Path:
        """A layer's source folder; the PartnerLayer's is NTP_PARTNER_DIR when set (see `partner_dir`)."""
        if logical_id == PARTNER_LAYER:
            return partner_dir(self)
        return self.path.parent / str(self.resources[logical_id]["Properties"]["ContentUri"])

    def layer_dirs(self, spec: FunctionSpec) -> list[Path]:
        """The source folders of a function's layers, in the order Lambda extracts them into /opt."""
        return [self.layer_dir(layer["Ref"]) for layer in spec.layers if isinstance(layer, dict) and "Ref" in layer]


#: The loop whose collection is the one family list (tools/template_families writes the others from it).
FAMILIES_LOOP = "Fn::ForEach::Families"
#: The layer that holds the partner's code (partner/handlers: business_logic.py and its requirements).
PARTNER_LAYER = "PartnerLayer"


def partner_dir(template: SamTemplate | None = None) -> Path:
    """Where the local runs (the local stack, the tests) take the partner's code from: the PartnerLayer's
    folder, or NTP_PARTNER_DIR, which our tests point at their stand-in so they never run the partner's."""
    if override := os.environ.get(PARTNER_DIR_VARIABLE):
        return Path(override).resolve()
    template = template or SamTemplate()
    return template.path.parent / str(template.resources[PARTNER_LAYER]["Properties"]["ContentUri"])


LANGUAGE_EXTENSIONS = "AWS::LanguageExtensions"


def expand_language_extensions(doc: dict[str, Any]) -> dict[str, Any]:
    """`Fn::ForEach` expanded, everything else as written (parameters stay parameters), and the
    transform dropped from `Transform`. SAM CLI's own implementation of the transform (the one
    `sam build --language-extensions` runs), limited to its ForEach step: the full pipeline would
    also resolve every Ref to a parameter's default."""
    transforms = doc.get("Transform", [])
    transforms = [transforms] if isinstance(transforms, str) else list(transforms)
    if LANGUAGE_EXTENSIONS not in transforms:
        return doc
    from samcli.lib.cfn_language_extensions.api import create_default_intrinsic_resolver
    from samcli.lib.cfn_language_extensions.models import ResolutionMode, TemplateProcessingContext
    from samcli.lib.cfn_language_extensions.pipeline import ProcessingPipeline
    from samcli.lib.cfn_language_extensions.processors import ForEachProcessor, TemplateParsingProcessor

    context = TemplateProcessingContext(
        fragment=json.loads(json.dumps(doc)), parameter_values={}, resolution_mode=ResolutionMode.PARTIAL
    )
    # The resolver is the ForEach step's only: it reads a collection given as a Ref to a parameter.
    for_each = ForEachProcessor(intrinsic_resolver=create_default_intrinsic_resolver(context))
    expanded = ProcessingPipeline([TemplateParsingProcessor(), for_each]).process_template(context)
    expanded = _plain_subs(expanded)
    remaining = [t for t in transforms if t != LANGUAGE_EXTENSIONS]
    expanded["Transform"] = remaining[0] if len(remaining) == 1 else remaining
    return dict(expanded)


def _plain_subs(value: Any) -> Any:
    """`{"Fn::Sub": "QuoteEventsQueue"}` (a loop's logical ID, once substituted) -> "QuoteEventsQueue":
    a Sub without variables is its string, and Ref/GetAtt need the literal name."""
    if isinstance(value, dict):
        if list(value) == ["Fn::Sub"] and isinstance(value["Fn::Sub"], str) and "${" not in value["Fn::Sub"]:
            return value["Fn::Sub"]
        return {k: _plain_subs(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_subs(v) for v in value]
    return value


def load_function_module(template: SamTemplate, logical_id: str, module_name: str) -> ModuleType:
    """Import a function's handler module as Lambda does: its CodeUri on sys.path (like /var/task),
    the module named by Handler. Reads the environment as it is now: set the function's first."""
    spec = template.function(logical_id)
    code_dir = str(template.path.parent / spec.code_uri)
    # Like /var/task, then /opt/python (each layer's folder; the shared layer is also installed).
    for path in reversed([code_dir, *map(str, template.layer_dirs(spec))]):
        if path not in sys.path:
            sys.path.insert(0, path)
    module_spec = importlib.util.spec_from_file_location(module_name, f"{code_dir}/{spec.module}.py")
    if module_spec is None or module_spec.loader is None:
        raise TemplateError(f"cannot load {spec.handler} from {spec.code_uri}")
    module = importlib.util.module_from_spec(module_spec)
    with acting_as(logical_id):  # its init phase: the calls it makes use its role
        module_spec.loader.exec_module(module)
    return module


def write_expanded(out: Path, path: Path = TEMPLATE_PATH) -> Path:
    """The template with its loops expanded, as JSON: what checkov reads (it skips what is inside a
    `Fn::ForEach`) and what `make deploy-check` deploys to LocalStack (its `Fn::ForEach` is partial)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(SamTemplate(path).doc, indent=1))
    return out


if __name__ == "__main__":  # python -m devtools.sam_template OUT [TEMPLATE]
    print(write_expanded(Path(sys.argv[1]), *(Path(a) for a in sys.argv[2:3])))
