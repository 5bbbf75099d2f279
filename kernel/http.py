"""HTTP edge shared by the contexts: RFC 7807 problem responses for every error."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import Response, json
from flask_smorest import Api
from werkzeug.exceptions import HTTPException

PROBLEM_JSON = "application/problem+json"


class ProblemSchema(ma.Schema):
    """An RFC 7807 problem; `errors` maps each bad field to its messages."""

    type = ma.fields.String(metadata={"description": "URI naming the kind of problem"})
    title = ma.fields.String()
    status = ma.fields.Integer()
    detail = ma.fields.String()
    errors = ma.fields.Dict(metadata={"description": "Messages per field"})


def problem_response(
    status: int,
    title: str,
    detail: str | None = None,
    *,
    type_: str | None = None,
    errors: Any = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": type_ or f"https://httpstatuses.io/{status}",
        "title": title,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    response.headers.update(headers or {})
    return response


class ProblemApi(Api):  # type: ignore[misc]  # flask-smorest ships no type hints
    """flask-smorest's Api answering every HTTP error as problem+json."""

    ERROR_SCHEMA = ProblemSchema

    def handle_http_exception(self, error: HTTPException) -> Response:
        data = getattr(error, "data", None) or {}
        errors = data.get("errors") or data.get("messages")
        if isinstance(errors, dict) and set(errors) <= {"json", "query", "headers", "path"}:
            # webargs nests field errors under the request location; one location is the norm.
            errors = _flatten_locations(errors)
        status = error.code or 500
        response = problem_response(
            status,
            error.name,
            data.get("message") or _detail(error, bool(errors)),
            errors=errors,
            headers=data.get("headers"),
        )
        return response


def _flatten_locations(errors: dict[str, Any]) -> Any:
    if len(errors) == 1:
        return next(iter(errors.values()))
    return errors


def _detail(error: HTTPException, has_errors: bool) -> str | None:
    if has_errors:
        return "The request has invalid fields; see errors."
    return error.description
