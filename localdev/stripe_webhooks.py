"""Point the local Stripe API's webhooks (``localdev.stripe_server``) at an endpoint.

localstripe has no webhook-endpoint API; it takes its endpoints through
``POST /_config/webhooks/{id}``, kept in the server's state file across restarts. Each
event goes to every registered endpoint whose ``events`` list includes it (all events
without a list), signed with that endpoint's secret as Stripe signs
(``Stripe-Signature: t=...,v1=...``, for ``stripe.Webhook.construct_event``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from urllib.error import HTTPError, URLError
from urllib.parse import quote
from urllib.request import Request, urlopen


def register_webhook(
    api_base: str,
    url: str,
    secret: str,
    *,
    webhook_id: str = "shop",
    events: Sequence[str] | None = None,
    timeout: float = 5,
) -> None:
    """Send the events of the Stripe server at ``api_base`` to ``url``, signed with
    ``secret``: all of them, or only the types in ``events``. Registering ``webhook_id``
    again re-points it. Raises RuntimeError if the server refuses or cannot be reached."""
    body: dict[str, object] = {"url": url, "secret": secret}
    if events is not None:
        body["events"] = list(events)
    request = Request(
        f"{api_base.rstrip('/')}/_config/webhooks/{quote(webhook_id, safe='')}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urlopen(request, timeout=timeout) as response:
            status: int = response.status
    except HTTPError as refused:
        detail = refused.read(500).decode(errors="replace")
        raise RuntimeError(
            f"registering webhook {webhook_id!r} at {api_base}: HTTP {refused.code} {detail}"
        ) from refused
    except (URLError, OSError) as error:
        raise RuntimeError(f"registering webhook {webhook_id!r} at {api_base}: {error}") from error
    if not 200 <= status < 300:
        raise RuntimeError(f"registering webhook {webhook_id!r} at {api_base}: HTTP {status}")
