"""The sandbox Slack Web API (``/_sandbox/slack``): ``chat.postMessage``, ``chat.update`` and
``auth.test``; HTTP 200 with ``{"ok": false, "error": ...}`` as Slack does. Admin:
``GET /messages`` (``?channel=``)."""

from __future__ import annotations

import contextlib
import json
import secrets as random_secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import parse_qs, parse_qsl

from infrastructure.local.sandbox.base import (
    ProviderFault,
    Reply,
    Request,
    json_reply,
    retry_after,
    same_secret,
)

SLACK_TS_BASE = 1_700_000_000
SLACK_BOT_USER = "U0SANDBOXBOT"
SLACK_BOT_ID = "B0SANDBOX"
SLACK_TEAM = "T0SANDBOX"


@dataclass
class Slack:
    name: ClassVar[str] = "slack"

    token: str | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    counter: int = 0

    def credentials(self, base_url: str) -> dict[str, Any]:
        self.token = "xoxb-" + "-".join(
            (
                str(random_secrets.randbelow(10**12)),
                str(random_secrets.randbelow(10**12)),
                random_secrets.token_hex(12),
            )
        )
        return {"base_url": base_url, "token": self.token}

    def fault_reply(self, fault: ProviderFault) -> Reply:
        if fault.status == 429:
            return json_reply(429, {"ok": False, "error": fault.error or "ratelimited"}, retry_after(fault))
        return json_reply(fault.status, {"ok": False, "error": fault.error or "internal_error"})

    def reset(self) -> None:
        self.messages.clear()
        self.counter = 0

    def next_ts(self) -> str:
        self.counter += 1
        micros = self.counter * 100
        return f"{SLACK_TS_BASE + micros // 1_000_000}.{micros % 1_000_000:06d}"

    def admin(self, request: Request) -> Reply | None:
        if request.path == "/messages" and request.method == "GET":
            channel = next(iter(parse_qs(request.query).get("channel", [])), None)
            listed = [m for m in self.messages if channel is None or m["channel"] == channel]
            return json_reply(200, {"messages": listed})
        return None

    @staticmethod
    def _arguments(request: Request) -> dict[str, Any]:
        content_type = (request.header("content-type") or "").split(";")[0].strip().lower()
        if content_type == "application/json":
            body = request.json()
            return body if isinstance(body, dict) else {}
        arguments: dict[str, Any] = dict(parse_qsl(request.body.decode("utf-8"), keep_blank_values=True))
        if isinstance(arguments.get("blocks"), str):
            with contextlib.suppress(ValueError):
                arguments["blocks"] = json.loads(arguments["blocks"])
        return arguments

    def handle(self, request: Request) -> Reply:  # noqa: PLR0911 - one answer per route
        if request.method != "POST" and request.path != "/auth.test":
            return json_reply(200, {"ok": False, "error": "method_not_supported_for_channel_type"})
        try:
            arguments = self._arguments(request)
        except ValueError:
            return json_reply(200, {"ok": False, "error": "invalid_json"})
        token = request.bearer() or (
            arguments.get("token") if isinstance(arguments.get("token"), str) else None
        )
        if token is None:
            return json_reply(200, {"ok": False, "error": "not_authed"})
        if self.token is not None and not same_secret(token, self.token):
            return json_reply(200, {"ok": False, "error": "invalid_auth"})
        method = request.path.lstrip("/")
        if method == "auth.test":
            return json_reply(
                200,
                {
                    "ok": True,
                    "url": "https://sandbox.slack.com/",
                    "team": "aios sandbox",
                    "user": "aios",
                    "team_id": SLACK_TEAM,
                    "user_id": SLACK_BOT_USER,
                    "bot_id": SLACK_BOT_ID,
                },
            )
        if method == "chat.postMessage":
            return self._post(arguments)
        if method == "chat.update":
            return self._update(arguments)
        return json_reply(404, {"ok": False, "error": "unknown_method"})

    @staticmethod
    def _channel(arguments: Mapping[str, Any]) -> str | None:
        channel = arguments.get("channel")
        if not isinstance(channel, str) or not channel:
            return None
        if channel.startswith("#"):  # a name: Slack answers with the channel's id
            return "C" + uuid.uuid5(uuid.NAMESPACE_URL, channel).hex[:10].upper()
        return channel

    def _post(self, arguments: Mapping[str, Any]) -> Reply:
        channel = self._channel(arguments)
        if channel is None:
            return json_reply(200, {"ok": False, "error": "channel_not_found"})
        if not arguments.get("text") and not arguments.get("blocks"):
            return json_reply(200, {"ok": False, "error": "no_text"})
        thread_ts = arguments.get("thread_ts")
        if thread_ts and not any(m["channel"] == channel and m["ts"] == thread_ts for m in self.messages):
            return json_reply(200, {"ok": False, "error": "thread_not_found"})
        ts = self.next_ts()
        message = self._message(arguments, ts)
        self.messages.append(
            {
                "channel": channel,
                "ts": ts,
                "thread_ts": thread_ts or None,
                "text": arguments.get("text") or "",
                "blocks": arguments.get("blocks") or [],
                "reply_broadcast": bool(arguments.get("reply_broadcast")),
                "method": "chat.postMessage",
                "updated": False,
            }
        )
        return json_reply(200, {"ok": True, "channel": channel, "ts": ts, "message": message})

    def _update(self, arguments: Mapping[str, Any]) -> Reply:
        channel = self._channel(arguments)
        if channel is None:
            return json_reply(200, {"ok": False, "error": "channel_not_found"})
        ts = arguments.get("ts")
        found = next((m for m in self.messages if m["channel"] == channel and m["ts"] == ts), None)
        if found is None:
            return json_reply(200, {"ok": False, "error": "message_not_found"})
        if "text" in arguments:
            found["text"] = arguments["text"]
        if "blocks" in arguments:
            found["blocks"] = arguments["blocks"]
        found.update(method="chat.update", updated=True)
        message = self._message({"text": found["text"], "blocks": found["blocks"]}, str(ts))
        return json_reply(
            200, {"ok": True, "channel": channel, "ts": ts, "text": found["text"], "message": message}
        )

    @staticmethod
    def _message(arguments: Mapping[str, Any], ts: str) -> dict[str, Any]:
        message: dict[str, Any] = {
            "type": "message",
            "user": SLACK_BOT_USER,
            "bot_id": SLACK_BOT_ID,
            "team": SLACK_TEAM,
            "text": arguments.get("text") or "",
            "ts": ts,
        }
        if arguments.get("blocks"):
            message["blocks"] = arguments["blocks"]
        if arguments.get("thread_ts"):
            message["thread_ts"] = arguments["thread_ts"]
        return message
