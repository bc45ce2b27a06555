"""What Secrets Manager does around a rotation function, for moto (which needs Docker to invoke it).

`RotateSecret` enables rotation, attaches AWSPENDING to a new version that has no value yet, then
invokes the function once per step with `{"Step", "SecretId", "ClientRequestToken"}`. moto's API
cannot create a version without a value, so `start` makes it in moto's in-process backend. That
works with `mock_aws` and with a `ThreadedMotoServer` in this process.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from moto.secretsmanager.models import secretsmanager_backends

from devtools.provision import ACCOUNT_ID
from ntp_webhooks.rotation import STEPS

Invoke = Callable[[dict[str, Any]], Any]


class RotationService:
    def __init__(self, secret_id: str, invoke: Invoke, *, region: str = "us-east-1") -> None:
        self.secret_id = secret_id
        self._invoke = invoke
        self._region = region

    def start(self, rotation_days: int = 30, token: str | None = None) -> str:
        """Begin a rotation: enable it, label a value-less new version AWSPENDING; returns its token."""
        secret: Any = secretsmanager_backends[ACCOUNT_ID][self._region].secrets[self.secret_id]
        token = token or str(uuid.uuid4())
        secret.remove_version_stages_from_old_versions(["AWSPENDING"])
        secret.versions[token] = {"createdate": int(time.time()), "version_id": token, "version_stages": ["AWSPENDING"]}
        secret.rotation_requested = True
        secret.rotation_enabled = True
        secret.rotation_lambda_arn = f"arn:aws:lambda:{self._region}:{ACCOUNT_ID}:function:RotationFunction"
        secret.auto_rotate_after_days = rotation_days
        secret.last_rotation_date = int(time.time())
        return token

    def step(self, step: str, token: str) -> Any:
        return self._invoke({"Step": step, "SecretId": self.secret_id, "ClientRequestToken": token})

    def rotate(self, between_steps: Callable[[str], None] | None = None) -> str:
        """A whole rotation; `between_steps(step)` runs after each step (deliveries, checks)."""
        token = self.start()
        for step in STEPS:
            self.step(step, token)
            if between_steps is not None:
                between_steps(step)
        return token
