"""The HTTP API: the routes of the platform description, throttled and access-logged."""

from __future__ import annotations

import json

import jsii
from aws_cdk import aws_apigateway as restapi
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk.aws_apigatewayv2_integrations import HttpLambdaIntegration
from aws_cdk.aws_lambda import IFunction
from constructs import Construct

from infrastructure.constructs.log_groups import encrypted_log_group
from infrastructure.nag import acknowledge
from infrastructure.platform.spec import Platform
from infrastructure.settings import DeploymentSettings

#: Access-log fields: who called which route and what came back; never bodies or headers
#: (signatures and tokens travel in headers).
_ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "requestTime": "$context.requestTime",
    "httpMethod": "$context.httpMethod",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "integrationLatency": "$context.integrationLatency",
    "integrationError": "$context.integrationErrorMessage",
}


class WebhookApi(Construct):
    """API Gateway HTTP API (payload format 2.0) in front of the platform's functions.

    ``functions`` are what each route invokes: the functions' ``live`` aliases (the stack
    passes ``PlatformFunction.alias``), so a route serves the version of the latest deploy and
    API Gateway's invoke permission names the alias, never ``$LATEST``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        platform: Platform,
        functions: dict[str, IFunction],
        key: kms.IKey,
        settings: DeploymentSettings,
    ) -> None:
        super().__init__(scope, construct_id)
        self.api = apigw.HttpApi(
            self,
            "Api",
            api_name=settings.name("api"),
            description="aios: webhooks and interaction callbacks",
            create_default_stage=False,
        )
        access_logs = encrypted_log_group(
            self,
            "AccessLogs",
            key=key,
            settings=settings,
        )
        self.stage = apigw.HttpStage(
            self,
            "DefaultStage",
            http_api=self.api,
            stage_name="$default",
            auto_deploy=True,
            throttle=apigw.ThrottleSettings(
                rate_limit=settings.api_rate_limit, burst_limit=settings.api_burst_limit
            ),
            access_log_settings=_AccessLogs(access_logs),
        )
        integrations: dict[str, HttpLambdaIntegration] = {}
        for route in platform.routes:
            integration = integrations.setdefault(
                route.function,
                HttpLambdaIntegration(
                    f"{route.function}-integration",
                    functions[route.function],
                    payload_format_version=apigw.PayloadFormatVersion.VERSION_2_0,
                ),
            )
            self.api.add_routes(
                path=route.path, methods=[apigw.HttpMethod(route.method)], integration=integration
            )

        acknowledge(
            self.api,
            "AwsSolutions-APIG4",
            "Callers are SaaS providers that cannot present AWS or OAuth credentials; every route's "
            "function verifies the provider's HMAC signature over the raw body (constant time, "
            "timestamp tolerance) before anything is parsed, and answers 401 otherwise",
        )

    @property
    def url(self) -> str:
        return self.stage.url


@jsii.implements(apigw.IAccessLogSettings)
class _AccessLogs:
    def __init__(self, log_group: logs.ILogGroup) -> None:
        self._destination = apigw.LogGroupLogDestination(log_group)
        self._format = restapi.AccessLogFormat.custom(json.dumps(_ACCESS_LOG_FORMAT))

    @property
    def destination(self) -> apigw.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> restapi.AccessLogFormat:
        return self._format
