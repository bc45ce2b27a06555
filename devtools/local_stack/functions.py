"""The functions of the template, imported as Lambda would (CodeUri on sys.path, the template's
environment), invoked one at a time, with their logs and metrics sent to a file instead of the console."""

from __future__ import annotations

import io
import sys
import threading
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

from devtools.function_output import routed
from devtools.lambda_events import LambdaContext, acting_as
from devtools.pipeline import environment
from devtools.provision import Stack
from devtools.sam_template import SamTemplate, load_function_module


class TimestampedLog:
    """A log file whose every line starts with the time it was written, as CloudWatch shows it
    (`print()` output and EMF lines carry no time of their own). Thread-safe; whole lines only."""

    def __init__(self, file: TextIO) -> None:
        self._file = file
        self._partial = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            *lines, self._partial = (self._partial + text).split("\n")
            for line in lines:
                stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
                self._file.write(f"{stamp} {line}\n")
            self._file.flush()
        return len(text)

    def flush(self) -> None:
        with self._lock:
            self._file.flush()


@dataclass
class LocalFunction:
    logical_id: str
    module: ModuleType
    handler_name: str
    timeout: float
    log: TextIO | None = None
    #: The log lines of the last invocation (the console reads which handlers ran from them).
    last_output: str = field(default="", repr=False)

    def invoke(self, event: dict[str, Any]) -> Any:
        handler = getattr(self.module, self.handler_name)
        copy = io.StringIO()
        try:
            with acting_as(self.logical_id), routed(self.log, copy):
                return handler(event, LambdaContext(function_name=self.logical_id, timeout_seconds=self.timeout))
        finally:
            self.last_output = copy.getvalue()


class FunctionsNotImported(Exception):
    """A function's code does not import (a syntax error, a misspelt `@on(...)`). Its message is one
    line: the error and where in the functions' code it was raised; the start and `--reload` print it."""


def import_functions(template: SamTemplate, stack: Stack, log: TextIO | None) -> dict[str, LocalFunction]:
    functions = {}
    for logical_id, spec in template.functions().items():
        with environment(stack.function_environment(template, logical_id)):
            try:
                module = load_function_module(template, logical_id, f"local_{logical_id}")
            except Exception as exc:
                raise FunctionsNotImported(import_failure(exc, template)) from exc
        functions[logical_id] = LocalFunction(logical_id, module, spec.function_name, spec.timeout, log)
    return functions


def import_failure(exc: Exception, template: SamTemplate) -> str:
    """`SyntaxError: invalid syntax (business_logic.py, line 12)`, `ValueError: ... (business_logic.py,
    line 25)`: the innermost line of the functions' own code (a CodeUri) that the error came through."""
    line = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, SyntaxError):
        return line  # it names the file and line itself
    roots = [root.resolve() for root in code_roots(template)]
    frames = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if any(Path(frame.filename).resolve().is_relative_to(root) for root in roots)
    ]
    if not frames:
        return line
    return f"{line} ({Path(frames[-1].filename).name}, line {frames[-1].lineno})"


def reloadable(module: ModuleType, roots: list[Path]) -> bool:
    """The functions' own code: handler modules, the shared layer and the partner's modules (any file
    under a CodeUri or a layer's folder; their installed dependencies stay loaded)."""
    if module.__name__.split(".", 1)[0] == "ntp_webhooks" or module.__name__.startswith("local_"):
        return True  # the shared layer, wherever it is installed from
    file = getattr(module, "__file__", None)
    return file is not None and any(Path(file).resolve().is_relative_to(root) for root in roots)


def code_roots(template: SamTemplate) -> list[Path]:
    roots = [template.path.parent / spec.code_uri for spec in template.functions().values()]
    return roots + [template.layer_dir(logical_id) for logical_id in template.of_type("AWS::Serverless::LayerVersion")]


def mtimes(roots: list[Path]) -> dict[str, float]:
    return {str(path): path.stat().st_mtime for root in roots for path in root.rglob("*.py")}


def purge_code(template: SamTemplate) -> dict[str, ModuleType]:
    """Forget the functions' modules, so that the next import reads the code as it is now."""
    roots = [root.resolve() for root in code_roots(template)]
    saved = {name: module for name, module in list(sys.modules.items()) if reloadable(module, roots)}
    for name in saved:
        del sys.modules[name]
    return saved
