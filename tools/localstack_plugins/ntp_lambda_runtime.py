"""One execution environment of the `host` executor (ntp_host_lambda), in place of LocalStack's Go init and
the Lambda image's Python runtime: `python3.X -I -S -B ntp_lambda_runtime.py PATHS RUNTIME_PACKAGES PARENT_PID`.
Standard library only. Init imports the handler once; each POST /invoke (answered at once) runs it in the
main thread; its logs (START, stdout/stderr, END, REPORT) then its result go to LOCALSTACK_RUNTIME_ENDPOINT.
"""

import json
import logging
import math
import os
import resource
import signal
import sys
import threading
import time
import traceback
import urllib.request
from contextlib import suppress
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, HTTPServer
from importlib import import_module
from queue import Queue
from typing import Any, TextIO, cast

ENV = os.environ
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # LocalStack directly, never a proxy
_logs: list[str] = []
_logs_lock = threading.Lock()


def post(path: str, body: bytes) -> None:
    url = ENV["LOCALSTACK_RUNTIME_ENDPOINT"] + path  # http://127.0.0.1:<gateway port>/_localstack_lambda/<id>
    _opener.open(urllib.request.Request(url, body, {"Content-Type": "application/json"}), timeout=30).close()  # noqa: S310


class Tee:
    """sys.stdout and sys.stderr: through to the environment's output file, and kept for the invocation's logs."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        with _logs_lock:
            _logs.append(text)
        self.stream.write(text)
        self.stream.flush()
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


class Fault(Exception):
    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def error(exc: BaseException, request_id: str) -> bytes:
    """The Python runtime's error payload, logged as it does."""
    stack = [] if isinstance(exc, Fault) else traceback.format_list(traceback.extract_tb(exc.__traceback__)[1:])
    error_type = exc.error_type if isinstance(exc, Fault) else type(exc).__name__
    print(f"[ERROR] {error_type}: {exc}", *stack, sep="\n")
    payload = {"errorMessage": str(exc), "errorType": error_type, "requestId": request_id, "stackTrace": stack}
    return json.dumps(payload).encode()


def load(handler: str) -> Any:
    module_name, _, name = handler.rpartition(".")
    try:
        module = import_module(module_name.replace("/", "."))
    except ImportError as exc:
        raise Fault("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}") from exc
    except SyntaxError as exc:
        raise Fault("Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {exc}") from exc
    if not hasattr(module, name):
        raise Fault("Runtime.HandlerNotFound", f"Handler '{name}' missing on module '{module_name}'")
    return getattr(module, name)


class Context:
    """The handler's `context`: the attributes of the Python runtime's LambdaContext."""

    def __init__(self, request_id: str, arn: str, deadline: float) -> None:
        self.aws_request_id, self.invoked_function_arn, self._deadline = request_id, arn, deadline
        self.function_name, self.function_version = ENV["AWS_LAMBDA_FUNCTION_NAME"], ENV["AWS_LAMBDA_FUNCTION_VERSION"]
        self.memory_limit_in_mb = int(ENV["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"])
        self.log_group_name, self.log_stream_name = ENV["AWS_LAMBDA_LOG_GROUP_NAME"], ENV["AWS_LAMBDA_LOG_STREAM_NAME"]
        self.identity = self.client_context = self.tenant_id = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def peak_mb() -> int:
    """This process's peak RSS: /proc's VmHWM (Linux's ru_maxrss includes LocalStack's, from before the exec)."""
    with suppress(OSError), open("/proc/self/status") as status:
        return next((int(line.split()[1]) // 1024 for line in status if line.startswith("VmHWM:")), 0)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 20  # macOS: in bytes


def report(request_id: str, started: float, init_ms: float | None, outcome: str, body: bytes) -> None:
    """END and REPORT lines as Lambda writes them; the logs are posted first, then the result."""
    ms = (time.monotonic() - started) * 1000
    peak = peak_mb()
    init = f"Init Duration: {init_ms:.2f} ms\t" if init_ms is not None else ""
    print(f"END RequestId: {request_id}\nREPORT RequestId: {request_id}\tDuration: {ms:.2f} ms\t", end="")
    print(f"Billed Duration: {math.ceil(ms)} ms\tMemory Size: {ENV['AWS_LAMBDA_FUNCTION_MEMORY_SIZE']} MB\t", end="")
    print(f"Max Memory Used: {peak} MB\t{init}")
    with _logs_lock:
        logs = "".join(_logs)
        _logs.clear()
    post(f"/invocations/{request_id}/logs", json.dumps({"logs": logs}).encode())
    post(f"/invocations/{request_id}/{outcome}", body)


def decimal(value: object) -> float:
    """Decimals (DynamoDB numbers) as the runtime serializes them; nothing else that json refuses."""
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def invoke(handler: Any, request: dict[str, str], init_ms: float | None) -> None:
    request_id, timeout = request["invoke-id"], int(ENV["AWS_LAMBDA_FUNCTION_TIMEOUT"])
    ENV["_X_AMZN_TRACE_ID"] = request.get("trace-id", "")
    print(f"START RequestId: {request_id} Version: {ENV['AWS_LAMBDA_FUNCTION_VERSION']}")
    started = time.monotonic()
    reported = threading.Lock()  # taken by whichever reports: the handler's end or the timer

    def timed_out() -> None:  # the executor then kills this process; the next invocation starts a new one
        if reported.acquire(blocking=False):
            message = f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ} {request_id} Task timed out after {timeout}.00 seconds"
            report(request_id, started, init_ms, "error", json.dumps({"errorMessage": message}).encode())

    timer = threading.Timer(timeout, timed_out)
    timer.daemon = True
    timer.start()
    context = Context(request_id, request["invoked-function-arn"], started + timeout)
    try:
        result = handler(json.loads(request["payload"]), context)
    except Exception as exc:
        outcome, body = "error", error(exc, request_id)
    else:
        try:
            outcome, body = "response", json.dumps(result, default=decimal, ensure_ascii=False).encode()
        except (TypeError, ValueError) as exc:
            outcome, body = (
                "error",
                error(Fault("Runtime.MarshalError", f"Unable to marshal response: {exc}"), request_id),
            )
    if reported.acquire(blocking=False):
        timer.cancel()
        report(request_id, started, init_ms, outcome, body)


def main() -> None:
    paths, runtime_packages, parent = sys.argv[1:4]
    sys.path[:0] = paths.split(os.pathsep)  # before the standard library, as /var/task and /opt/python are
    sys.path.append(runtime_packages)  # boto3: after the function's and the layers' packages
    sys.stdout, sys.stderr = cast(TextIO, Tee(sys.stdout)), cast(TextIO, Tee(sys.stderr))
    log_format = "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(message)s"
    logging.basicConfig(stream=sys.stdout, format=log_format, datefmt="%Y-%m-%dT%H:%M:%S")
    pending: Queue[dict[str, str]] = Queue()

    class Invoke(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            pending.put(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"OK")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    def orphaned() -> None:  # LocalStack gone without stopping this environment: end it and what it started
        while os.getppid() == int(parent):
            time.sleep(1)
        os.killpg(0, signal.SIGKILL)

    server = HTTPServer(("127.0.0.1", 0), Invoke)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    threading.Thread(target=orphaned, daemon=True).start()
    status, started = f"/status/{ENV['LOCALSTACK_RUNTIME_ID']}", time.monotonic()
    try:
        handler = load(ENV["_HANDLER"])
    except Exception as exc:
        post(f"{status}/error", error(exc, ""))
        return
    init_ms: float | None = (time.monotonic() - started) * 1000
    post(f"{status}/ready", json.dumps({"port": server.server_address[1]}).encode())  # the executor reads the port
    while True:
        invoke(handler, pending.get(), init_ms)
        init_ms = None


if __name__ == "__main__":
    main()
