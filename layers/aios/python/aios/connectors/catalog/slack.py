"""Slack connector: approval requests, decisions, reminders and escalations (Web API).

Operations:

- ``post_approval_request``: ``chat.postMessage`` with Block Kit: a summary of the invoice
  and *Approve* / *Reject* buttons whose ``value`` is the opaque ``approval_id`` and nothing
  else. The Step Functions task token is kept server-side by the approvals table; this
  connector never accepts one (requests forbid unknown fields and the approval id is a short
  opaque identifier) and so never sends one. Returns ``channel`` and ``ts``.
- ``update_decision``: ``chat.update`` of that message: the buttons are replaced by the decision.
- ``post_reminder`` / ``post_escalation``: ``chat.postMessage`` in the request's thread
  (``thread_ts``); an escalation is also broadcast to the channel and mentions the escalation
  users. ``sequence`` numbers the reminders so each one is posted once.

Every posting operation is idempotent on (business key, operation, approval id / sequence).

Errors: Slack answers HTTP 200 with ``{"ok": false, "error": "<code>"}``; ``ratelimited``
(and HTTP 429 with ``Retry-After``) -> ``Connector.Throttled``; ``invalid_auth``,
``not_authed``, ``token_revoked``... -> ``Connector.AuthFailed``; ``internal_error``,
``fatal_error``... -> ``Connector.Unavailable``; any other code -> ``Connector.Rejected``.

Secret: ``{"token": "xoxb-..."}`` and optionally ``base_url`` (default
``https://slack.com/api``; tests point it at a local server).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

import httpx
from pydantic import Field

from aios.connectors.kit import Connector, ConnectorRequest, ConnectorResult, parse_body
from aios.connectors.mapping import CallContext, json_body, raise_for_slack, raise_for_status
from aios.invoices import BusinessKey, CurrencyCode, Identifier, Money

NAME = "slack"
VERSION = "1.0.0"

ChannelId = Annotated[str, Field(pattern=r"^[CDGU][A-Z0-9]{2,30}$")]
UserId = Annotated[str, Field(pattern=r"^[UW][A-Z0-9]{2,30}$")]
MessageTs = Annotated[str, Field(pattern=r"^\d{1,12}\.\d{1,9}$")]
#: Opaque, short, URL-safe: cannot carry a task token (those are ~1 KB).
ApprovalId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{8,64}$")]
ShortText = Annotated[str, Field(max_length=500)]


class InvoiceSummary(ConnectorRequest):
    """What the approver sees; no bank details, no personal data beyond the vendor's name."""

    invoice_id: Identifier
    vendor_name: Annotated[str, Field(min_length=1, max_length=256)]
    amount: Money
    currency: CurrencyCode
    due_date: str | None = None
    reason: ShortText | None = None  # why a human is asked (e.g. "anomaly score 0.93")


class PostApprovalRequest(ConnectorRequest):
    operation: Literal["post_approval_request"]
    business_key: BusinessKey
    approval_id: ApprovalId
    channel: ChannelId
    invoice: InvoiceSummary


class UpdateDecision(ConnectorRequest):
    operation: Literal["update_decision"]
    business_key: BusinessKey
    channel: ChannelId
    ts: MessageTs
    decision: Literal["approved", "rejected", "expired"]
    decided_by: UserId | None = None
    invoice: InvoiceSummary


class PostReminder(ConnectorRequest):
    operation: Literal["post_reminder", "post_escalation"]
    business_key: BusinessKey
    channel: ChannelId
    thread_ts: MessageTs
    sequence: Annotated[int, Field(ge=0, le=1000)] = 0
    mention: tuple[UserId, ...] = ()
    text: ShortText | None = None


class SlackMessage(ConnectorRequest):
    """The part of Slack's chat.* answer we rely on."""

    model_config = ConnectorRequest.model_config | {"extra": "ignore"}

    ok: Literal[True]
    channel: ChannelId
    ts: MessageTs


class MessageResult(ConnectorResult):
    business_key: BusinessKey
    channel: ChannelId
    ts: MessageTs


# -- Block Kit ---------------------------------------------------------------------------
def _money(amount: Decimal, currency: str) -> str:
    return f"{amount:,.2f} {currency}"


def _escape(text: str) -> str:
    """Slack mrkdwn control characters (https://api.slack.com/reference/surfaces/formatting)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def summary_text(invoice: InvoiceSummary) -> str:
    lines = [
        f"*Invoice {_escape(invoice.invoice_id)}* from *{_escape(invoice.vendor_name)}*",
        f"Amount: *{_money(invoice.amount, invoice.currency)}*",
    ]
    if invoice.due_date:
        lines.append(f"Due: {_escape(invoice.due_date)}")
    if invoice.reason:
        lines.append(f"Why you are asked: {_escape(invoice.reason)}")
    return "\n".join(lines)


def approval_blocks(invoice: InvoiceSummary, approval_id: str) -> list[dict[str, Any]]:
    """The approval message: summary and two buttons carrying only ``approval_id``."""
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": summary_text(invoice)}},
        {
            "type": "actions",
            "block_id": "aios_approval",
            "elements": [
                {
                    "type": "button",
                    "action_id": "approve",
                    "style": "primary",
                    "text": {"type": "plain_text", "text": "Approve"},
                    "value": approval_id,
                },
                {
                    "type": "button",
                    "action_id": "reject",
                    "style": "danger",
                    "text": {"type": "plain_text", "text": "Reject"},
                    "value": approval_id,
                    "confirm": {
                        "title": {"type": "plain_text", "text": "Reject this invoice?"},
                        "text": {"type": "plain_text", "text": "The invoice will not be posted or paid."},
                        "confirm": {"type": "plain_text", "text": "Reject"},
                        "deny": {"type": "plain_text", "text": "Cancel"},
                    },
                },
            ],
        },
    ]


_DECISION = {
    "approved": ":white_check_mark: Approved",
    "rejected": ":x: Rejected",
    "expired": ":hourglass: Expired",
}


def decision_blocks(invoice: InvoiceSummary, decision: str, decided_by: str | None) -> list[dict[str, Any]]:
    who = f" by <@{decided_by}>" if decided_by else ""
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": summary_text(invoice)}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"{_DECISION[decision]}{who}"}]},
    ]


def reminder_text(request: PostReminder) -> str:
    mentions = " ".join(f"<@{user}>" for user in request.mention)
    if request.operation == "post_escalation":
        default = "This invoice is still waiting for a decision and has been escalated."
    else:
        default = "Reminder: this invoice is waiting for your decision."
    return " ".join(part for part in (mentions, _escape(request.text) if request.text else default) if part)


def slack_check(response: httpx.Response, context: CallContext) -> dict[str, Any]:
    """HTTP status first (429 with Retry-After, 5xx...), then Slack's ``ok`` flag."""
    raise_for_status(response, context)
    body = json_body(response, context)
    raise_for_slack(body, response, context)
    return body


class SlackConnector(Connector):
    name = NAME
    version = VERSION
    default_base_url = "https://slack.com/api"

    def _chat(self, method: str, operation: str, business_key: str, payload: dict[str, Any]) -> MessageResult:
        body = self.call(operation, "POST", f"/{method}", json=payload, check=slack_check)
        context = self.context(operation)
        message = parse_body(SlackMessage, body, context)
        return MessageResult(
            **self.result(operation), business_key=business_key, channel=message.channel, ts=message.ts
        )

    def post_approval_request(self, request: PostApprovalRequest) -> MessageResult:
        payload = {
            "channel": request.channel,
            "text": f"Approval needed: invoice {request.invoice.invoice_id}",  # notification fallback
            "blocks": approval_blocks(request.invoice, request.approval_id),
            "unfurl_links": False,
        }
        return self.once(
            operation=request.operation,
            business_key=request.business_key,
            model=MessageResult,
            discriminator=request.approval_id,
            produce=lambda: self._chat("chat.postMessage", request.operation, request.business_key, payload),
        )

    def update_decision(self, request: UpdateDecision) -> MessageResult:
        payload = {
            "channel": request.channel,
            "ts": request.ts,
            "text": f"Invoice {request.invoice.invoice_id}: {request.decision}",
            "blocks": decision_blocks(request.invoice, request.decision, request.decided_by),
        }
        # chat.update is naturally idempotent (same ts, same content): no idempotency record.
        return self._chat("chat.update", request.operation, request.business_key, payload)

    def post_reminder(self, request: PostReminder) -> MessageResult:
        payload: dict[str, Any] = {
            "channel": request.channel,
            "thread_ts": request.thread_ts,
            "text": reminder_text(request),
        }
        if request.operation == "post_escalation":
            payload["reply_broadcast"] = True
        return self.once(
            operation=request.operation,
            business_key=request.business_key,
            model=MessageResult,
            discriminator=f"{request.thread_ts}#{request.sequence}",
            produce=lambda: self._chat("chat.postMessage", request.operation, request.business_key, payload),
        )


def handle(
    request: PostApprovalRequest | UpdateDecision | PostReminder, connector: SlackConnector | None = None
) -> MessageResult:
    """The in-process entry of ``aios.approvals``: every Slack operation answers a message."""
    result = SlackConnector.handle(request, connector)
    assert isinstance(result, MessageResult)
    return result
