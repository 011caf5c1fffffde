"""One HTTP client setup for every connector, and the auth helpers.

Every client verifies TLS and has its connect and read timeouts set, below the function's
own timeout (``Timeouts.fits``), so a hung target fails as ``Connector.Unavailable`` and the
state machine retries, instead of the Lambda being killed mid-call. Redirects are not followed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator
from typing import Annotated

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from aios.connectors.credentials import ConnectorSecret
from aios.errors import ConnectorAuthFailed

USER_AGENT = "aios-connector-kit/1"


class Timeouts(BaseModel):
    """Seconds. Connect + read (+ one retry after an auth refresh) must fit the function."""

    model_config = ConfigDict(frozen=True)

    connect: Annotated[float, Field(gt=0, le=30)] = 3.0
    read: Annotated[float, Field(gt=0, le=120)] = 10.0
    write: Annotated[float, Field(gt=0, le=120)] = 10.0
    pool: Annotated[float, Field(gt=0, le=30)] = 3.0

    def fits(self, function_timeout_seconds: float) -> bool:
        """Whether two attempts (the call and its retry after an auth refresh) fit the function."""
        return 2 * (self.connect + self.read) < function_timeout_seconds

    def httpx(self) -> httpx.Timeout:
        return httpx.Timeout(connect=self.connect, read=self.read, write=self.write, pool=self.pool)


def build_client(
    *,
    base_url: str,
    auth: httpx.Auth | None,
    timeouts: Timeouts,
    transport: httpx.BaseTransport | None = None,
) -> httpx.Client:
    """The one place an ``httpx.Client`` is made: TLS verified, timeouts set, no redirects."""
    return httpx.Client(
        base_url=base_url,
        auth=auth,
        timeout=timeouts.httpx(),
        verify=True,
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        transport=transport,
    )


class ApiKeyAuth(httpx.Auth):
    """An API key in a header (``X-API-Key: <key>``, or ``Authorization: <key>``)."""

    def __init__(self, key: SecretStr, *, header: str = "X-API-Key") -> None:
        self._key = key
        self._header = header

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[self._header] = self._key.get_secret_value()
        yield request


class BearerAuth(httpx.Auth):
    """``Authorization: Bearer <token>``."""

    def __init__(self, token: SecretStr) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = bearer_header(self._token)
        yield request


def bearer_header(token: SecretStr) -> str:
    return f"Bearer {token.get_secret_value()}"


class OAuth2ClientCredentials(httpx.Auth):
    """OAuth 2.0 client credentials grant (RFC 6749 4.4); the token is cached until shortly
    before it expires and shared by the threads of one process.

    The token request goes through the same client (same timeouts, TLS verification).
    A 401 from the resource drops the cached token; the kit then retries once.
    """

    requires_response_body = True
    #: Refresh this many seconds before ``expires_in`` runs out.
    EXPIRY_MARGIN_SECONDS = 30.0

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        client_secret: SecretStr,
        scope: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._token_url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._scope = scope
        self._clock = clock
        self._lock = threading.Lock()
        self._token: SecretStr | None = None
        self._expires_at = 0.0

    def _valid_token(self) -> SecretStr | None:
        with self._lock:
            if self._token is not None and self._clock() < self._expires_at:
                return self._token
            return None

    def invalidate(self) -> None:
        with self._lock:
            self._token = None

    def _token_request(self) -> httpx.Request:
        form = {"grant_type": "client_credentials"}
        if self._scope:
            form["scope"] = self._scope
        # client_secret_basic (RFC 6749 2.3.1)
        basic = httpx.BasicAuth(self._client_id, self._client_secret.get_secret_value())
        request = httpx.Request("POST", self._token_url, data=form, headers={"Accept": "application/json"})
        return next(basic.auth_flow(request))

    def _store(self, response: httpx.Response) -> SecretStr:
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200 or not isinstance(body, dict) or not body.get("access_token"):
            raise ConnectorAuthFailed(
                f"OAuth2 token endpoint answered HTTP {response.status_code} without a token"
            )
        token = SecretStr(str(body["access_token"]))
        expires_in = float(body.get("expires_in", 300))
        with self._lock:
            self._token = token
            self._expires_at = self._clock() + max(0.0, expires_in - self.EXPIRY_MARGIN_SECONDS)
        return token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._valid_token()
        if token is None:
            token_response = yield self._token_request()
            token = self._store(token_response)
        request.headers["Authorization"] = bearer_header(token)
        response = yield request
        if response.status_code == 401:
            self.invalidate()


def auth_from_secret(secret: ConnectorSecret) -> httpx.Auth | None:
    """OAuth2 client credentials if configured, else a bearer token, else an API key, else none."""
    if secret.client_id and secret.client_secret and secret.token_url:
        return OAuth2ClientCredentials(
            token_url=secret.token_url,
            client_id=secret.client_id,
            client_secret=secret.client_secret,
            scope=secret.scope,
        )
    if secret.token is not None:
        return BearerAuth(secret.token)
    if secret.api_key is not None:
        return ApiKeyAuth(secret.api_key, header=secret.api_key_header)
    return None
