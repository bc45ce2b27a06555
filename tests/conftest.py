"""Shared fixtures: moto stands in for AWS, provisioned from template.yaml itself."""

from __future__ import annotations

import functools
import io
import itertools
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.backends import get_backend

from devtools import moto_patches
from devtools.event_source import QueuePoller, event_source_mapping
from devtools.lambda_events import LambdaContext
from devtools.pipeline import Pipeline, environment, global_environment, hooked, reused_client
from devtools.provision import ACCOUNT_ID, Provisioner, Stack
from devtools.sam_template import TEMPLATE_PATH, SamTemplate
from devtools.sam_template import load_function_module as load_module
from ntp.checkout import PARTNER_DIR_VARIABLE
from ntp.deliveries import LOCAL_DEV_SECRET
from ntp_webhooks.routing import template_name
from tools.permissions import Call, CallRecorder, Ledger
from tools.wall_clock import waits_move_the_clock

# Fake credentials so nothing can reach a real account, set before any client exists.
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_SESSION_TOKEN="testing",
    AWS_DEFAULT_REGION="us-east-1",
)
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("AWS_ENDPOINT_URL", None)
# Our tests never run the partner's handlers (partner/handlers): the consumers load this stand-in, the
# partner folder as release 0.1.0 shipped it, which also proves that such a folder still runs unchanged.
STAND_IN_PARTNER = Path(__file__).parent / "partner_0_1_0"
os.environ[PARTNER_DIR_VARIABLE] = str(STAND_IN_PARTNER)

TEMPLATE = SamTemplate()
#: template.yaml's one family list (lower case); the functions read it from EVENT_FAMILIES.
FAMILIES = TEMPLATE.families
# Powertools reads these at import time; use the template's own values.
for _name, _value in global_environment(TEMPLATE).items():
    os.environ.setdefault(_name, _value)
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "nowtoprint-webhooks-test")

moto_patches.apply()

_module_ids = itertools.count()

#: Each module's time in the last run that ran it (setup to teardown, in seconds), kept in pytest's
#: cache (.pytest_cache): the next run hands the longest modules to xdist first, so that none is left
#: for last on one worker while the others idle. Modules without a time (a clean clone, a new module)
#: keep pytest-randomly's order, after the timed ones. addopts turns off xdist's own reordering (by
#: number of tests).
MODULE_DURATIONS = "ntp/module-durations"
_module_durations: dict[str, float] = {}


@pytest.hookimpl(trylast=True)  # after pytest-randomly's shuffle
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    cache = getattr(config, "cache", None)  # None with -p no:cacheprovider
    durations: dict[str, float] = cache.get(MODULE_DURATIONS, {}) if cache else {}
    items.sort(key=lambda item: -durations.get(item.nodeid.split("::", 1)[0], 0.0))  # stable: ties keep theirs


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Under xdist the controller sees every worker's reports; it alone writes the cache."""
    module = report.nodeid.split("::", 1)[0]
    _module_durations[module] = _module_durations.get(module, 0.0) + report.duration


def pytest_unconfigure(config: pytest.Config) -> None:
    cache = getattr(config, "cache", None)
    if cache is not None and _module_durations and not hasattr(config, "workerinput"):
        cache.set(MODULE_DURATIONS, {**cache.get(MODULE_DURATIONS, {}), **_module_durations})


def load_function_module(template: SamTemplate, logical_id: str) -> ModuleType:
    """Import a function's handler module fresh, by the template's CodeUri and Handler."""
    spec = template.function(logical_id)
    return load_module(template, logical_id, f"{spec.module}_{next(_module_ids)}")


@dataclass
class AwsCalls:
    """Every AWS API call made through boto3's default session, as (service, operation)."""

    calls: list[tuple[str, str]] = field(default_factory=list)

    def record(self, event_name: str, **_: Any) -> None:
        _prefix, service, operation = event_name.split(".")
        self.calls.append((service, operation))

    def count(self, service: str | None = None) -> int:
        return sum(1 for s, _ in self.calls if service is None or s == service)

    def names(self, service: str) -> list[str]:
        return [o for s, o in self.calls if s == service]

    def reset(self) -> None:
        self.calls.clear()


@pytest.fixture(scope="session", autouse=True)
def partner_code_never_imported() -> Iterator[None]:
    """Our tests never run the partner's handlers: no module of partner/ is imported in this process."""
    yield
    partner = (TEMPLATE.path.parent / "partner").resolve()
    imported = [
        m.__name__
        for m in list(sys.modules.values())
        if Path(getattr(m, "__file__", None) or "/").resolve().is_relative_to(partner)
    ]
    assert not imported, f"a test imported the partner's code: {imported}"


@pytest.fixture(scope="session")
def template() -> SamTemplate:
    return TEMPLATE


@functools.cache
def _warm_session() -> boto3.Session:
    return boto3.Session()


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        # mock_aws resets boto3's default session, so each test would load every service model
        # again (about 0.1 s a test); one session for the process keeps them loaded. Its credentials
        # are the fake ones above, and moto intercepts every session's clients alike.
        boto3.DEFAULT_SESSION = _warm_session()
        yield


#: The functions' AWS calls checked against their roles in this process (tools/permissions.py).
ROLES = Ledger()


@dataclass
class RoleCalls:
    recorder: CallRecorder
    stacks: list[Stack]

    def check(self, template: SamTemplate) -> None:
        denied: list[Call] = ROLES.check(template, self.stacks, self.recorder.take())
        unknown = sorted(line for line in ROLES.unresolved if any(line.startswith(f"{c.function}:") for c in denied))
        assert not denied, "\n".join(
            ["calls that the function's role in template.yaml does not allow:", *map(str, denied), *unknown]
        )


@pytest.fixture(scope="module")
def role_calls(template: SamTemplate) -> Iterator[RoleCalls]:
    """Every AWS call the functions make while the module runs (`acting_as` names the function), with
    the stacks provisioned meanwhile: each call must be allowed by its function's role in its stack."""
    recording = RoleCalls(CallRecorder(), [])
    provision = Provisioner.provision

    def provision_and_keep(self: Provisioner) -> Stack:
        stack = provision(self)
        recording.stacks.append(stack)
        return stack

    boto3.DEFAULT_SESSION = _warm_session()  # the session the functions' clients come from
    with hooked("before-parameter-build.*.*", recording.recorder.record), pytest.MonkeyPatch.context() as patch:
        patch.setattr(Provisioner, "provision", provision_and_keep)
        yield recording
    recording.check(template)  # what the module's stacks did after its last test


@pytest.fixture
def calls_within_roles(role_calls: RoleCalls, template: SamTemplate) -> Iterator[None]:
    yield
    role_calls.check(template)


def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # a pytest-xdist worker: the controller reports for all
        workeroutput["roles"] = json.dumps(ROLES.to_json())


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    output = getattr(node, "workeroutput", {}).get("roles")
    if output:
        ROLES.merge(json.loads(output))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if ROLES.checked:
        terminalreporter.section("the functions' calls against their roles")
        for line in ROLES.report():
            terminalreporter.write_line(line)


@pytest.fixture
def aws_calls(aws: None) -> Iterator[AwsCalls]:
    """Counts calls of clients created after this fixture (handlers create theirs lazily)."""
    recorder = AwsCalls()
    with hooked("before-call.*.*", recorder.record):
        yield recorder


@dataclass
class Faults:
    """Faults for the AWS calls of clients created after this fixture (the functions create theirs on
    their first invocation): `fail("sqs.SendMessage", error)` makes the next such call raise."""

    actions: dict[str, list[Callable[[], None]]] = field(default_factory=dict)

    def on_call(self, event_name: str, **_: Any) -> None:
        _prefix, service, operation = event_name.split(".")
        queued = self.actions.get(f"{service}.{operation}")
        if queued:
            queued.pop(0)()

    def fail(self, call: str, error: Exception) -> list[int]:
        """Raise `error` on the next `call` (service-id.Operation); the list counts the failures."""
        failures: list[int] = []

        def raise_error() -> None:
            failures.append(1)
            raise error

        self.actions.setdefault(call, []).append(raise_error)
        return failures

    def before(self, call: str, action: Callable[[], None]) -> None:
        """Run `action` before the next `call` (to slow it down, say)."""
        self.actions.setdefault(call, []).append(action)


@pytest.fixture
def faults(aws: None) -> Iterator[Faults]:
    injector = Faults()
    with hooked("before-call.*.*", injector.on_call):
        yield injector


@pytest.fixture
def stack(aws: None, template: SamTemplate) -> Stack:
    """What the functions use (no alarms, dashboard or log groups: `full_stack` has them), without the
    settings moto only records (no test reads a table's point-in-time recovery or the bucket's tags)."""
    secret_values = {"WebhookSigningSecret": LOCAL_DEV_SECRET}
    return Provisioner(
        template, reused_client, secret_values=secret_values, operations=False, record_only=False
    ).provision()


@pytest.fixture
def full_stack(aws: None, template: SamTemplate) -> Stack:
    return Provisioner(template, reused_client, secret_values={"WebhookSigningSecret": LOCAL_DEV_SECRET}).provision()


@pytest.fixture
def ingest_env(stack: Stack, template: SamTemplate, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    return function_env(stack, template, "IngestFunction", monkeypatch)


@pytest.fixture
def ingest_handler(
    ingest_env: dict[str, str], aws_calls: AwsCalls, faults: Faults, template: SamTemplate
) -> ModuleType:
    """IngestFunction's module, imported as Lambda would with the template's environment."""
    return load_function_module(template, "IngestFunction")


@pytest.fixture
def context(template: SamTemplate) -> LambdaContext:
    return LambdaContext(function_name="IngestFunction", timeout_seconds=template.function("IngestFunction").timeout)


@dataclass
class JsonLogs:
    stream: io.StringIO

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines() if line.strip()]

    @property
    def text(self) -> str:
        return self.stream.getvalue()


@pytest.fixture
def json_logs() -> Iterator[JsonLogs]:
    """What the Powertools Logger writes, formatted exactly as in CloudWatch."""
    from ntp_webhooks.observability import logger

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    logging.getLogger(logger.name).addHandler(handler)
    yield JsonLogs(stream)
    logging.getLogger(logger.name).removeHandler(handler)


def function_env(
    stack: Stack, template: SamTemplate, logical_id: str, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    env = stack.function_environment(template, logical_id)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def consumer_handlers(
    stack: Stack, template: SamTemplate, monkeypatch: pytest.MonkeyPatch
) -> Callable[[str], ModuleType]:
    """family -> that family's consumer function module, with its template environment."""

    def load(family: str) -> ModuleType:
        logical_id = f"{template_name(family)}ConsumerFunction"
        function_env(stack, template, logical_id, monkeypatch)
        return load_function_module(template, logical_id)

    return load


def template_with(directory: Path, old: str, new: str, *more: tuple[str, str]) -> SamTemplate:
    """A copy of template.yaml in `directory` with its one `old` (a family's line is written once, in
    the loop) replaced by `new`, and so on: for what reads the template, not for `sam build`."""
    text = TEMPLATE_PATH.read_text()
    for before, after in ((old, new), *more):
        assert text.count(before) == 1, f"template.yaml no longer holds {before!r} once"
        text = text.replace(before, after)
    path = directory / "template.yaml"
    path.write_text(text)
    return SamTemplate(path)


def queue_poller(stack: Stack, family: str, handler: Any, template: SamTemplate = TEMPLATE) -> QueuePoller:
    """The family's SQS event source mapping, emulated with the template's settings, invoking `handler`."""
    mapping = event_source_mapping(template, stack, f"{template_name(family)}ConsumerFunction")
    return QueuePoller(reused_client("sqs"), mapping, handler, wait_seconds=0)


#: `clock(seconds)` moves the wall clock forward.
Clock = Callable[[float], None]


@pytest.fixture
def clock() -> Iterator[Clock]:
    """`clock(seconds)`: the wall clock jumps (SQS visibility, claims' leases), nothing sleeps. A failed
    record comes back after `clock(poller.mapping.visibility_timeout)`, the template's, as on AWS."""
    with waits_move_the_clock() as shift:
        yield shift


@pytest.fixture
def isolated_subscriptions() -> Iterator[None]:
    """Handlers a test registers with `@on`, on the registry the consumer functions load, are gone
    after it; the partner's stay (imported first, so that they are registered for good)."""
    from ntp.replay import handler_names
    from ntp_webhooks.subscriptions import subscriptions

    handler_names()
    with subscriptions.restored():
        yield


@pytest.fixture(scope="module")
def pipeline(template: SamTemplate) -> Iterator[Pipeline]:
    """The whole pipeline on one moto stack for a module (provisioning is the slow part); tests use
    their own event IDs."""
    with mock_aws():
        boto3.DEFAULT_SESSION = _warm_session()
        yield Pipeline(template)


def empty_queues(stack: Stack) -> None:
    """Every queue of `stack` as a new one is, in-flight messages too: PurgeQueue asked of moto's backend
    (no call, and without AWS's one purge a minute), for a module's stack shared by its tests."""
    queues = get_backend("sqs")[ACCOUNT_ID][stack.pseudo["AWS::Region"]]
    with environment({"MOTO_SQS_ENFORCE_STRICT_QUEUE_PURGE_BEHAVIOUR": "false"}):
        for (_, attribute), name in stack.attributes.items():
            if attribute == "QueueName":
                queues.purge_queue(name)


def archived(stack: Stack) -> dict[str, Any]:
    """Event ID -> its archive record(s) in the stack's archive bucket (moto's Firehose writes at once)."""
    from ntp_webhooks.archive import PREFIX, records_in

    found: dict[str, Any] = {}
    for record in records_in(reused_client("s3"), stack.refs["ArchiveBucket"], [PREFIX]):
        found.setdefault(record.event_id, []).append(record)
    return found
