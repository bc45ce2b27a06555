"""What went wrong in an AWS call: its error code, and log keys (code and message, never the request)."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError


def error_code(exc: ClientError) -> str:
    """The service's error code (`ConditionalCheckFailedException`, `ResourceNotFoundException`...)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_condition_failure(exc: ClientError) -> bool:
    """True when a conditional write was refused because its condition did not hold."""
    return error_code(exc) == "ConditionalCheckFailedException"


def aws_error(exc: BaseException) -> dict[str, str]:
    """The AWS error behind `exc` (Powertools wraps it in its own exceptions), as log keys."""
    seen: BaseException | None = exc
    visited: set[int] = set()
    while seen is not None and id(seen) not in visited:
        visited.add(id(seen))
        if isinstance(seen, ClientError):
            error = seen.response.get("Error", {})
            return {"error_code": error.get("Code", "Unknown"), "error_message": error.get("Message", "")[:200]}
        if isinstance(seen, BotoCoreError):
            return {"error_code": type(seen).__name__, "error_message": str(seen)[:200]}
        nested = next((arg for arg in getattr(seen, "args", ()) if isinstance(arg, BaseException)), None)
        seen = nested or seen.__cause__ or seen.__context__
    return {"error_code": type(exc).__name__, "error_message": str(exc)[:200]}
