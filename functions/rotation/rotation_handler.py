"""RotationFunction: Secrets Manager's four-step rotation of the webhook signing secret.

Thin on purpose: the steps are in `ntp_webhooks.rotation` (SharedLayer).
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ntp_webhooks.aws_clients import client
from ntp_webhooks.observability import inject_context
from ntp_webhooks.rotation import Rotator, SnsNoticeRegistrar

NOTICES_TOPIC_ARN = os.environ["ROTATION_NOTICES_TOPIC_ARN"]


@cache
def _rotator() -> Rotator:
    return Rotator(client("secretsmanager"), SnsNoticeRegistrar(client("sns"), NOTICES_TOPIC_ARN))


@inject_context()
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> None:
    _rotator().handle(event["Step"], event["SecretId"], event["ClientRequestToken"])
