"""The functions of the template, imported as Lambda would (CodeUri on sys.path, the template's
environment), invoked one at a time, with their logs and metrics sent to a file instead of the console."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

from devtools.lambda_events import LambdaContext
from devtools.pipeline import environment
from devtools.provision import Stack
from devtools.sam_template import SamTemplate, load_function_module


@dataclass
class LocalFunction:
    logical_id: str
    module: ModuleType
    handler_name: str
    timeout: float
    log: TextIO | None = None

    def invoke(self, event: dict[str, Any]) -> Any:
        handler = getattr(self.module, self.handler_name)
        with _output_to(self.log):
            return handler(event, LambdaContext(function_name=self.logical_id, timeout_seconds=self.timeout))


@contextlib.contextmanager
def _output_to(log: TextIO | None) -> Iterator[None]:
    """During one invocation, the function's Powertools log lines (their handlers hold the stream of
    the moment they were created) and EMF metrics (printed) go to `log`; the console stays readable."""
    if log is None:
        yield
        return
    from ntp_webhooks.observability import logger  # the functions' own copy, once they are imported

    handlers = [h for h in logging.getLogger(logger.name).handlers if isinstance(h, logging.StreamHandler)]
    saved = [(h, h.setStream(log)) for h in handlers]
    try:
        with contextlib.redirect_stdout(log):
            yield
    finally:
        for handler, stream in saved:
            handler.setStream(stream)


def import_functions(template: SamTemplate, stack: Stack, log: TextIO | None) -> dict[str, LocalFunction]:
    functions = {}
    for logical_id, spec in template.functions().items():
        with environment(stack.function_environment(template, logical_id)):
            module = load_function_module(template, logical_id, f"local_{logical_id}")
        functions[logical_id] = LocalFunction(logical_id, module, spec.function_name, spec.timeout, log)
    return functions


def reloadable(module_name: str) -> bool:
    """The functions' own code: the shared layer, handler modules and business_logic."""
    top = module_name.split(".", 1)[0]
    return top in ("ntp_webhooks", "business_logic") or top.startswith("local_")


def code_roots(template: SamTemplate) -> list[Path]:
    roots = [template.path.parent / spec.code_uri for spec in template.functions().values()]
    layers = template.of_type("AWS::Serverless::LayerVersion").values()
    return roots + [template.path.parent / str(layer["Properties"]["ContentUri"]) for layer in layers]


def mtimes(roots: list[Path]) -> dict[str, float]:
    return {str(path): path.stat().st_mtime for root in roots for path in root.rglob("*.py")}


def purge_code() -> dict[str, ModuleType]:
    """Forget the functions' modules, so that the next import reads the code as it is now."""
    saved = {name: module for name, module in sys.modules.items() if reloadable(name)}
    for name in saved:
        del sys.modules[name]
    return saved
