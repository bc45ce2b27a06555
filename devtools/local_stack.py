"""`make run`: the whole pipeline on loopback, provisioned from template.yaml. No AWS account, no Docker.

- AWS: moto's ThreadedMotoServer, with the template's tables, queues (with redrive to their DLQs),
  secret, topics and alarms. Resources the stack cannot emulate are named at start-up.
- HTTP API: a werkzeug WSGI server turns each request into the API Gateway HTTP API v2 event and
  invokes the IngestFunction handler with the environment the template gives it.
- Consumers: one poller per consumer function, doing what a Lambda SQS event source mapping does.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import json
import logging
import os
import signal
import socket
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

import boto3
from moto.server import ThreadedMotoServer
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from devtools import local_state
from devtools.deliveries import LOCAL_DEV_SECRET
from devtools.event_source import QueuePoller
from devtools.lambda_events import LambdaContext, http_api_event
from devtools.moto_fidelity import make_dynamodb_writes_atomic
from devtools.pipeline import environment
from devtools.provision import Provisioner, Stack
from devtools.sam_template import REPO_ROOT, SamTemplate, load_function_module

LOG_FILE = REPO_ROOT / ".aws-sam" / "local-stack.log"
REGION = "us-east-1"
_TEXT_TYPES = ("application/json", "text/", "application/xml", "application/x-www-form-urlencoded")


@dataclass
class LocalFunction:
    logical_id: str
    module: ModuleType
    handler: Callable[[dict[str, Any], Any], Any]
    timeout: float

    def invoke(self, event: dict[str, Any]) -> Any:
        return self.handler(event, LambdaContext(function_name=self.logical_id, timeout_seconds=self.timeout))


def _reloadable(module_name: str) -> bool:
    """The functions' own code: the shared layer, handler modules and business_logic."""
    top = module_name.split(".", 1)[0]
    return top in ("ntp_webhooks", "business_logic") or top.startswith("local_")


def _mtimes(roots: list[Path]) -> dict[str, float]:
    return {str(path): path.stat().st_mtime for root in roots for path in root.rglob("*.py")}


def _batch_errors(module: ModuleType) -> dict[str, str]:
    """message ID -> one-line summary of the exception that failed it, from the consumer's Powertools
    BatchProcessor (it keeps the last batch's failures until the next batch)."""
    processor = getattr(module, "processor", None)
    if processor is None:
        return {}
    return {
        record.message_id: f"{type(exc).__name__}: {exc}" if (exc := info[1]) else ""
        for record, info in zip(processor.fail_messages, processor.exceptions, strict=False)
    }


def _ensure_free(host: str, port: int) -> None:
    """Raise OSError (EADDRINUSE) when `port` is taken."""
    if port == 0:
        return
    with socket.socket() as probe:
        probe.bind((host, port))


class DevStack:
    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 3000,
        moto_port: int = 4566,
        retry_delay: int = 2,
        wait_seconds: int = 2,
        console: TextIO | None = None,
        log: TextIO | None = None,
        template: SamTemplate | None = None,
        state_dir: Path | None = None,
        reload: bool = False,
        name_prefix: str = "local",
    ) -> None:
        self.template = template or SamTemplate()
        self._state_dir = state_dir
        self.state_file: Path | None = None
        self._reload = reload
        # Resource names; two stacks in one process (tests) share moto's backends, so they differ.
        self._name_prefix = name_prefix
        self._saved_environ: dict[str, str] = {}
        self._host, self._port, self._moto_port = host, port, moto_port
        self._retry_delay, self._wait = retry_delay, wait_seconds
        self._console = console or sys.stdout
        self._log = log
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._invocation_lock = threading.Lock()
        self.functions: dict[str, LocalFunction] = {}
        self.stack: Stack | None = None
        self.skipped: dict[str, str] = {}
        self._moto: ThreadedMotoServer | None = None
        self._http: BaseWSGIServer | None = None
        self.endpoint_url = ""
        self.webhook_url = ""
        self._saved_stdout: TextIO | None = None

    # --- lifecycle --------------------------------------------------------------------------------

    def start(self) -> DevStack:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one readable line per delivery instead
        if self._log is not None:
            # Function logs and EMF metrics go to the log file; readable lines to the console.
            self._saved_stdout, sys.stdout = sys.stdout, self._log
        # Checked first: ThreadedMotoServer would wait forever on a busy port, werkzeug would exit.
        _ensure_free(self._host, self._port)
        _ensure_free(self._host, self._moto_port)
        self._moto = ThreadedMotoServer(ip_address=self._host, port=self._moto_port, verbose=False)
        self._moto.start()
        moto_host, moto_port = self._moto.get_host_and_port()
        self.endpoint_url = f"http://{moto_host}:{moto_port}"
        make_dynamodb_writes_atomic()
        self._saved_environ = dict(os.environ)  # restored by stop(): this process may go on
        os.environ.update(
            AWS_ENDPOINT_URL=self.endpoint_url,
            AWS_DEFAULT_REGION=REGION,
            AWS_ACCESS_KEY_ID="local",
            AWS_SECRET_ACCESS_KEY="local",  # noqa: S106 - moto accepts any credentials
        )
        os.environ.pop("AWS_PROFILE", None)
        provisioner = Provisioner(
            self.template,
            self.client,
            region=REGION,
            name_prefix=self._name_prefix,
            secret_values={"WebhookSigningSecret": LOCAL_DEV_SECRET},
        )
        self.stack = provisioner.provision()
        self.skipped = provisioner.skipped()
        self._load_functions()
        self._http = make_server(self._host, self._port, self._wsgi, threaded=True)
        self.webhook_url = f"http://{self._host}:{self._http.server_port}{self._webhook_path()}"
        self._spawn("http", self._http.serve_forever)
        for logical_id, queue_id, batch_size in self._event_sources():
            poller = QueuePoller(
                self.client("sqs"),
                self.stack.refs[queue_id],
                self._consumer_invoker(logical_id),
                batch_size=batch_size,
                wait_seconds=self._wait,
                retry_delay=self._retry_delay,
                function_name=logical_id,
                timeout_seconds=self.functions[logical_id].timeout,
            )
            self._spawn(logical_id, functools.partial(self._poll, poller))
        if self._reload:
            self._spawn("reload", self._watch)
        self._write_state()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        for thread in self._threads:
            thread.join(timeout=self._wait + 10)
        if self._moto is not None:
            self._moto.stop()
        if self._saved_stdout is not None:
            sys.stdout = self._saved_stdout
        if self._saved_environ:
            os.environ.clear()
            os.environ.update(self._saved_environ)
        if self.state_file is not None:
            self.state_file.unlink(missing_ok=True)

    def __enter__(self) -> DevStack:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.endpoint_url, region_name=REGION)  # type: ignore[call-overload]

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=f"local-stack-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def say(self, line: str) -> None:
        with self._lock:
            print(line, file=self._console, flush=True)

    # --- functions --------------------------------------------------------------------------------

    def _load_functions(self) -> None:
        """Import each handler as Lambda would: its CodeUri on sys.path, the template's environment."""
        self.functions = self._import_functions()

    def reload(self) -> None:
        """New execution environments with the code as it is now; the emulated AWS state stays."""
        with self._invocation_lock:
            saved = {name: module for name, module in sys.modules.items() if _reloadable(name)}
            for name in saved:
                del sys.modules[name]
            try:
                self.functions = self._import_functions()
            except BaseException:
                sys.modules.update(saved)  # keep serving the previous code
                raise

    def _watch(self) -> None:
        roots = [self.template.path.parent / spec.code_uri for spec in self.template.functions().values()]
        roots += [self.template.path.parent / str(layer["Properties"]["ContentUri"]) for layer in self._layers()]
        seen = _mtimes(roots)
        while not self._stop.wait(1):
            now = _mtimes(roots)
            if now == seen:
                continue
            changed = sorted({path for path in now.keys() | seen.keys() if now.get(path) != seen.get(path)})
            seen = now
            names = ", ".join(Path(path).name for path in changed[:3])
            try:
                self.reload()
            except Exception as exc:  # a syntax error mid-edit must not stop the stack
                self.say(f"reload failed ({names}): {type(exc).__name__}: {exc}; still running the previous code")
            else:
                self.say(f"reloaded the functions ({names} changed); emulated AWS state kept")

    def _layers(self) -> list[dict[str, Any]]:
        return list(self.template.of_type("AWS::Serverless::LayerVersion").values())

    def _import_functions(self) -> dict[str, LocalFunction]:
        assert self.stack is not None
        # Variables every function shares (Globals) stay set, as in each function's own environment.
        os.environ.update(
            {
                k: str(self.stack.resolve(v))
                for k, v in self.template.doc["Globals"]["Function"]["Environment"]["Variables"].items()
            }
        )
        functions = {}
        for logical_id, spec in self.template.functions().items():
            with environment(self.stack.function_environment(self.template, logical_id)):
                module = load_function_module(self.template, logical_id, f"local_{logical_id}")
            handler = getattr(module, spec.function_name)
            functions[logical_id] = LocalFunction(logical_id, module, handler, spec.timeout)
        return functions

    def _webhook_path(self) -> str:
        from ntp_webhooks.ingest import WEBHOOK_PATH

        return WEBHOOK_PATH

    def _event_sources(self) -> list[tuple[str, str, int]]:
        sources = []
        for logical_id, spec in self.template.functions().items():
            for event in spec.events.values():
                if event["Type"] == "SQS":
                    queue_id = event["Properties"]["Queue"]["Fn::GetAtt"][0]
                    sources.append((logical_id, queue_id, int(event["Properties"].get("BatchSize", 10))))
        return sources

    # --- HTTP API ---------------------------------------------------------------------------------

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        if request.path.startswith("/_local/") and request.method == "POST":
            response = self._admin(request.path.removeprefix("/_local/"))
        elif request.path == self._webhook_path() and request.method == "POST":
            response = self._webhook(request)
        else:
            response = Response(json.dumps({"message": "Not Found"}), 404, content_type="application/json")
        return response(environ, start_response)

    def _webhook(self, request: Request) -> Response:
        body = request.get_data(cache=False)
        content_type = request.headers.get("Content-Type", "")
        textual = content_type.startswith(_TEXT_TYPES)
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            textual = False
        event = http_api_event(
            body,
            dict(request.headers.items()),
            path=request.path,
            base64_encoded=not textual,
            request_id=uuid.uuid4().hex[:16],
            source_ip=request.remote_addr or "127.0.0.1",
        )
        try:
            result = self._invoke("IngestFunction", event)
        except Exception as exc:  # what API Gateway answers when the function errors
            self.say(f"POST {request.path} -> 500 function error: {type(exc).__name__}: {exc}")
            return Response(json.dumps({"message": "Internal Server Error"}), 500, content_type="application/json")
        payload = result.get("body", "")
        if result.get("isBase64Encoded"):
            payload = base64.b64decode(payload)
        summary = json.loads(result["body"]) if result.get("body", "").startswith("{") else {}
        self.say(
            f"POST {request.path} -> {result['statusCode']} "
            f"{summary.get('status') or summary.get('error', '')} {summary.get('eventId', '')}".rstrip()
        )
        return Response(payload, result["statusCode"], headers=result.get("headers", {}))

    def _invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        # One invocation at a time: each Lambda environment is single-threaded, and Powertools'
        # Logger and Metrics here are shared by every function of this one process.
        with self._invocation_lock:
            return self.functions[logical_id].invoke(event)

    # --- consumers --------------------------------------------------------------------------------

    def _consumer_invoker(self, logical_id: str) -> Callable[[dict[str, Any], Any], Any]:
        def invoke(event: dict[str, Any], _context: Any) -> Any:
            with self._invocation_lock:
                response = self.functions[logical_id].invoke(event)
                errors = _batch_errors(self.functions[logical_id].module)
            failed = {f["itemIdentifier"] for f in (response or {}).get("batchItemFailures", [])}
            for record in event["Records"]:
                try:
                    parsed = json.loads(record["body"])
                    what = f"{parsed.get('event')} {parsed.get('id')}"
                except (ValueError, AttributeError):
                    what = "unparseable body"
                receive = record["attributes"].get("ApproximateReceiveCount", "?")
                outcome = "processed"
                if record["messageId"] in failed:
                    why = errors.get(record["messageId"], "")
                    outcome = f"FAILED (receive {receive}, DLQ after 5){': ' + why if why else ''}"
                self.say(f"{logical_id}: {what} {outcome}")
            return response

        return invoke

    def _poll(self, poller: QueuePoller) -> None:
        while not self._stop.is_set():
            try:
                poller.poll_once()
            except Exception as exc:  # a poller must survive a bad batch, as Lambda's does
                if not self._stop.is_set():
                    self.say(f"poller error: {type(exc).__name__}: {exc}")
                    self._stop.wait(1)

    # --- admin ------------------------------------------------------------------------------------

    def _admin(self, action: str) -> Response:
        # Imported here: they load ntp_webhooks, whose Powertools objects must see the functions' environment.
        from devtools import operations
        from devtools.rotation_service import RotationService

        assert self.stack is not None
        secret_id = self.stack.refs["WebhookSigningSecret"]
        rotation = RotationService(secret_id, lambda event: self._invoke("RotationFunction", event), region=REGION)
        if action == "rotate":
            token = rotation.rotate()
            result: dict[str, Any] = {"rotated": True, "new_version": token}
        elif action == "emergency-rotate":
            token = rotation.rotate()
            revoked = operations.revoke_previous(self.client("secretsmanager"), secret_id)
            self.functions["IngestFunction"].module._ingest.cache_clear()  # a fresh environment: no cached keys
            result = {"new_version": token, "revoked_version": revoked, "recycled": "IngestFunction"}
        else:
            return Response(json.dumps({"error": f"unknown action {action}"}), 404, content_type="application/json")
        self.say(f"admin: {action} -> {json.dumps(result)}")
        self.say(f"  signing secret  {self.current_secret()}   (new; `ntp secret --local` prints it)")
        return Response(json.dumps(result), 200, content_type="application/json")

    def current_secret(self) -> str:
        assert self.stack is not None
        secret: str = self.client("secretsmanager").get_secret_value(
            SecretId=self.stack.refs["WebhookSigningSecret"], VersionStage="AWSCURRENT"
        )["SecretString"]
        return secret

    # --- state for the CLI ------------------------------------------------------------------------

    def outputs(self) -> dict[str, str]:
        assert self.stack is not None
        outputs = {}
        for key, output in self.template.doc.get("Outputs", {}).items():
            with contextlib.suppress(Exception):  # outputs of in-process resources have no local value
                outputs[key] = str(self.stack.resolve(output["Value"]))
        outputs["WebhookUrl"] = self.webhook_url
        return outputs

    def _write_state(self) -> None:
        assert self.stack is not None and self._http is not None
        state = {
            "endpoint_url": self.endpoint_url,
            "region": REGION,
            "webhook_url": self.webhook_url,
            "admin_url": f"http://{self._host}:{self._http.server_port}/_local",
            "outputs": self.outputs(),
        }
        self.state_file = local_state.write(self._http.server_port, state, self._state_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (loopback by default)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")), help="HTTP API port")
    parser.add_argument("--moto-port", type=int, default=int(os.environ.get("MOTO_PORT", "4566")))
    parser.add_argument("--retry-delay", type=int, default=2, help="seconds before a failed record is retried")
    parser.add_argument(
        "--reload", action="store_true", help="re-import the functions when their code changes; AWS state stays"
    )
    parser.add_argument("--template", type=Path, default=None, help="another SAM template (default: template.yaml)")
    args = parser.parse_args(argv)

    LOG_FILE.parent.mkdir(parents=True, exist_ok=True)
    with open(LOG_FILE, "a") as log:
        stack = DevStack(
            host=args.host,
            port=args.port,
            moto_port=args.moto_port,
            retry_delay=args.retry_delay,
            log=log,
            reload=args.reload,
            template=SamTemplate(args.template) if args.template else None,
        )
        try:
            stack.start()
        except OSError as exc:
            stack.stop()
            hint = "another one running? try: make run ARGS='--port 3001 --moto-port 4567'"
            print(f"local stack: cannot start: {exc} ({hint})")
            return 2
        stack.say(f"NowToPrint webhook receiver, local stack ({Path(stack.template.path).name})")
        stack.say(f"  webhook URL     {stack.webhook_url}")
        stack.say(f"  signing secret  {LOCAL_DEV_SECRET}")
        stack.say(f"  AWS endpoint    {stack.endpoint_url}   (moto; any credentials)")
        stack.say(f"  function logs   {LOG_FILE.relative_to(REPO_ROOT)}")
        if args.reload:
            stack.say("  code reload     on: edits to functions/ and layers/shared/ take effect, state is kept")
        for resource, why in stack.skipped.items():
            stack.say(f"  not emulated    {resource}: {why}")
        stack.say("Send an event from another terminal:")
        stack.say("  .venv/bin/ntp send order.created --local      (or: make send TARGET=--local EVENT=quote.received)")
        stack.say("Ctrl-C stops everything.")
        stopped = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stopped.set())
        with contextlib.suppress(KeyboardInterrupt):
            stopped.wait()
        stack.say("\nstopping...")
        stack.stop()
        print("stopped: moto server, HTTP API and pollers are down")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
