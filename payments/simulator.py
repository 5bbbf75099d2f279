"""The simulated provider's side of the webhook: sign a notification and deliver it."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

from payments.webhooks import SIGNATURE_HEADER, sign, simulated_notification

WEBHOOK_PATH = "/webhooks/payments"


def post_notification(
    api_url: str,
    secret: str,
    order_id: str,
    outcome: str = "succeeded",
    reason: str | None = None,
    *,
    provider_event_id: str | None = None,
    timeout: float = 10.0,
) -> int:
    """Tell the API at `api_url` that the order's pending charge `outcome`; return the status.

    Any HTTP answer, error or not, is returned as its status. An unreachable API
    raises urllib.error.URLError (or OSError), a URL that is not http(s) ValueError.
    Passing `provider_event_id` again redelivers that event, as a retrying provider would.
    """
    if not api_url.startswith(("http://", "https://")):
        raise ValueError(f"api_url must be an http(s) URL, not {api_url!r}")
    body = simulated_notification(order_id, outcome, reason, provider_event_id)
    request = urllib.request.Request(
        api_url.rstrip("/") + WEBHOOK_PATH,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(secret, body, int(time.time())),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status: int = response.status
    except urllib.error.HTTPError as error:
        status = error.code
        error.close()
    return status
