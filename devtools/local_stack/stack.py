"""`DevStack`: moto's server with the template's resources, the functions, the front door, the
pollers, and the state file the `ntp` CLI reads. Everything here wires the other modules together."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import boto3
from botocore.config import Config
from werkzeug.serving import BaseWSGIServer, make_server

from devtools import moto_patches
from devtools.event_source import EventSourceMapping, PollerStopped, QueuePoller, event_source_mappings
from devtools.local_stack.admin import Admin
from devtools.local_stack.functions import (
    FunctionsNotImported,
    LocalFunction,
    code_roots,
    import_functions,
    mtimes,
    purge_code,
)
from devtools.local_stack.http_api import HttpApi
from devtools.local_stack.pollers import batch_errors, consumer_invoker
from devtools.provision import Provisioner, Stack, front_door
from devtools.sam_template import SamTemplate
from ntp import local_state as state
from ntp.deliveries import LOCAL_DEV_SECRET

REGION = "us-east-1"
_ONE_ATTEMPT = Config(retries={"total_max_attempts": 1})


def _ensure_free(host: str, port: int) -> None:
    """Raise OSError if `port` is taken (0 means any free port). Probed as the servers bind, with
    SO_REUSEADDR: the sockets of a stack stopped a moment ago linger in TIME_WAIT without holding it."""
    if port == 0:
        return
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
        probe.listen()


class StackStopped(PollerStopped):
    pass


class EmbeddedMoto:
    """moto's server app, as `ThreadedMotoServer` serves it, on a werkzeug server polled every 50 ms:
    `stop` then returns at once instead of after up to 0.5 s, for every stack a test starts."""

    def __init__(self, host: str, port: int) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

        app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)
        self.address: tuple[str, int] = (str(self._server.server_address[0]), int(self._server.server_address[1]))
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="moto", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)  # a daemon thread: a request still hanging on it dies with the process


class DevStack:
    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 3000,
        moto_port: int = 4566,
        retry_delay: int | None = None,
        wait_seconds: int = 2,
        console: TextIO | None = None,
        log: TextIO | None = None,
        template: SamTemplate | None = None,
        state_dir: Path | None = None,
        reload: bool = False,
        name_prefix: str = "local",
        parameter_overrides: dict[str, str] | None = None,
        operations: bool = True,
    ) -> None:
        """`operations=False` leaves out what no function calls (alarms, the dashboard, log groups, the
        e-mail subscription; `Provisioner`'s option): for tests of the pipeline, half the provisioning."""
        self.template = template or SamTemplate()
        self._parameter_overrides = dict(parameter_overrides or {})
        self._operations = operations
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
        self._pollers: list[threading.Thread] = []
        self._lock = threading.Lock()
        # One invocation at a time: each Lambda environment is single-threaded, and Powertools'
        # Logger and Metrics here are shared by every function of this one process.
        self._invocation_lock = threading.Lock()
        self.functions: dict[str, LocalFunction] = {}
        #: The consumers' SQS event source mappings, as the template configures them.
        self.mappings: dict[str, EventSourceMapping] = {}
        self.stack: Stack | None = None
        self.skipped: dict[str, str] = {}
        self._moto: EmbeddedMoto | None = None
        self._http: BaseWSGIServer | None = None
        self._admin: Admin | None = None
        # One client per service and config, shared by the provisioner, the admin, the pollers and the
        # tests (creating one costs ~6 ms; a test's `eventually` loop asked for one per check). Safe:
        # boto3 clients are thread-safe, and all point at this stack's moto.
        self._clients: dict[tuple[str, Config | None], Any] = {}
        self._clients_lock = threading.Lock()
        self.endpoint_url = ""
        self.webhook_url = ""
        self.front_door = ""

    # --- lifecycle --------------------------------------------------------------------------------

    def start(self) -> DevStack:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one readable line per delivery instead
        # Checked first, for a message that names the port and the way out (werkzeug would exit).
        _ensure_free(self._host, self._port)
        _ensure_free(self._host, self._moto_port)
        self._start_emulator()
        self.functions = import_functions(self.template, self._stack(), self._log)
        secret_id = self._stack().refs["WebhookSigningSecret"]
        self._admin = Admin(
            self.client("secretsmanager"),
            secret_id,
            lambda event: self._invoke("RotationFunction", event),
            self._recycle_ingest,
            REGION,
        )
        from ntp_webhooks.ingest import WEBHOOK_PATH

        # The template's front door: the HTTP API's routes (only POST /webhooks), or a function URL's every request.
        door = front_door(self.template, self._parameter_overrides)
        self.front_door = door.kind
        server = HttpApi(lambda event: self._invoke("IngestFunction", event), self._admin_action, self.say, door=door)
        self._http = make_server(self._host, self._port, server, threaded=True)

        self.webhook_url = f"http://{self._host}:{self._http.server_port}{WEBHOOK_PATH}"
        # Polled every 50 ms (werkzeug's default is 0.5 s): `stop` then returns at once.
        self._spawn("http", functools.partial(self._http.serve_forever, poll_interval=0.05))
        self._start_pollers()
        if self._reload:
            self._spawn("reload", self._watch)
        self.state_file = state.write(self._http.server_port, self._state(), self._state_dir)
        return self

    def stop(self, *, wait_for_pollers: bool = True) -> None:
        """Stop serving and polling. The pollers finish their current long poll (up to `wait_seconds`)
        and then exit; `wait_for_pollers=False` does not wait for that (they are daemon threads)."""
        self._stop.set()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        deadline = time.monotonic() + self._wait + 10  # one bound for all: a stop must not take minutes
        for thread in self._threads + (self._pollers if wait_for_pollers else []):
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        # An invocation in progress finishes its AWS calls first. A poller's long poll in flight still gets
        # its answer once moto stops listening; with the stop set, it then makes no other call.
        with self._invocation_lock:
            pass
        if self._moto is not None:
            self._moto.stop()
        if self._saved_environ:
            os.environ.clear()
            os.environ.update(self._saved_environ)
        if self.state_file is not None:
            self.state_file.unlink(missing_ok=True)

    def __enter__(self) -> DevStack:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def client(self, service: str, config: Config | None = None) -> Any:
        """A client of this stack's moto, one per service and config (pass the same Config object to share)."""
        with self._clients_lock:
            found = self._clients.get((service, config))
            if found is None:
                found = boto3.client(service, endpoint_url=self.endpoint_url, region_name=REGION, config=config)  # type: ignore[call-overload]
                self._clients[(service, config)] = found
            return found

    def say(self, line: str) -> None:
        with self._lock:
            print(line, file=self._console, flush=True)

    def reload(self) -> None:
        """New execution environments with the code as it is now; the emulated AWS state stays."""
        with self._invocation_lock:
            saved = purge_code(self.template)
            try:
                self.functions = import_functions(self.template, self._stack(), self._log)
            except BaseException:
                sys.modules.update(saved)  # keep serving the previous code
                raise

    def current_secret(self) -> str:
        assert self._admin is not None
        return self._admin.current_secret()

    def outputs(self) -> dict[str, str]:
        stack, outputs = self._stack(), {}
        for key, output in self.template.doc.get("Outputs", {}).items():
            with contextlib.suppress(Exception):  # outputs of in-process resources have no local value
                outputs[key] = str(stack.resolve(output["Value"]))
        outputs["WebhookUrl"] = self.webhook_url
        return outputs

    # --- the pieces -------------------------------------------------------------------------------

    def _stack(self) -> Stack:
        assert self.stack is not None, "start() first"
        return self.stack

    def _start_emulator(self) -> None:
        self._moto = EmbeddedMoto(self._host, self._moto_port)
        moto_host, moto_port = self._moto.address
        self.endpoint_url = f"http://{moto_host}:{moto_port}"
        moto_patches.apply()
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
            parameter_overrides=self._parameter_overrides,
            secret_values={"WebhookSigningSecret": LOCAL_DEV_SECRET},
            operations=self._operations,
        )
        self.stack = provisioner.provision()
        self.skipped = provisioner.skipped()
        # Variables every function shares (Globals) stay set, as in each function's own environment.
        variables = self.template.doc["Globals"]["Function"]["Environment"]["Variables"]
        os.environ.update({k: str(self.stack.resolve(v)) for k, v in variables.items()})

    def _start_pollers(self) -> None:
        """A poller per mapping; failed records come back after `retry_delay` if given (`make run`'s
        shortening), else after their queue's VisibilityTimeout, as on AWS."""
        self.mappings = event_source_mappings(self.template, self._stack())
        # One attempt: a failed poll is printed and tried again by the loop, and a poll that races stop()
        # fails at once instead of retrying against a closed port. One client for all the pollers.
        sqs = self.client("sqs", config=_ONE_ATTEMPT)
        for logical_id, mapping in self.mappings.items():
            family = self._stack().function_environment(self.template, logical_id)["EVENT_FAMILY"].lower()
            poller = QueuePoller(
                sqs,
                mapping,
                consumer_invoker(mapping, self._invoke_batch, self.say, family),
                wait_seconds=self._wait,
                retry_delay=self._retry_delay,
            )
            self._spawn(logical_id, functools.partial(self._poll, poller), poller=True)

    def _invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        with self._invocation_lock:
            return self.functions[logical_id].invoke(event)

    def _invoke_batch(self, logical_id: str, event: dict[str, Any]) -> tuple[Any, dict[str, str], str]:
        with self._invocation_lock:
            if self._stop.is_set():  # a long poll that ended after stop(): the batch stays on its queue
                raise StackStopped(f"{logical_id} not invoked: the local stack is stopping")
            function = self.functions[logical_id]
            return function.invoke(event), batch_errors(function.module), function.last_output

    def _recycle_ingest(self) -> None:
        """A fresh ingest environment: no cached keys. Looked up at each call: a reload replaces it."""
        self.functions["IngestFunction"].module._ingest.cache_clear()

    def _admin_action(self, action: str) -> tuple[int, dict[str, Any]]:
        assert self._admin is not None
        status, result = self._admin(action)
        if status == 200 and action != "secret":  # a read changes nothing: nothing to say
            self.say(f"admin: {action} -> {result}")
            self.say(f"  signing secret  {self.current_secret()}   (new; `ntp secret --local` prints it)")
        return status, result

    def _poll(self, poller: QueuePoller) -> None:
        while not self._stop.is_set():
            try:
                poller.poll_once()
            except Exception as exc:  # a poller must survive a bad batch, as Lambda's does
                if not self._stop.is_set():
                    self.say(f"poller error: {type(exc).__name__}: {exc}")
                    self._stop.wait(1)

    def _watch(self) -> None:
        roots = code_roots(self.template)
        seen = mtimes(roots)
        while not self._stop.wait(1):
            now = mtimes(roots)
            if now == seen:
                continue
            changed = sorted({path for path in now.keys() | seen.keys() if now.get(path) != seen.get(path)})
            seen = now
            names = ", ".join(Path(path).name for path in changed[:3])
            try:
                self.reload()
            except FunctionsNotImported as exc:  # a syntax error mid-edit must not stop the stack
                self.say(f"reload failed ({names}): {exc}; still running the previous code")
            else:
                self.say(f"reloaded the functions ({names} changed); emulated AWS state kept")

    def _spawn(self, name: str, target: Callable[[], None], *, poller: bool = False) -> None:
        thread = threading.Thread(target=target, name=f"local-stack-{name}", daemon=True)
        thread.start()
        (self._pollers if poller else self._threads).append(thread)

    def _state(self) -> dict[str, Any]:
        assert self._http is not None
        return {
            "endpoint_url": self.endpoint_url,
            "region": REGION,
            "webhook_url": self.webhook_url,
            "admin_url": f"http://{self._host}:{self._http.server_port}/_local",
            "outputs": self.outputs(),
        }
