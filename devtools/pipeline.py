"""The whole pipeline in one process on moto: ingest, the family queues and the consumer functions,
each imported by its template Handler with its template environment (tests, fault table, bench). A
tool may give the functions its own handlers, time budget and keyring clock: each module loaded gets
builders (`build_ingest`, `build_consumer`) bound to them.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
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
            boto3.client,
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
        return QueuePoller(boto3.client("sqs"), self.mapping(family), invoke, wait_seconds=0, **options)

    def depth(self, queue: str) -> int:
        """Visible plus in-flight messages of a queue (by logical ID)."""
        attributes = boto3.client("sqs").get_queue_attributes(
            QueueUrl=self.stack.refs[queue],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])
