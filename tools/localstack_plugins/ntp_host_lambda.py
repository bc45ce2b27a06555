"""`host` Lambda runtime executor (LAMBDA_RUNTIME_EXECUTOR=host): each execution environment is a python
process on the host (ntp_lambda_runtime.py), for LocalStack without Docker.

The process sees what Lambda's Python runtime has: the interpreter's standard library (`-I -S`: no
site-packages), the function code, its layers merged as in /opt, and boto3 from RUNTIME_PACKAGES (what
`make build` installs for the deployed-artifact tests). Code and layers are LocalStack's extracted archives,
hard-linked into one working copy per set of archives. The artifact is built for arm64: each compiled file of
another architecture gets the host build of the same package version next to it (pip, once per version, into
HOST_BUILDS); Python's import then picks the host's suffix. Pure-Python files stay the artifact's own.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
from concurrent.futures import Future, InvalidStateError
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import suppress
from pathlib import Path
from typing import Any

import requests
from localstack import config
from localstack.aws.api.lambda_ import PackageType
from localstack.http import Response
from localstack.services.lambda_.invocation.executor_endpoint import ExecutorEndpoint, StatusErrorException
from localstack.services.lambda_.invocation.lambda_models import FunctionVersion, InvocationResult
from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin
from localstack.services.lambda_.invocation.runtime_executor import LambdaRuntimeException, RuntimeExecutor
from werkzeug import Request

LOG = logging.getLogger(__name__)
RUNTIME = Path(__file__).with_name("ntp_lambda_runtime.py")
#: boto3 as the Lambda runtime provides it: by default .aws-sam/lambda-runtime, next to LocalStack's venv.
RUNTIME_PACKAGES = Path(os.environ.get("LAMBDA_HOST_RUNTIME_PACKAGES") or Path(sys.prefix).parent / "lambda-runtime")
HOST_BUILDS = Path(sys.prefix) / "host-builds"
GRACE_S = 5  # after the function's timeout, for the runtime to report it before the executor does
_prepare_lock = threading.Lock()


def _python(runtime: str) -> str:
    """The host's interpreter for `runtime` (python3.13): the one LocalStack runs on if it is that version."""
    if runtime == f"python{sys.version_info.major}.{sys.version_info.minor}":
        return str(getattr(sys, "_base_executable", sys.executable))
    pyenv = sorted(Path.home().glob(f".pyenv/versions/{runtime.removeprefix('python')}*/bin/python3"))
    if found := (shutil.which(runtime) or next(map(str, pyenv), None)) if runtime.startswith("python") else None:
        return found
    raise LambdaRuntimeException(f"the host executor runs the python runtimes installed on the host, not {runtime}")


def _compiled(path: Path) -> bool:
    """An extension module or a library it loads (a wheel's .libs/.dylibs)."""
    return (".so" in path.suffixes or path.suffix == ".dylib") and path.is_file() and not path.is_symlink()


def _machine(path: Path) -> int | None:
    """An ELF file's e_machine (0x3e x86_64, 0xb7 aarch64), else None (macOS's Mach-O too)."""
    with path.open("rb") as file:
        head = file.read(20)
    return int.from_bytes(head[18:20], "little") if head[:4] == b"\x7fELF" else None


def _link(source: str, target: str) -> None:
    Path(target).unlink(missing_ok=True)  # never write into a linked file (LocalStack's extracted archive)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _owner(path: Path) -> tuple[Path, str]:
    """The directory of the package whose RECORD lists `path`, and its `name-version`."""
    for site in path.parents:
        for record in site.glob("*.dist-info/RECORD"):
            if path.relative_to(site).as_posix() in (line.split(",")[0] for line in record.read_text().splitlines()):
                return site, record.parent.name.removesuffix(".dist-info")
    raise LambdaRuntimeException(f"{path} is built for another architecture, and no package of the artifact lists it")


def _add_host_builds(root: Path, python: str, runtime: str) -> None:
    host = _machine(Path(python).resolve())
    for site, dist in {_owner(path) for path in root.rglob("*") if _compiled(path) and _machine(path) != host}:
        build = HOST_BUILDS / f"{runtime}-{dist}"
        if not build.exists():
            staging = build.with_name(build.name + ".staging")
            shutil.rmtree(staging, ignore_errors=True)
            name, version = dist.rsplit("-", 1)
            pip = [python, "-m", "pip", "install", "-q", "--no-deps", "--only-binary=:all:", "--target", str(staging)]
            done = subprocess.run([*pip, f"{name}=={version}"], capture_output=True, text=True, check=False)
            if done.returncode:
                raise LambdaRuntimeException(f"no host build of {name}=={version}: {done.stderr.strip()[-500:]}")
            staging.rename(build)
        for compiled in filter(_compiled, build.rglob("*")):
            target = site / compiled.relative_to(build)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.unlink(missing_ok=True)  # only when the names are the same (abi3): the host's then replaces it
            shutil.copy2(compiled, target)


def working_copy(version: FunctionVersion) -> Path:
    """task/ (the code) and opt/ (the layers, in order), shared by the versions with the same archives."""
    runtime, code, layers = str(version.config.runtime), version.config.code, version.config.layers
    if version.config.package_type != PackageType.Zip or code is None:
        raise LambdaRuntimeException("the host executor runs .zip functions only")
    archives = [code, *(layer.code for layer in layers if layer.code is not None)]
    key = hashlib.sha256(f"{runtime} {[a.code_sha256 for a in archives]}".encode()).hexdigest()[:16]
    target = Path(config.dirs.tmp) / "host-lambda" / key
    with _prepare_lock:
        if not target.exists():
            staging = target.with_name(f"{key}.staging")
            shutil.rmtree(staging, ignore_errors=True)
            for archive in archives:
                archive.prepare_for_execution()
            shutil.copytree(code.get_unzipped_code_location(), staging / "task", copy_function=_link)
            for layer_code in archives[1:]:  # in order: a later layer's files replace an earlier one's
                location = layer_code.get_unzipped_code_location()
                shutil.copytree(location, staging / "opt", copy_function=_link, dirs_exist_ok=True)
            _add_host_builds(staging, _python(runtime), runtime)
            staging.rename(target)
    return target


class HostEndpoint(ExecutorEndpoint):
    """LocalStack's endpoint of one environment; the runtime's ready call carries the port it listens on."""

    def status_ready(self, request: Request, executor_id: str) -> Response:
        self.container_port = int(json.loads(request.data)["port"])
        return super().status_ready(request, executor_id)


class HostRuntimeExecutor(RuntimeExecutor):
    def __init__(self, id: str, function_version: FunctionVersion) -> None:
        super().__init__(id, function_version)
        self.endpoint = HostEndpoint(id, container_address="127.0.0.1")
        self.process: subprocess.Popen[bytes] | None = None
        self.command: list[str] = []
        self.env: dict[str, str] = {}
        self.request_id, self.log_offset = "", 0
        self.scratch = Path(config.dirs.tmp) / "host-lambda" / "environments" / id  # HOME, TMPDIR, output.log

    def start(self, env_vars: dict[str, str]) -> None:
        runtime = str(self.function_version.config.runtime)
        python, copy = _python(runtime), working_copy(self.function_version)
        paths = [copy / "task", copy / "opt" / "python" / "lib" / runtime / "site-packages", copy / "opt" / "python"]
        self.scratch.mkdir(parents=True, exist_ok=True)
        self.command = [python, "-I", "-S", "-B", str(RUNTIME), os.pathsep.join(map(str, paths))]
        self.command += [str(RUNTIME_PACKAGES), str(os.getpid())]
        # Not the host's environment: LocalStack's variables (the function's among them) over these defaults.
        defaults = {"PATH": f"{Path(python).parent}:/usr/local/bin:/usr/bin:/bin", "LANG": "en_US.UTF-8"}
        defaults |= {"HOME": str(self.scratch), "TMPDIR": str(self.scratch)}
        self.env = defaults | {key: str(value) for key, value in env_vars.items()}
        self.env |= {"LAMBDA_TASK_ROOT": str(copy / "task"), "LAMBDA_RUNTIME_DIR": str(RUNTIME_PACKAGES)}
        self.env["AWS_EXECUTION_ENV"] = f"AWS_Lambda_{runtime}"  # as the runtime sets it
        self._spawn()

    def _spawn(self) -> None:
        """Start the runtime (init) and wait for its ready call, or its error."""
        self.endpoint.start()
        with (self.scratch / "output.log").open("ab") as output:
            self.process = subprocess.Popen(
                self.command,
                env=self.env,
                cwd=self.env["LAMBDA_TASK_ROOT"],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() ends whatever the function started too
            )
        threading.Thread(target=self._watch, args=(self.process,), daemon=True).start()
        self.endpoint.wait_for_startup()  # type: ignore[no-untyped-call]

    def _watch(self, process: subprocess.Popen[bytes]) -> None:
        """A runtime that exits by itself fails its init or its invocation, as on Lambda."""
        status = process.wait()
        if process is not self.process:  # ended by _kill
            return
        message = f"RequestId: {self.request_id} Error: Runtime exited with error: exit status {status}"
        payload = json.dumps({"errorType": "Runtime.ExitError", "errorMessage": message}).encode()
        startup, invocation = self.endpoint.startup_future, self.endpoint.invocation_future
        with suppress(InvalidStateError):
            if startup is not None and not startup.done():
                startup.set_exception(StatusErrorException("Environment startup failed", payload=payload))
            elif invocation is not None and not invocation.done():
                logs = self._output(self.log_offset)
                invocation.set_result(InvocationResult(self.request_id, payload, is_error=True, logs=logs))

    def _kill(self) -> None:
        if self.process is not None:
            process, self.process = self.process, None
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def invoke(self, payload: dict[str, str]) -> InvocationResult:
        if self.process is None or self.process.poll() is not None:
            self._spawn()  # after a timeout: a new init, as on Lambda
        self.request_id, self.log_offset = payload["invoke-id"], (self.scratch / "output.log").stat().st_size
        future: Future[InvocationResult] = Future()
        self.endpoint.invocation_future, self.endpoint.logs = future, None
        url = f"http://127.0.0.1:{self.endpoint.container_port}/invoke"
        requests.post(url, json=payload, proxies={"http": "", "https": ""}, timeout=10).raise_for_status()
        timeout = int(self.function_version.config.timeout)
        try:
            result = future.result(timeout=timeout + GRACE_S)
        except FutureTimeout:  # the runtime did not report its own timeout (stuck outside Python code)
            message = json.dumps({"errorMessage": f"{self.request_id} Task timed out after {timeout}.00 seconds"})
            result = InvocationResult(self.request_id, message.encode(), is_error=True, logs="")
        if result.is_error and b"Task timed out after" in (result.payload or b""):
            self._kill()
        return result

    def stop(self) -> None:
        self._kill()
        with suppress(Exception):
            self.endpoint.shutdown()
        shutil.rmtree(self.scratch, ignore_errors=True)

    def get_address(self) -> str:
        return "127.0.0.1"

    def get_endpoint_from_executor(self) -> str:
        return "127.0.0.1"

    def get_runtime_endpoint(self) -> str:
        return f"http://127.0.0.1:{config.GATEWAY_LISTEN[0].port}{self.endpoint.get_endpoint_prefix()}"  # type: ignore[no-untyped-call]

    def _output(self, since: int = 0) -> str:
        with suppress(OSError), (self.scratch / "output.log").open("rb") as output:
            output.seek(since)
            return output.read().decode(errors="replace")
        return ""

    def get_logs(self) -> str:
        return self._output()[-20_000:]

    @classmethod
    def prepare_version(cls, function_version: FunctionVersion) -> None:
        working_copy(function_version)

    @classmethod
    def cleanup_version(cls, function_version: FunctionVersion) -> None:
        pass  # working copies may be shared; they go with LocalStack's tmp directory

    @classmethod
    def validate_environment(cls) -> bool:
        if not (RUNTIME_PACKAGES / "boto3").is_dir():
            LOG.warning("no boto3 in %s: run make build, or set LAMBDA_HOST_RUNTIME_PACKAGES", RUNTIME_PACKAGES)
        return (RUNTIME_PACKAGES / "boto3").is_dir()


class HostRuntimeExecutorPlugin(RuntimeExecutorPlugin):
    name = "host"

    def load(self, *args: Any, **kwargs: Any) -> type[RuntimeExecutor]:
        return HostRuntimeExecutor
