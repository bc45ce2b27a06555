"""Powertools Logger and Metrics, configured once per execution environment.

Service name, namespace and level come from the POWERTOOLS_* variables that template.yaml sets.
Log lines are lean on purpose (log bytes are a cost per webhook, docs/cost.md): no code location, and
none of the keys the log group already tells (function name, ARN and memory, the service).
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from botocore.model import OperationModel

#: Libraries whose DEBUG lines carry request and response payloads: botocore logs GetSecretValue's
#: response (the signing secret), PutSecretValue's parameters (a new key), SendMessage's body and
#: PutRecord's (base64). `without_payloads` keeps those values out of every line, at every level.
LIBRARY_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer", "aws_lambda_powertools")
#: The documented, off-by-default switch (template parameter LibraryLogLevel) that lets them log more.
LIBRARY_LOG_LEVEL_VARIABLE = "LIBRARY_LOG_LEVEL"
#: The libraries' lines whose arguments are known to hold no payload (hook and event names, endpoints,
#: timeouts, response headers): they are logged as the library wrote them. Not botocore's "Sending http
#: request": its headers carry the session token (X-Amz-Security-Token). Every other
#: line of theirs is logged with its text and the type of each argument instead of its value (numbers
#: and botocore's operation name excepted), so a line added by a new botocore shows no value either.
PAYLOAD_FREE_LINES = frozenset(
    {
        "Event %s: calling handler %s",
        "Changing event name from %s to %s",
        "Looking for endpoint for %s via: %s",
        "Calling endpoint provider with parameters: %s",
        "Endpoint provider result: %s",
        "Setting %s timeout as %s",
        "Registering retry handlers for service: %s",
        "Response headers: %r",
        "Retry needed, action of: %s",
        "Starting new HTTPS connection (%d): %s:%s",
        "Starting new HTTP connection (%d): %s:%s",
        '%s://%s:%s "%s %s %s" %s %s',  # urllib3's request line: path and status
    }
)
_SHOWN_TYPES: tuple[type, ...] = (int, float, type(None), OperationModel)  # bool is an int


class _Withheld:
    """Stands for a value a library line would have logged: its type, never its content."""

    __slots__ = ("_text",)

    def __init__(self, value: object) -> None:
        self._text = f"<{type(value).__name__}: not logged>"

    def __str__(self) -> str:
        return self._text

    __repr__ = __str__


def _shown(value: object) -> object:
    return value if isinstance(value, _SHOWN_TYPES) else _Withheld(value)


def without_payloads(record: logging.LogRecord) -> logging.LogRecord:
    """A library's log record with no value of a request or a response in it (see PAYLOAD_FREE_LINES).
    The product's own lines are left as they are: they never carry a key or a body (tests search them)."""
    if record.name.partition(".")[0] not in LIBRARY_LOGGERS:
        return record
    if not isinstance(record.msg, str):  # `logger.debug(some_object)`: its text is the payload
        record.msg, record.args = str(_Withheld(record.msg)), ()
    elif record.args and record.msg not in PAYLOAD_FREE_LINES:
        if isinstance(record.args, Mapping):
            record.args = {name: _shown(value) for name, value in record.args.items()}
        else:
            record.args = tuple(_shown(value) for value in record.args)
    return record


class _RecordsWithoutPayloads:
    """The log record factory, wrapped: every record leaves it without payloads, whichever handler
    (Lambda's, Powertools', a test's, one the partner's code adds later) writes or keeps it."""

    def __init__(self, factory: Callable[..., logging.LogRecord]) -> None:
        self.factory = factory

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        return without_payloads(self.factory(*args, **kwargs))


def withhold_payloads() -> None:
    """Install `without_payloads` for every log record of this process (once)."""
    factory = logging.getLogRecordFactory()
    if not isinstance(factory, _RecordsWithoutPayloads):
        logging.setLogRecordFactory(_RecordsWithoutPayloads(factory))


def quiet_libraries(environ: Mapping[str, str] = os.environ) -> None:
    """Hold third-party loggers at WARNING, whatever the application log level.

    With JSON logs the Lambda runtime sets the root logger to the function's ApplicationLogLevel, so
    at DEBUG every library logger would inherit it. Only LIBRARY_LOG_LEVEL may lower this floor, and
    whatever it is, the libraries' lines carry no payload (`withhold_payloads`).
    """
    withhold_payloads()
    level = environ.get(LIBRARY_LOG_LEVEL_VARIABLE, "").upper() or "WARNING"
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        level = "WARNING"
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(level)


quiet_libraries()

# No `timestamp`: CloudWatch stamps every line (@timestamp in Logs Insights). No `xray_trace_id` on
# every line (52 bytes each): only each webhook's summary line carries its trace ID (`trace_id`).
logger = Logger(location=None, timestamp=None, xray_trace_id=None)
#: Lambda's trace header for the invocation, set whether active tracing is on or not.
TRACE_HEADER_VARIABLE = "_X_AMZN_TRACE_ID"


def trace_id(header: str | None = None) -> str | None:
    """The Root of an X-Ray trace header (`Root=1-...;Parent=...;Sampled=0`): by default the invocation's.
    The ingest's summary line logs its own; the consumer's logs the one SQS kept (`AWSTraceHeader`,
    which botocore's header on SendMessage sets), so one webhook's lines join across the queue."""
    header = os.environ.get(TRACE_HEADER_VARIABLE) if header is None else header
    for part in (header or "").split(";"):
        key, _, value = part.partition("=")
        if key.strip() == "Root" and value.strip():
            return value.strip()
    return None


# The normal path emits no metric on purpose (SQS counts accepted deliveries): not worth a warning.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)
metrics = Metrics()
_REDUNDANT_KEYS = ["function_name", "function_arn", "function_memory_size", "service"]


def inject_context[F: Callable[..., Any]](correlation_id_path: str | None = None) -> Callable[[F], F]:
    """Powertools' `inject_lambda_context` (request ID, cold start, correlation ID), minus the keys
    every line of a function's own log group would repeat."""

    def decorate(handler: F) -> F:
        def without_redundant_keys(event: Any, context: Any) -> Any:
            logger.remove_keys(_REDUNDANT_KEYS)
            return handler(event, context)

        wrapped = logger.inject_lambda_context(
            correlation_id_path=correlation_id_path,
            clear_state=True,
            log_event=False,  # never, whatever POWERTOOLS_LOGGER_LOG_EVENT says: events carry bodies
        )(without_redundant_keys)
        return wrapped  # type: ignore[return-value]

    return decorate


def count(name: str, **dimensions: str) -> None:
    """Count one `name`; with dimensions it is emitted on its own so they do not leak onto others."""
    if not dimensions:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
        return
    with single_metric(
        name=name,
        unit=MetricUnit.Count,
        value=1,
        namespace=metrics.namespace,
        default_dimensions=metrics.default_dimensions,
    ) as metric:
        for key, value in dimensions.items():
            metric.add_dimension(name=key, value=value)
