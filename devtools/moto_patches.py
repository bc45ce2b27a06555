"""Every change this project makes to moto's internals, in one place: where moto is weaker than AWS in
a way `make run` and the tests depend on, or lacks an API the product calls, this restores AWS's
behaviour and nothing more. `tests/unit/test_moto_patches.py` checks each patch against the installed
moto and names the one that breaks.

- DynamoDB: one lock around each write and read, so a conditional write checks and writes as one step
  and a read never sees an item half-written, as on AWS (docs/local-stack.md).
- SQS: `StartMessageMoveTask` (`ntp redrive`) moves every visible message back at once (AWS, at a rate).
- Secrets Manager: `label_pending_version`, the value-less AWSPENDING version moto's API cannot create.
- KMS: symmetric keys share one generated RSA key (moto makes one per key, 40 ms each).
- DynamoDB expressions: an update expression is parsed once per text (moto parses it twice a call,
  and its validator works on a deep copy, so the parsed tree is never changed), and each of the
  validator's tree walkers builds its node-type table once instead of at every node. A sixth of an
  UpdateItem call (6.8 to 5.6 ms), the tests' most frequent; the same trees, validated the same way.
- moto's request dispatch: the action's method name and a response class's method names are worked
  out once (moto derives them again on every request: a string conversion and `inspect.getmembers`).
- botocore (only ever against moto): sessions share one data loader (each new session parses the model
  files again, ~20 ms a client); a client's event aliaser shares its session's cache of aliased event
  names (each client starts with an empty one and works out the same names again, 5% of the tests'
  CPU); `retries_without_backoff` skips the sleep before a retry, for the tools that inject thousands
  of faults. The retry, and every decision around it, is unchanged.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any
from unittest import mock

import botocore.endpoint
import botocore.hooks
import botocore.loaders
import botocore.session
import moto.core.responses as core_responses
import moto.dynamodb.models as dynamodb_models
import moto.dynamodb.responses as dynamodb_responses
import moto.kms.models as kms_models
from moto.core.responses import ActionResult
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.parsing import ast_nodes, expressions
from moto.secretsmanager.models import secretsmanager_backends
from moto.sqs.responses import SQSResponse

from devtools.provision import ACCOUNT_ID

#: moto's expression modules, untyped for mypy (it sees neither class).
dynamodb_ast: Any = ast_nodes
dynamodb_expressions: Any = expressions
_ITEM_LOCK = threading.RLock()
DYNAMODB_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")
DYNAMODB_READS = ("get_item", "batch_get_item", "query", "scan", "transact_get_items")
_original_private_key: Callable[[str], Any] = kms_models.generate_private_key  # type: ignore[attr-defined]


def apply() -> None:
    """Idempotent: patches moto once per process."""
    for name in DYNAMODB_WRITES + DYNAMODB_READS:
        method = getattr(DynamoDBBackend, name)
        if not getattr(method, "__patched__", False):
            setattr(DynamoDBBackend, name, _atomic(method))
    if not getattr(kms_models.generate_private_key, "__patched__", False):  # type: ignore[attr-defined]
        kms_models.generate_private_key = _private_key  # type: ignore[attr-defined]
    SQSResponse.start_message_move_task = _start_message_move_task  # type: ignore[attr-defined]
    dispatch: Any = core_responses
    if not hasattr(dispatch.method_names_from_class, "cache_clear"):
        dispatch.camelcase_to_underscores = functools.lru_cache(maxsize=4096)(dispatch.camelcase_to_underscores)
        dispatch.method_names_from_class = functools.cache(dispatch.method_names_from_class)
    dispatch.method_names_from_class.cache_clear()  # a method added above is one of its class's
    botocore.session.create_loader = _shared_loader
    aliaser: Any = botocore.hooks.EventAliaser
    if not getattr(aliaser.__copy__, "__patched__", False):
        aliaser.__copy__ = _aliaser_sharing_names(aliaser.__copy__)
    # Both modules call UpdateExpressionParser.make by this name: the class itself stays moto's.
    parsers: tuple[Any, ...] = (dynamodb_models, dynamodb_responses)
    for module in parsers:
        module.UpdateExpressionParser = _ParsedOnce
    dynamodb_ast.DepthFirstTraverser.nodes_to_be_processed = _node_types
    dynamodb_ast.DepthFirstTraverser.process = _process


class _ParsedOnce(dynamodb_expressions.UpdateExpressionParser):  # type: ignore[misc]
    """moto's parser, with its result kept per expression text. Safe because no caller changes the
    tree: the validator deep-copies it first, and the response only searches it."""

    @classmethod
    def make(cls, expression_str: str) -> Any:
        return _parsed(expression_str)


@functools.lru_cache(maxsize=1024)
def _parsed(expression: str) -> Any:
    return dynamodb_expressions.UpdateExpressionParser.make(expression)


def _processing(walker: Any) -> dict[type, Callable[[Any], Any]]:
    """A walker's node-type table (constant per walker: node classes to its own bound methods), built
    once per walker; moto builds it again at every node it visits."""
    table: dict[type, Callable[[Any], Any]] | None = walker.__dict__.get("_ntp_processing")
    if table is None:
        table = walker.__dict__["_ntp_processing"] = walker._processing_map()
    return table


def _node_types(walker: Any) -> tuple[type, ...]:
    types: tuple[type, ...] | None = walker.__dict__.get("_ntp_node_types")
    if types is None:
        types = walker.__dict__["_ntp_node_types"] = tuple(_processing(walker))
    return types


def _process(walker: Any, node: Any) -> Any:
    for node_type, processor in _processing(walker).items():
        if isinstance(node, node_type):
            return processor(node)
    return None


def _aliaser_sharing_names(copy: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A client's aliaser is a copy of its session's, with the same aliases: the names they give are
    the same, so the copy keeps the session's cache of them instead of an empty one."""

    @functools.wraps(copy)
    def sharing(self: Any) -> Any:
        made = copy(self)
        made._alias_name_cache = self._alias_name_cache
        return made

    sharing.__patched__ = True  # type: ignore[attr-defined]
    return sharing


@functools.cache
def _shared_loader(search_path_string: str | None = None) -> Any:
    return botocore.loaders.create_loader(search_path_string)


def _atomic(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _ITEM_LOCK:
            return method(*args, **kwargs)

    locked.__patched__ = True  # type: ignore[attr-defined]
    return locked


@functools.cache
def _shared_private_key(key_spec: str) -> Any:
    return _original_private_key(key_spec)


def _private_key(key_spec: str) -> Any:
    if key_spec == "SYMMETRIC_DEFAULT":
        return _shared_private_key(key_spec)
    return _original_private_key(key_spec)


_private_key.__patched__ = True  # type: ignore[attr-defined]


def _start_message_move_task(self: Any) -> ActionResult:
    backend = self.sqs_backend
    source_arn = self._get_param("SourceArn")
    destination_arn = self._get_param("DestinationArn")
    dead_letter = next(q for q in backend.queues.values() if q.queue_arn == source_arn)
    if destination_arn:
        destination = next(q for q in backend.queues.values() if q.queue_arn == destination_arn)
    else:  # back to the queue whose redrive policy names this one
        destination = backend.list_dead_letter_source_queues(dead_letter.name)[0]
    for message in dead_letter.messages:
        backend.send_message(destination.name, message.body, message_attributes=message.message_attributes)
        dead_letter._messages.remove(message)
    return ActionResult({"TaskHandle": str(uuid.uuid4())})


def label_pending_version(
    secret_id: str, token: str, *, rotation_lambda_arn: str, rotation_days: int, region: str = "us-east-1"
) -> None:
    """What RotateSecret does before invoking the rotation function: enable rotation and label
    AWSPENDING on a new version `token` that has no value yet (in moto's in-process backend, so it
    works with `mock_aws` and with a moto server in this process)."""
    secret: Any = secretsmanager_backends[ACCOUNT_ID][region].secrets[secret_id]
    secret.remove_version_stages_from_old_versions(["AWSPENDING"])
    secret.versions[token] = {"createdate": int(time.time()), "version_id": token, "version_stages": ["AWSPENDING"]}
    secret.rotation_requested = True
    secret.rotation_enabled = True
    secret.rotation_lambda_arn = rotation_lambda_arn
    secret.auto_rotate_after_days = rotation_days
    secret.last_rotation_date = int(time.time())


@contextlib.contextmanager
def retries_without_backoff() -> Iterator[None]:
    """botocore sleeps `time.sleep(delay)` in `Endpoint._needs_retry` before a retry; here it does not."""
    with mock.patch.object(botocore.endpoint, "time", SimpleNamespace(sleep=lambda _seconds: None)):
        yield
