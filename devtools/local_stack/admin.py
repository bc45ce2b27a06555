"""Local-only operator actions (`ntp rotate --local`, `ntp emergency-rotate --local`): on AWS these are
Secrets Manager's rotation and a configuration change that recycles environments. `secret` reads the
current signing secret (AWSCURRENT), as `ntp secret` does from Secrets Manager on AWS."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Admin:
    def __init__(
        self,
        secrets: Any,
        secret_id: str,
        invoke_rotation: Callable[[dict[str, Any]], Any],
        recycle_ingest: Callable[[], None],
        region: str,
    ) -> None:
        self._secrets = secrets
        self._secret_id = secret_id
        self._invoke_rotation = invoke_rotation
        self._recycle_ingest = recycle_ingest
        self._region = region

    def __call__(self, action: str) -> tuple[int, dict[str, Any]]:
        if action == "secret":  # what `ntp send/sign/secret --local` sign with, without loading boto3
            return 200, {"secret": self.current_secret()}
        # Imported here: they load ntp_webhooks, whose Powertools objects must see the functions' environment.
        from devtools.rotation_service import RotationService
        from ntp import operations

        rotation = RotationService(self._secret_id, self._invoke_rotation, region=self._region)
        if action == "rotate":
            return 200, {"rotated": True, "new_version": rotation.rotate()}
        if action == "emergency-rotate":
            token = rotation.rotate()
            revoked = operations.revoke_previous(self._secrets, self._secret_id)
            self._recycle_ingest()  # a fresh environment: no cached keys
            return 200, {"new_version": token, "revoked_version": revoked, "recycled": "IngestFunction"}
        return 404, {"error": f"unknown action {action}"}

    def current_secret(self) -> str:
        return str(self._secrets.get_secret_value(SecretId=self._secret_id, VersionStage="AWSCURRENT")["SecretString"])
