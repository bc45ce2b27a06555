"""boto3 clients with timeouts that fit inside a webhook request.

botocore's defaults (60 s connect/read, retried) would outlive the function timeout and turn an
AWS outage into a Lambda timeout (a bare 500 from API Gateway) instead of our JSON 503. Here one
call gives up after 2 attempts of at most 1 s + 2 s, well inside the 10 s ingest timeout.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

CONNECT_TIMEOUT_S = 1
READ_TIMEOUT_S = 2
ATTEMPTS = 2
REQUEST_CONFIG = Config(
    connect_timeout=CONNECT_TIMEOUT_S,
    read_timeout=READ_TIMEOUT_S,
    retries={"total_max_attempts": ATTEMPTS, "mode": "standard"},
)


def client(service: str) -> Any:
    return boto3.client(service, config=REQUEST_CONFIG)  # type: ignore[call-overload]
