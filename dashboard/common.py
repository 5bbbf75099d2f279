"""The dashboard's parent blueprint and what every page shares: freshness of the
data shown, rendering and response headers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import marshmallow as ma
from flask import (
    Blueprint,
    Response,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from sqlalchemy import Connection

from projections.read_side import ReadSide

REFRESH_SECONDS = 5

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def parent() -> Blueprint:
    """The blueprint every dashboard page hangs off: /admin, its templates and static
    files, the security headers on every response, and / sending on to the orders."""
    dashboard = Blueprint(
        "dashboard",
        __name__,
        url_prefix="/admin",
        template_folder="templates",
        static_folder="static",
    )
    dashboard.after_request(secure)

    @dashboard.get("/")
    def home() -> ResponseReturnValue:
        return redirect(url_for("dashboard.orders.index"))

    return dashboard


@dataclass(frozen=True, slots=True)
class Fresh:
    """How fresh the data on a page is: its read model's lag when the page was made."""

    source: str
    lag_events: int
    lag_seconds: float
    at: datetime
    generation: int = 1  # the generation of the read model to read
    stale: bool = False  # a consistency token was waited for in vain

    @property
    def current(self) -> bool:
        return self.lag_events == 0


def field_errors(error: ma.ValidationError) -> dict[str, list[str]]:
    """A form's messages per field (a schema-level message is filed under its field)."""
    messages = error.messages if isinstance(error.messages, dict) else {"_": error.messages}
    return {str(field): [str(m) for m in _flat(found)] for field, found in messages.items()}


def _flat(found: Any) -> list[Any]:
    if isinstance(found, dict):
        return [message for nested in found.values() for message in _flat(nested)]
    return list(found) if isinstance(found, list) else [found]


def freshness(
    read_side: ReadSide, name: str, token: str | None = None, conn: Connection | None = None
) -> Fresh:
    """How fresh the read model `name` of `read_side` is now (as `conn`, the page's query
    connection, sees it, when given); given a command's consistency token, once it has
    applied that command or the bounded wait ran out (a token it cannot wait for,
    malformed or not from this log, is passed over)."""
    try:
        measured = read_side.freshness(name, token, conn)
    except ValueError:  # NotInLog too
        measured = read_side.freshness(name, None, conn)
    return Fresh(
        name,
        measured.lag_events,
        measured.lag_seconds,
        datetime.now(UTC),
        measured.generation,
        measured.stale,
    )


def page(
    template: str,
    *,
    status: int = 200,
    fresh: Fresh | None = None,
    refresh: bool = True,
    **context: Any,
) -> Response:
    """Render a page; it reloads itself every few seconds unless `refresh` is off
    (an answer to a form post, which a reload would post again)."""
    body = render_template(
        template,
        fresh=fresh,
        refresh_seconds=REFRESH_SECONDS if refresh else 0,
        **context,
    )
    return make_response(body, status)


def confirmation(
    *,
    title: str,
    facts: list[tuple[str, str]],
    consequence: str,
    action_url: str,
    fields: dict[str, str],
    confirm: str,
    name: str,
    back: str,
) -> Response:
    """The step before an action: what it will do, a button posting `fields` back to
    `action_url` with `confirmed=yes`, and a way back (it does not reload itself)."""
    return page(
        "dashboard/confirm.html",
        refresh=False,
        title=title,
        facts=facts,
        consequence=consequence,
        action_url=action_url,
        fields=fields,
        confirm=confirm,
        confirm_name=name,
        back=back,
    )


def confirmed() -> bool:
    """Whether the posted form is the confirmation step's (see `confirmation`)."""
    return request.form.get("confirmed") == "yes"


def problem(status: int, message: str) -> Response:
    """An error page (it does not reload itself)."""
    return page("dashboard/error.html", status=status, message=message, refresh=False)


def secure(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response
