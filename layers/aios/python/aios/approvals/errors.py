"""Why a Slack interaction was not accepted; the handler maps these (and the webhook
errors, e.g. ``InvalidSignature`` -> 401) to responses in one place. ``str(error)`` is the
internal detail: log it, never return it."""

from __future__ import annotations

from aios.webhooks.errors import WebhookError


class InvalidInteraction(WebhookError):
    """A verified body that is not a ``block_actions`` click on our buttons."""

    status_code = 400
    code = "invalid_payload"


class UnknownApproval(WebhookError):
    status_code = 404
    code = "unknown_approval"


class NotAnApprover(WebhookError):
    """The user who clicked may not decide this invoice: nothing changes."""

    status_code = 403
    code = "not_an_approver"
