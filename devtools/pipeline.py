"""The whole pipeline in one process on moto: ingest, the family queues and the consumer functions,
each imported by its template Handler with its template environment (tests, fault table, bench). A
tool may give the functions its own handlers, time budget and keyring clock: each module loaded gets
builders (`build_ingest`, `build_consumer`) bound to them.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import itertools
import os
import threading
import time
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any

import boto3

from devtools import moto_patches
from devtools.event_source import EventSourceMapping, QueuePoller, event_source_mapping
from devtools.lambda_events import LambdaContext, acting_as
from devtools.provision import Provisioner, Stack
from devtools.sam_template import SamTemplate, load_function_module
from ntp.deliveries import LOCAL_DEV_SECRET
from ntp_webhooks.routing import template_name

if TYPE_CHECKING:
    from ntp_webhooks.aws_clients import Deadline
    from ntp_webhooks.consumer import Consumer
    from ntp_webhooks.settings import ConsumerSettings
    from ntp_webhooks.subscriptions import Subscriptions

_module_ids = itertools.count()


@contextlib.contextmanager
def environment(variables: dict[str, str]) -> Iterator[None]:
    """Set `variables` for the duration (a function reads its environment when it is imported)."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def hooked(event: str, handler: Callable[..., Any]) -> Iterator[None]:
    """`handler` on botocore `event` (e.g. "before-call.*.*") for the clients created meanwhile through
    boto3's default session, as the functions create theirs on their first invocation."""
    events = boto3.DEFAULT_SESSION.events if boto3.DEFAULT_SESSION else boto3._get_default_session().events
    events.register(event, handler)
    try:
        yield
    finally:
        events.unregister(event, handler)


#: What a client copies from its session's event emitter when it is made: the handlers in each
#: node of the emitter's trie (the objects, kept alive so that their ids cannot be reused).
_Handlers = tuple[tuple[tuple[str, ...], tuple[Any, ...]], ...]
_REUSED_CLIENTS: collections.OrderedDict[tuple[Any, ...], tuple[_Handlers, Any]] = collections.OrderedDict()
_handlers_seen: dict[int, tuple[Any, _Handlers]] = {}
_reuse_lock = threading.Lock()  # tests and tools call it from their threads too


def _session_handlers(events: Any) -> _Handlers | None:
    """The handlers registered on `events` (a session's emitter), or None if botocore's internals differ."""
    emitter = getattr(events, "_emitter", events)  # boto3 hands out an EventAliaser around the emitter
    root = getattr(getattr(emitter, "_handlers", None), "_root", None)
    changed = getattr(emitter, "_lookup_cache", None)  # botocore replaces it on every (un)register
    if root is None or changed is None:
        return None
    seen = _handlers_seen.get(id(emitter))
    if seen is not None and seen[0] is changed:
        return seen[1]
    found: list[tuple[tuple[str, ...], tuple[Any, ...]]] = []
    pending: list[tuple[tuple[str, ...], Any]] = [((), root)]
    while pending:
        path, node = pending.pop()
        handlers = tuple(handler for section in node.get("values") or () for handler in section)
        if handlers:  # a node whose handlers were all unregistered stays, empty
            found.append((path, handlers))
        pending += [((*path, chunk), child) for chunk, child in node["children"].items()]
    if len(_handlers_seen) > 16:  # sessions made by mock_aws without the tests' warm one
        _handlers_seen.clear()
    _handlers_seen[id(emitter)] = (changed, tuple(found))  # `changed` held: its id cannot be reused meanwhile
    return tuple(found)


def reused_client(service: str, **kwargs: Any) -> Any:
    """`boto3.client(service, **kwargs)` for the tests' and tools' own calls, reused across tests and
    mock_aws contexts: making a client costs ~5 ms, more than most moto calls. A client copies its
    session's hooks when made, so one is reused only while the session holds the very same handlers
    (the `aws_calls` and `faults` of the test, the module's role recorder), with the same AWS_*
    environment: it then behaves as a new one would. moto intercepts every client once imported (its
    stubber is one of botocore's built-in handlers); mock_aws only switches it on and resets the data.
    Never register a hook on a reused client's own `meta.events`: make a client with boto3 for that."""
    with _reuse_lock:
        return _reused_client(service, kwargs)


def _reused_client(service: str, kwargs: dict[str, Any]) -> Any:
    session: Any = boto3._get_default_session()  # what boto3.client uses
    handlers = _session_handlers(session.events)
    if handlers is None:
        return session.client(service, **kwargs)
    environment = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_")))
    key = (
        session,
        service,
        tuple(sorted(kwargs.items())),
        environment,
        tuple((path, tuple(map(id, found))) for path, found in handlers),
    )
    try:
        hash(key)
    except TypeError:  # an unhashable argument (a botocore Config): a client of its own
        return session.client(service, **kwargs)
    if key in _REUSED_CLIENTS:
        _REUSED_CLIENTS.move_to_end(key)
        return _REUSED_CLIENTS[key][1]
    client = session.client(service, **kwargs)
    _REUSED_CLIENTS[key] = (handlers, client)  # `handlers` held: their ids in the key stay theirs
    while len(_REUSED_CLIENTS) > 64:  # a few services under a few sets of hooks at a time
        _REUSED_CLIENTS.popitem(last=False)
    return client


#: moto's fake account: nothing can reach a real one while these are set.
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def global_environment(template: SamTemplate) -> dict[str, str]:
    """The template's Globals variables with literal values (Powertools reads them at import)."""
    variables = template.doc["Globals"]["Function"]["Environment"]["Variables"]
    return {name: value for name, value in variables.items() if isinstance(value, str)}


class Pipeline:
    """Functions of a template, provisioned on moto (the caller holds `mock_aws`). `subscriptions`: the
    consumers run these handlers instead of the partner's; `budget`: the time budget of the functions'
    AWS calls; `keyring_clock`: the ingest keyring's monotonic clock."""

    def __init__(
        self,
        template: SamTemplate,
        parameter_overrides: dict[str, str] | None = None,
        *,
        subscriptions: Subscriptions | None = None,
        budget: Deadline | None = None,
        keyring_clock: Callable[[], float] | None = None,
    ) -> None:
        moto_patches.apply()
        from ntp_webhooks.aws_clients import deadline  # the layer reads its environment at import

        self.template = template
        self.subscriptions = subscriptions
        self.budget = budget or deadline
        self.keyring_clock = keyring_clock
        self.stack: Stack = Provisioner(
            template,
            reused_client,
            parameter_overrides=parameter_overrides,
            secret_values={"WebhookSigningSecret": LOCAL_DEV_SECRET},
            operations=False,  # the functions call none of it
        ).provision()
        self.ingest_timeout = float(template.function("IngestFunction").timeout)
        self.cold_start()

    def load(self, logical_id: str) -> ModuleType:
        """A fresh import of the function (a new execution environment)."""
        spec = self.template.function(logical_id)
        with environment(self.stack.function_environment(self.template, logical_id)):
            module = load_function_module(self.template, logical_id, f"{spec.module}_{next(_module_ids)}")
        self._inject(module)
        return module

    def _inject(self, module: ModuleType) -> None:
        """Bind the module's builders to this pipeline's handlers, budget and keyring clock (the module
        is this pipeline's own: nothing else sees the change)."""
        from ntp_webhooks.consumer import build_consumer
        from ntp_webhooks.ingest import build_ingest

        function: Any = module
        if hasattr(function, "build_ingest"):
            clock = self.keyring_clock or time.monotonic
            function.build_ingest = functools.partial(build_ingest, budget=self.budget, keyring_clock=clock)
        if hasattr(function, "build_consumer"):
            own = self.subscriptions

            def consumer(settings: ConsumerSettings, subscriptions: Subscriptions) -> Consumer:
                return build_consumer(settings, subscriptions if own is None else own, budget=self.budget)

            function.build_consumer = consumer

    def cold_start(self) -> None:
        """New execution environments for every function: caches and clients start empty."""
        self.ingest = self.load("IngestFunction")
        self.consumers = {
            family: self.load(f"{template_name(family)}ConsumerFunction") for family in self.template.families
        }

    def deliver(self, api_event: dict[str, Any], timeout_seconds: float | None = None) -> dict[str, Any]:
        context = LambdaContext(function_name="IngestFunction", timeout_seconds=timeout_seconds or self.ingest_timeout)
        with acting_as("IngestFunction"):
            response: dict[str, Any] = self.ingest.lambda_handler(api_event, context)
        return response

    def mapping(self, family: str) -> EventSourceMapping:
        """The family consumer's SQS event source mapping, as the template configures it."""
        return event_source_mapping(self.template, self.stack, f"{template_name(family)}ConsumerFunction")

    def poller(self, family: str, handler: Any = None, **options: Any) -> QueuePoller:
        """The family's emulated mapping, invoking its consumer (or `handler`); `options` as QueuePoller's."""
        invoke = handler or self.consumers[family].lambda_handler
        return QueuePoller(reused_client("sqs"), self.mapping(family), invoke, wait_seconds=0, **options)

    def depth(self, queue: str) -> int:
        """Visible plus in-flight messages of a queue (by logical ID)."""
        attributes = reused_client("sqs").get_queue_attributes(
            QueueUrl=self.stack.refs[queue],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])
