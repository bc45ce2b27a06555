"""What Secrets Manager does around a rotation function, for moto (which needs Docker to invoke it).

`RotateSecret` enables rotation, attaches AWSPENDING to a new version that has no value yet, then
invokes the function once per step with `{"Step", "SecretId", "ClientRequestToken"}`. moto's API
cannot create a version without a value: `moto_patches.label_pending_version` does.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from devtools.moto_patches import label_pending_version
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
        token = token or str(uuid.uuid4())
        label_pending_version(
            self.secret_id,
            token,
            rotation_lambda_arn=f"arn:aws:lambda:{self._region}:{ACCOUNT_ID}:function:RotationFunction",
            rotation_days=rotation_days,
            region=self._region,
        )
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
