"""Powertools Logger and Metrics, configured once per execution environment.

Service name, namespace and level come from the POWERTOOLS_* variables that template.yaml sets.
Log lines are lean on purpose (log bytes are a cost per webhook, docs/cost.md): no code location, and
none of the keys the log group already tells (function name, ARN and memory, the service).
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

#: Libraries whose DEBUG lines carry request and response payloads: botocore logs GetSecretValue's
#: response (the signing secret), PutSecretValue's parameters (a new key) and SendMessage's body.
LIBRARY_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer", "aws_lambda_powertools")
#: The documented, off-by-default switch (template parameter LibraryLogLevel) that lets them log more.
LIBRARY_LOG_LEVEL_VARIABLE = "LIBRARY_LOG_LEVEL"


def quiet_libraries(environ: dict[str, str] | os._Environ[str] = os.environ) -> None:
    """Hold third-party loggers at WARNING, whatever the application log level.

    With JSON logs the Lambda runtime sets the root logger to the function's ApplicationLogLevel, so
    at DEBUG every library logger would inherit it. Only LIBRARY_LOG_LEVEL may lower this floor.
    """
    level = environ.get(LIBRARY_LOG_LEVEL_VARIABLE, "").upper() or "WARNING"
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        level = "WARNING"
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(level)


quiet_libraries()

# No `timestamp`: CloudWatch stamps every line (@timestamp in Logs Insights). No `xray_trace_id`: the
# functions are not traced, and Lambda's trace header would add 52 bytes to every line for nothing.
logger = Logger(location=None, timestamp=None, xray_trace_id=None)
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
