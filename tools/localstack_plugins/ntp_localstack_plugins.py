"""LocalStack plugins for `make deploy-check`, which runs LocalStack on the host:

- `dynamodb:moto` (PROVIDER_OVERRIDE_DYNAMODB=moto): LocalStack's own DynamoDB provider downloads
  Java and DynamoDB Local at start-up, which an offline machine cannot; moto, which LocalStack
  bundles, serves the same API in-process.
- `host` (LAMBDA_RUNTIME_EXECUTOR=host, ntp_host_lambda): the default executor needs Docker; this one runs
  each execution environment as a python process on the host, so deployed functions really run.
- `keep_sqs_bodies` (a start-up hook): LocalStack's SQS event source mapping hands the function
  `json.dumps(json.loads(body))`, AWS the body as sent; the archive's byte-exact check needs AWS's.
- `apigatewayv2:moto` (PROVIDER_OVERRIDE_APIGATEWAYV2=moto) and CloudFormation resource providers for
  the four AWS::ApiGatewayV2 types the template uses: the community edition has neither (API Gateway
  v2 is a Pro feature, faked), so the default front door could not be read back. moto keeps the API,
  its integration, route and stage; CloudFormation creates them through that API, as on AWS.
  Requests are not served through the API.
"""

from __future__ import annotations

from typing import Any

from localstack.runtime import hooks
from localstack.services.cloudformation.resource_provider import (
    CloudFormationResourceProviderPlugin,
    OperationStatus,
    ProgressEvent,
    ResourceProvider,
    ResourceRequest,
)
from localstack.services.plugins import Service, aws_provider


@aws_provider(api="dynamodb", name="moto")
def dynamodb_moto() -> Service:
    from localstack.aws.api.dynamodb import DynamodbApi
    from localstack.services.moto import MotoFallbackDispatcher

    class MotoDynamoDB(DynamodbApi):
        """Implements nothing itself: every operation falls through to moto."""

    return Service.for_provider(MotoDynamoDB(), dispatch_table_factory=MotoFallbackDispatcher)


@hooks.on_infra_start()
def keep_sqs_bodies() -> None:
    """Each SQS record's body as it was sent: LocalStack parses bodies to filter them, then re-serialises
    them (`{"id": "evt...`, with spaces), which AWS never does. Our mappings have no filter."""
    from localstack.services.lambda_.event_source_mapping.pollers.sqs_poller import SqsPoller

    handle_messages, filter_events = SqsPoller.handle_messages, SqsPoller.filter_events

    def handle(self: Any, messages: list[dict[str, Any]]) -> Any:
        self.ntp_bodies = {m["MessageId"]: m.get("Body") for m in messages}
        return handle_messages(self, messages)

    def matching(self: Any, events: list[dict[str, Any]]) -> Any:
        found = filter_events(self, events)
        for event in found:
            event["body"] = getattr(self, "ntp_bodies", {}).get(event.get("messageId"), event["body"])
        return found

    SqsPoller.handle_messages, SqsPoller.filter_events = handle, matching  # type: ignore[method-assign]


# --- API Gateway v2 -------------------------------------------------------------------------------


@aws_provider(api="apigatewayv2", name="moto")
def apigatewayv2_moto() -> Service:
    from localstack.aws.spec import load_service
    from localstack.services.moto import call_moto

    class MotoApiGatewayV2:
        """No generated API class exists for apigatewayv2 in the community edition: every operation
        of the service model is dispatched to moto."""

        service = "apigatewayv2"

    def dispatch_all(_provider: object) -> dict[str, Any]:
        return {
            name: (lambda context, _request: call_moto(context))
            for name in load_service("apigatewayv2").operation_names
        }

    return Service.for_provider(MotoApiGatewayV2(), dispatch_table_factory=dispatch_all)


class _ApiGatewayV2Resource(ResourceProvider[dict[str, Any]]):
    """One AWS::ApiGatewayV2 type: create, update and delete through the apigatewayv2 API.
    `ID` is the property Ref returns (the physical ID); `CREATE` maps the template's properties."""

    ID = ""
    CREATE = ""
    UPDATE = ""
    DELETE = ""
    PROPERTIES: tuple[str, ...] = ()

    def __init_subclass__(cls) -> None:
        # What LocalStack reads of a type's schema: the property that is the physical ID.
        cls.SCHEMA = {"primaryIdentifier": [f"/properties/{cls.ID}"]}

    def _args(self, model: dict[str, Any]) -> dict[str, Any]:
        return {name: model[name] for name in self.PROPERTIES if model.get(name) is not None}

    def _done(self, request: ResourceRequest[dict[str, Any]], model: dict[str, Any]) -> ProgressEvent[dict[str, Any]]:
        return ProgressEvent(
            status=OperationStatus.SUCCESS, resource_model=model, custom_context=request.custom_context
        )

    def create(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        model = request.desired_state
        client = request.aws_client_factory.apigatewayv2
        response = getattr(client, self.CREATE)(**self._args(model))
        model[self.ID] = response[self.ID]
        if "ApiEndpoint" in response:
            model["ApiEndpoint"] = response["ApiEndpoint"]
        return self._done(request, model)

    def update(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        model = {**request.desired_state, self.ID: (request.previous_state or {})[self.ID]}
        getattr(request.aws_client_factory.apigatewayv2, self.UPDATE)(**self._args(model) | {self.ID: model[self.ID]})
        return self._done(request, model)

    def delete(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        model = request.desired_state
        keys = {"ApiId": model["ApiId"], self.ID: model[self.ID]}
        getattr(request.aws_client_factory.apigatewayv2, self.DELETE)(**keys)
        return self._done(request, model)


class ApiProvider(_ApiGatewayV2Resource):
    TYPE = "AWS::ApiGatewayV2::Api"
    ID, CREATE, UPDATE, DELETE = "ApiId", "create_api", "update_api", "delete_api"
    PROPERTIES = ("Name", "ProtocolType", "Description", "Tags")

    def update(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        model = {**request.desired_state, "ApiId": (request.previous_state or {})["ApiId"]}
        request.aws_client_factory.apigatewayv2.update_api(ApiId=model["ApiId"], Name=model["Name"])
        return self._done(request, model)

    def delete(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        request.aws_client_factory.apigatewayv2.delete_api(ApiId=request.desired_state["ApiId"])
        return self._done(request, request.desired_state)


class IntegrationProvider(_ApiGatewayV2Resource):
    TYPE = "AWS::ApiGatewayV2::Integration"
    ID, CREATE, UPDATE, DELETE = "IntegrationId", "create_integration", "update_integration", "delete_integration"
    PROPERTIES = ("ApiId", "IntegrationType", "IntegrationUri", "PayloadFormatVersion", "IntegrationMethod")


class RouteProvider(_ApiGatewayV2Resource):
    TYPE = "AWS::ApiGatewayV2::Route"
    ID, CREATE, UPDATE, DELETE = "RouteId", "create_route", "update_route", "delete_route"
    PROPERTIES = ("ApiId", "RouteKey", "Target", "AuthorizationType")


class StageProvider(_ApiGatewayV2Resource):
    TYPE = "AWS::ApiGatewayV2::Stage"
    ID, CREATE, UPDATE, DELETE = "StageName", "create_stage", "update_stage", "delete_stage"
    PROPERTIES = ("ApiId", "StageName", "AutoDeploy", "DefaultRouteSettings", "AccessLogSettings", "Tags")

    def _args(self, model: dict[str, Any]) -> dict[str, Any]:
        args = super()._args(model)
        settings = args.get("DefaultRouteSettings") or {}
        # CloudFormation passes template numbers as strings; the API wants numbers.
        if "ThrottlingRateLimit" in settings:
            settings["ThrottlingRateLimit"] = float(settings["ThrottlingRateLimit"])
        if "ThrottlingBurstLimit" in settings:
            settings["ThrottlingBurstLimit"] = int(settings["ThrottlingBurstLimit"])
        if "AutoDeploy" in args:
            args["AutoDeploy"] = str(args["AutoDeploy"]).lower() == "true"
        return args


def _plugin(provider: type[_ApiGatewayV2Resource]) -> type[CloudFormationResourceProviderPlugin]:
    class Plugin(CloudFormationResourceProviderPlugin):
        name = provider.TYPE

        def __init__(self) -> None:
            self.factory: type[ResourceProvider[Any]] | None = None

        def load(self) -> None:
            self.factory = provider

    Plugin.__name__ = f"{provider.__name__}Plugin"
    return Plugin


ApiPlugin = _plugin(ApiProvider)
IntegrationPlugin = _plugin(IntegrationProvider)
RoutePlugin = _plugin(RouteProvider)
StagePlugin = _plugin(StageProvider)
