"""boto3 clients with timeouts that fit inside a webhook request.

botocore's defaults (60 s connect/read) would outlive the function timeout and turn an AWS outage
into a Lambda timeout (a 5xx from API Gateway with no body) instead of our JSON 503.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

REQUEST_CONFIG = Config(
    connect_timeout=2,
    read_timeout=3,
    retries={"max_attempts": 3, "mode": "standard"},
)


def client(service: str) -> Any:
    return boto3.client(service, config=REQUEST_CONFIG)  # type: ignore[call-overload]
