"""Secrets Manager rotation of the webhook signing secret (createSecret, setSecret, testSecret,
finishSecret), following the service's contract for rotation functions.

Secrets Manager retries steps, so every step is idempotent. The new key has to reach the sender,
whose API for that is not published. setSecret therefore hands the new version to a pluggable
`KeyRegistrar`. The built-in one publishes a notice (secret ARN and version ID, never the key) to an
SNS topic, and an operator passes the key on.
"""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import ClientError

from ntp_webhooks import signature
from ntp_webhooks.errors import error_code
from ntp_webhooks.keyring import CURRENT, PENDING, Keyring
from ntp_webhooks.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sns import SNSClient

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
#: Same format as the template's GenerateSecretString: 64 letters and digits (~381 bits).
KEY_LENGTH = 64
_ALPHABET = string.ascii_letters + string.digits
#: What any key must look like to be used for HMAC: printable, no surrounding space, long enough.
_WELL_FORMED = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]{30,}[\x21-\x7e])")
CANARY_BODY = b'{"id":"evt_rotation_canary","event":"rotation.canary","timestamp":"1970-01-01T00:00:00Z","data":{}}'


class RotationError(Exception):
    """The request is not one this secret can honour; Secrets Manager marks the rotation failed."""


def generate_key() -> str:
    """A new signing key from the operating system's CSPRNG."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(KEY_LENGTH))


def is_well_formed(key: str) -> bool:
    return _WELL_FORMED.fullmatch(key) is not None


class KeyRegistrar(Protocol):
    """Tells the sender (or an operator) about a new pending key. Called by setSecret, maybe twice."""

    def register(self, secret_arn: str, version_id: str, key: str) -> None: ...


class SnsNoticeRegistrar:
    """Publishes that a new key is pending, with the secret ARN and version ID and never the key.

    An operator fetches the key (`aws secretsmanager get-secret-value --version-stage AWSPENDING`)
    and gives it to NowToPrint. Once NowToPrint's API for this is known, implement
    `KeyRegistrar.register` to call it, and use it instead of this class in
    functions/rotation/rotation_handler.py.
    """

    def __init__(self, client: SNSClient, topic_arn: str) -> None:
        self._client = client
        self._topic_arn = topic_arn

    def register(self, secret_arn: str, version_id: str, key: str) -> None:
        del key  # deliberately not sent
        self._client.publish(
            TopicArn=self._topic_arn,
            Subject="NowToPrint webhook signing key rotation: new key pending",
            Message=(
                "A new webhook signing key is pending.\n"
                f"Secret: {secret_arn}\nVersion: {version_id}\n\n"
                "Give it to NowToPrint as the webhook secret. Until rotation finishes, deliveries\n"
                "signed with the current key and with the pending key are both accepted. After\n"
                "it, the old key is accepted for PreviousKeyGraceHours.\n"
                f"aws secretsmanager get-secret-value --secret-id {secret_arn} --version-id {version_id}"
            ),
            MessageAttributes={"versionId": {"DataType": "String", "StringValue": version_id}},
        )


class Rotator:
    def __init__(
        self,
        client: SecretsManagerClient,
        registrar: KeyRegistrar,
        new_key: Callable[[], str] = generate_key,
    ) -> None:
        self._client = client
        self._registrar = registrar
        self._new_key = new_key

    def handle(self, step: str, secret_id: str, token: str) -> None:
        described = self._client.describe_secret(SecretId=secret_id)
        if not described.get("RotationEnabled"):
            raise RotationError(f"rotation is not enabled for {secret_id}")
        versions = described.get("VersionIdsToStages", {})
        if token not in versions:
            raise RotationError("the request token is not a version of the secret")
        if CURRENT in versions[token]:
            logger.info("version is already AWSCURRENT; nothing to do", extra={"step": step, "version_id": token})
            return
        if PENDING not in versions[token]:
            raise RotationError("the request token is not the AWSPENDING version of the secret")
        steps: dict[str, Callable[[str, str], None]] = {
            "createSecret": self.create_secret,
            "setSecret": self.set_secret,
            "testSecret": self.test_secret,
            "finishSecret": self.finish_secret,
        }
        if step not in steps:
            raise RotationError(f"unknown rotation step {step!r}")
        logger.info("rotation step", extra={"step": step, "version_id": token})
        steps[step](secret_id, token)

    def create_secret(self, secret_id: str, token: str) -> None:
        self._client.get_secret_value(SecretId=secret_id, VersionStage=CURRENT)  # the secret must be usable
        try:
            self._client.get_secret_value(SecretId=secret_id, VersionId=token, VersionStage=PENDING)
            return  # created by an earlier attempt of this step
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
        self._client.put_secret_value(
            SecretId=secret_id, ClientRequestToken=token, SecretString=self._new_key(), VersionStages=[PENDING]
        )

    def set_secret(self, secret_id: str, token: str) -> None:
        pending = self._pending_value(secret_id, token)
        arn = self._client.describe_secret(SecretId=secret_id)["ARN"]
        self._registrar.register(arn, token, pending)

    def test_secret(self, secret_id: str, token: str) -> None:
        pending = self._pending_value(secret_id, token)
        if not is_well_formed(pending):
            raise RotationError("the pending key is not a well-formed signing key")
        # The canary goes through what the ingest function runs: its keyring, header parser and verifier.
        keys = Keyring(self._client, secret_id, previous_grace=timedelta(0)).accepted_keys()
        candidate = [key for key in keys if key.version_id == token]
        digest = signature.parse_header(signature.sign(CANARY_BODY, pending.encode()))
        if not candidate or digest is None or signature.verify(CANARY_BODY, digest, candidate) != PENDING:
            raise RotationError("a canary signed with the pending key does not verify as AWSPENDING")

    def finish_secret(self, secret_id: str, token: str) -> None:
        versions = self._client.describe_secret(SecretId=secret_id)["VersionIdsToStages"]
        current = next(vid for vid, stages in versions.items() if CURRENT in stages)
        if current == token:
            return
        # Secrets Manager puts AWSPREVIOUS on the version this moves AWSCURRENT away from.
        self._client.update_secret_version_stage(
            SecretId=secret_id, VersionStage=CURRENT, MoveToVersionId=token, RemoveFromVersionId=current
        )
        logger.info("rotation finished", extra={"version_id": token, "previous_version_id": current})

    def _pending_value(self, secret_id: str, token: str) -> str:
        value: Any = self._client.get_secret_value(SecretId=secret_id, VersionId=token, VersionStage=PENDING)
        secret_string: str = value["SecretString"]
        return secret_string
