"""Two LocalStack plugins for `make deploy-check`, which runs LocalStack on the host:

- `dynamodb:moto` (PROVIDER_OVERRIDE_DYNAMODB=moto): LocalStack's own DynamoDB provider downloads
  Java and DynamoDB Local at start-up, which an offline machine cannot; moto, which LocalStack
  bundles, serves the same API in-process.
- `noop` (LAMBDA_RUNTIME_EXECUTOR=noop): the default executor needs Docker. Functions are created and
  become Active, which is what a deploy needs; invoking one fails.
"""

from __future__ import annotations

from typing import Any

from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin
from localstack.services.lambda_.invocation.runtime_executor import RuntimeExecutor
from localstack.services.plugins import Service, aws_provider


@aws_provider(api="dynamodb", name="moto")
def dynamodb_moto() -> Service:
    from localstack.aws.api.dynamodb import DynamodbApi
    from localstack.services.moto import MotoFallbackDispatcher

    class MotoDynamoDB(DynamodbApi):
        """Implements nothing itself: every operation falls through to moto."""

    return Service.for_provider(MotoDynamoDB(), dispatch_table_factory=MotoFallbackDispatcher)


class NoopRuntimeExecutor(RuntimeExecutor):
    def start(self, env_vars: dict[str, str]) -> None:
        raise RuntimeError("deploy-check creates functions but does not run them (no Docker)")

    def stop(self) -> None:
        pass

    def get_address(self) -> str:
        return "127.0.0.1"

    def get_endpoint_from_executor(self) -> str:
        return "127.0.0.1"

    def get_runtime_endpoint(self) -> str:
        return "http://127.0.0.1"

    def invoke(self, payload: dict[str, str]) -> Any:
        raise RuntimeError("deploy-check creates functions but does not run them (no Docker)")

    def get_logs(self) -> str:
        return ""

    @classmethod
    def prepare_version(cls, function_version: Any) -> None:
        pass

    @classmethod
    def cleanup_version(cls, function_version: Any) -> None:
        pass

    @classmethod
    def validate_environment(cls) -> bool:
        return True


class NoopRuntimeExecutorPlugin(RuntimeExecutorPlugin):
    name = "noop"

    def load(self, *args: Any, **kwargs: Any) -> type[RuntimeExecutor]:
        return NoopRuntimeExecutor
