"""The set of signing keys a delivery may be verified with, loaded from Secrets Manager and cached.

Hand-written rather than Powertools `parameters`: its cache key ignores `VersionStage`/`VersionId`,
so several live stages would share one entry, and it has no rate-limited refresh-on-miss.

Design:
- A secret version's value never changes, so values are cached by `VersionId` for the life of the
  execution environment. A refresh is one `DescribeSecret` call (which version holds which stage),
  plus one `GetSecretValue` per version not seen before.
- Accepted stages: AWSCURRENT; AWSPENDING while it exists; AWSPREVIOUS until `previous_grace` after
  the current version was created.
- The stage map is refreshed when older than `max_age`; and when no cached key verifies a delivery
  (the sender may just have switched), at most once per `miss_interval` (1 s) counted from the last
  such refresh. A key switch is therefore seen within `miss_interval` whatever junk arrives, and a
  flood of bad signatures costs at most one `DescribeSecret` per second per execution environment.
  If that refresh fails, the delivery gets 503 (its key may be the sender's new one), not 401.
- Lambda's init loads AWSCURRENT alone (`load_current`: one `GetSecretValue`, no `DescribeSecret`),
  which is what nearly every delivery is signed with. AWSPENDING/AWSPREVIOUS follow at the first
  signature miss (never rate-limited: it is the first) or at `max_age`, whichever comes first.
- A failed refresh is logged at ERROR and counted (`KeyRefreshFailed`, alarmed), and retried at
  most once per `miss_interval`. The cached keys are used until the last successful load is
  `max_staleness` old: past that, a key may have been revoked meanwhile, so nothing is accepted
  (`KeyringUnavailable`: the ingest answers 503 with Retry-After and the sender retries).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from ntp_webhooks.errors import aws_error, error_code
from ntp_webhooks.observability import count, logger

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

CURRENT = "AWSCURRENT"
PENDING = "AWSPENDING"
PREVIOUS = "AWSPREVIOUS"
#: Order in which stages are tried and which label wins when a version holds several.
STAGES = (CURRENT, PENDING, PREVIOUS)


def secret_problem(value: str) -> str | None:
    """Why `value` cannot be a shared webhook secret as stored, or None. Every route that stores one
    checks this (`ntp install-secret`); the keyring logs it for values stored another way."""
    if not value:
        return "the secret is empty"
    if value != value.strip():
        return "the secret has leading or trailing whitespace (a pasted newline?): store it exactly as issued"
    return None


class KeyringUnavailable(Exception):
    """Secrets Manager could not be read and there is no usable cached key."""


@dataclass(frozen=True)
class SigningKey:
    stage: str
    version_id: str
    created: datetime
    secret: bytes = field(repr=False)


@dataclass(frozen=True)
class _Version:
    created: datetime
    secret: bytes = field(repr=False)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Keyring:
    """`monotonic` measures the keys' age and the refresh rate limits; `utcnow`, AWSPREVIOUS's grace."""

    def __init__(
        self,
        client: SecretsManagerClient,
        secret_id: str,
        *,
        max_age: float = 300.0,
        max_staleness: float = 600.0,
        miss_interval: float = 1.0,
        previous_grace: timedelta = timedelta(hours=72),
        monotonic: Callable[[], float] = time.monotonic,
        utcnow: Callable[[], datetime] = _utcnow,
    ) -> None:
        if max_staleness < max_age:
            raise ValueError("max_staleness must be at least max_age")
        self._client = client
        self._secret_id = secret_id
        self._max_age = max_age
        self._max_staleness = max_staleness
        self._miss_interval = miss_interval
        self._previous_grace = previous_grace
        self._clock = monotonic
        self._utcnow = utcnow
        self._lock = threading.Lock()
        self._values: dict[str, _Version] = {}
        self._stages: dict[str, str] = {}  # version id -> the stage it is accepted under
        self._loaded_at: float | None = None  # last successful load
        self._attempted_at: float | None = None  # last load attempted, whatever its outcome
        self._forced_at: float | None = None  # last load attempted after a signature miss
        self._last_error = ""
        self._keys: list[SigningKey] = []
        self._keys_without_previous: list[SigningKey] = []
        self._previous_until = datetime.min.replace(tzinfo=UTC)

    def accepted_keys(self) -> list[SigningKey]:
        """The keys accepted right now, refreshing the stage map when it is older than `max_age`.
        Raises `KeyringUnavailable` when no load has succeeded for `max_staleness`."""
        if self._age() >= self._max_age:
            with self._lock:
                if self._age() >= self._max_age and self._may_attempt():
                    self._try_reload("scheduled")
        if self._age() > self._max_staleness:
            if self._loaded_at is None:
                raise KeyringUnavailable(f"signing keys could not be loaded: {self._last_error}")
            raise KeyringUnavailable(
                f"signing keys not refreshed for {self._age():.0f} s; a key may have been revoked: {self._last_error}"
            )
        return self._snapshot()

    def load_current(self) -> None:
        """The first load, in init: AWSCURRENT alone, one call (see the module docstring). Whatever
        fails here is left to the first request's full load, which reports it."""
        with self._lock:
            value: Any = self._client.get_secret_value(SecretId=self._secret_id, VersionStage=CURRENT)
            if not self._store(value["VersionId"], value):
                return
            self._stages = {value["VersionId"]: CURRENT}
            self._build_snapshot()
            self._loaded_at = self._now()

    def refresh_after_miss(self) -> bool:
        """Reload because no cached key verified a delivery. False when rate-limited; raises
        `KeyringUnavailable` when the reload fails (the sender's new key cannot be ruled out)."""
        with self._lock:
            now = self._now()
            if self._forced_at is not None and now - self._forced_at < self._miss_interval:
                return False
            self._forced_at = now
            if not self._try_reload("after a signature miss"):
                raise KeyringUnavailable(f"signing keys could not be refreshed: {self._last_error}")
            return True

    def _now(self) -> float:
        return self._clock()

    def _age(self) -> float:
        loaded_at = self._loaded_at
        return float("inf") if loaded_at is None else self._now() - loaded_at

    def _may_attempt(self) -> bool:
        attempted_at = self._attempted_at
        return attempted_at is None or self._now() - attempted_at >= self._miss_interval

    def _try_reload(self, why: str) -> bool:
        self._attempted_at = self._now()
        try:
            self._reload()
        except (BotoCoreError, ClientError, KeyringUnavailable) as exc:
            count("KeyRefreshFailed")
            error = aws_error(exc)
            self._last_error = f"{error['error_code']}: {error['error_message']}"
            logger.error(
                "signing key refresh failed",
                extra={
                    "refresh": why,
                    **error,
                    "keys_age_s": None if self._loaded_at is None else round(self._age(), 1),
                    "max_staleness_s": self._max_staleness,
                },
            )
            return False
        return True

    def _reload(self) -> None:
        described = self._client.describe_secret(SecretId=self._secret_id)
        stages: dict[str, str] = {}
        for version_id, labels in described.get("VersionIdsToStages", {}).items():
            stage = next((s for s in STAGES if s in labels), None)
            if stage is not None and self._fetch(version_id):
                stages[version_id] = stage
        if CURRENT not in stages.values():
            raise KeyringUnavailable("signing secret has no AWSCURRENT version")
        self._values = {vid: self._values[vid] for vid in stages}
        self._stages = stages
        self._build_snapshot()
        self._loaded_at = self._now()

    def _fetch(self, version_id: str) -> bool:
        """Cache the value of `version_id` unless it already is. False for a version with no value."""
        if version_id in self._values:
            return True
        try:
            value: Any = self._client.get_secret_value(SecretId=self._secret_id, VersionId=version_id)
        except ClientError as exc:
            # A rotation has labelled AWSPENDING but createSecret has not stored a value yet.
            if error_code(exc) == "ResourceNotFoundException":
                return False
            raise
        return self._store(version_id, value)

    def _store(self, version_id: str, value: Any) -> bool:
        secret_string = value.get("SecretString")
        if not secret_string:
            return False
        problem = secret_problem(secret_string)
        if problem:  # used as stored, as the sender would; the operator should know why nothing verifies
            logger.warning("signing secret version looks wrong", extra={"version_id": version_id, "problem": problem})
        self._values[version_id] = _Version(created=value["CreatedDate"], secret=secret_string.encode())
        return True

    def _snapshot(self) -> list[SigningKey]:
        # Built once per reload, not per request: only the grace deadline is checked here.
        return self._keys if self._utcnow() < self._previous_until else self._keys_without_previous

    def _build_snapshot(self) -> None:
        keys = [
            SigningKey(stage=stage, version_id=vid, created=self._values[vid].created, secret=self._values[vid].secret)
            for vid, stage in self._stages.items()
        ]
        keys.sort(key=lambda k: STAGES.index(k.stage))
        self._keys = keys
        self._keys_without_previous = [k for k in keys if k.stage != PREVIOUS]
        self._previous_until = keys[0].created + self._previous_grace  # keys[0] is AWSCURRENT
