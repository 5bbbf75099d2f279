"""HTTP edge shared by the contexts: RFC 7807 problem responses for every error, and
the strict JSON parsing of every request body."""

from __future__ import annotations

import functools
import http
import re
from collections.abc import Callable, Mapping
from json import JSONDecodeError
from typing import Any, NoReturn

import flask_smorest
import marshmallow as ma
import orjson
from flask import Request, Response, json, request
from flask_smorest import Api, abort
from flask_smorest.utils import prepare_response
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.exceptions import HTTPException

from kernel.auth import Authenticator, AuthError, Principal
from kernel.command_bus import CommandBus
from kernel.messages import Command, Metadata
from kernel.money import Money
from kernel.results import Failure, Success

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
    """flask-smorest's Api answering, and documenting, every HTTP error as problem+json."""

    ERROR_SCHEMA = ProblemSchema

    def _register_responses(self) -> None:
        # flask-smorest documents its stock error responses as application/json.
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if not (100 <= status < 200) and status not in (204, 304):
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM_JSON)
            self.spec.components.response(status.name, response, lazy=True)
        default = {"description": "Default error response", "schema": self.ERROR_SCHEMA}
        prepare_response(default, self.spec, PROBLEM_JSON)
        self.spec.components.response("DEFAULT_ERROR", default, lazy=True)

    def handle_http_exception(self, error: HTTPException) -> Response:
        data = getattr(error, "data", None) or {}
        errors = data.get("errors") or data.get("messages")
        if isinstance(errors, dict) and set(errors) <= {"json", "query", "headers", "path"}:
            # webargs nests field errors under the request location; one location is the norm.
            errors = _flatten_locations(errors)
        message = data.get("message")
        if errors is not None and not isinstance(errors, dict):
            # Not per field (e.g. "Invalid JSON body."): say it in the detail instead.
            listed = errors if isinstance(errors, list) else [errors]
            message = message or " ".join(str(item) for item in listed)
            errors = None
        status = error.code or 500
        code = data.get("code")
        return problem_response(
            status,
            error.name,
            message or _detail(error, bool(errors)),
            type_=f"/problems/{code.replace('_', '-')}" if code else None,
            errors=errors,
            headers=data.get("headers"),
        )


def _flatten_locations(errors: dict[str, Any]) -> Any:
    if len(errors) == 1:
        return next(iter(errors.values()))
    return errors


def _detail(error: HTTPException, has_errors: bool) -> str | None:
    if has_errors:
        return "The request has invalid fields; see errors."
    return error.description


# --- strict JSON bodies ------------------------------------------------------------
# The stdlib json (webargs' default) accepts a lone UTF-16 surrogate ("\ud800"), which
# no UTF-8 store can hold, and fails with a RecursionError or a ValueError (a 500) on deep
# nesting and on integers of over 4,300 digits. orjson refuses all three as malformed.

# Our bodies nest 3 deep. orjson stops at 1024 levels, but the payment webhook re-reads its
# body with Flask's get_json and stores it with json.dumps, both recursive: keep far below.
MAX_JSON_DEPTH = 64
JSON_RULES = (
    f"Send UTF-8 JSON without lone surrogates, nested at most {MAX_JSON_DEPTH} levels deep,"
    " with numbers within a double's range."
)


def loads_json(body: bytes) -> Any:
    """Parse a request body strictly; raises JSONDecodeError (whose `doc` is the body, so
    empty for an empty body) on malformed JSON, a lone surrogate, nesting deeper than
    MAX_JSON_DEPTH or a number a double cannot hold."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        # orjson leaves `doc` empty for bytes it cannot decode: keep it the body.
        raise JSONDecodeError(error.msg, body.decode(errors="replace"), error.pos) from None
    if _nesting_exceeds(value, MAX_JSON_DEPTH):
        raise JSONDecodeError("depth limit exceeded", body.decode(errors="replace"), 0)
    return value


def _nesting_exceeds(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest deeper than `limit` in `value`, level by level
    (no recursion: the point is to refuse what would exhaust it)."""
    level, depth = [value], 0
    while level := [item for item in level if isinstance(item, dict | list)]:
        depth += 1
        if depth > limit:
            return True
        level = [
            child for item in level for child in (item.values() if isinstance(item, dict) else item)
        ]
    return False


class StrictJSONParser(FlaskParser):
    """webargs' Flask parser reading JSON bodies with `loads_json`."""

    def _raw_load_json(self, req: Request) -> Any:
        if not is_json_request(req):
            return ma.missing  # as webargs does: a body that is not JSON is missing
        return loads_json(req.get_data(cache=True))

    def _handle_invalid_json_error(
        self, error: Any, req: Request, *args: Any, **kwargs: Any
    ) -> NoReturn:
        reason = getattr(error, "msg", None) or str(error)
        abort(400, messages={"json": [f"Invalid JSON body ({reason}). {JSON_RULES}"]})
        raise AssertionError("abort returned")


class Blueprint(flask_smorest.Blueprint):  # type: ignore[misc]  # no type hints
    """flask-smorest's Blueprint whose `arguments` parse JSON bodies strictly: malformed
    or hostile JSON is a 400 problem, before a view or the database sees it."""

    ARGUMENTS_PARSER = StrictJSONParser()


# --- the command side of an endpoint: who is asking, dispatch, answer -------------

STATUS_BY_CODE = {
    "not_found": 404,
    "invalid": 422,
    "command_id_reused": 422,
    "conflict": 409,
}


class MoneySchema(ma.Schema):
    """An amount of money as every response carries it."""

    amount = ma.fields.Integer(required=True, metadata={"description": "In minor units"})
    currency = ma.fields.String(required=True, metadata={"description": "ISO 4217"})


MAX_AMOUNT = 10**9  # minor units: ten million euros is more than any one order here


class MoneyInSchema(ma.Schema):
    """A positive amount of money as requests send it; loads as Money."""

    amount = ma.fields.Integer(
        required=True,
        strict=True,
        validate=ma.validate.Range(min=1, max=MAX_AMOUNT, max_inclusive=False),
        metadata={"description": "Minor units (cents)"},
    )
    currency = ma.fields.String(
        required=True,
        validate=ma.validate.Regexp(r"^[A-Z]{3}\Z", error="Use an ISO 4217 code such as EUR."),
    )

    @ma.post_load
    def to_money(self, data: dict[str, Any], **_: Any) -> Money:
        return Money(data["amount"], data["currency"])


class AcceptedSchema(ma.Schema):
    consistency_token = ma.fields.String(
        required=True, metadata={"description": "Pass to a query to read this write"}
    )


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ADMIN_ONLY = "Not an admin token (a customer's)"
OPERATOR_ONLY = "Not an operator admin's token (a customer's, or a viewer's: viewers only read)"


class BearerAuth:
    """Who is calling: the request's bearer token, verified by the authenticator."""

    def __init__(self, authenticator: Authenticator) -> None:
        self.authenticator = authenticator

    def principal(self) -> Principal:
        """The authenticated caller; aborts with 401 when the bearer token is missing or bad.
        Verified once per request (see `verified`)."""
        token = bearer_token()
        if token is None:
            reject(401, "Send `Authorization: Bearer <token>`.", headers=_CHALLENGE)
        try:
            return verified(self.authenticator, token)
        except AuthError as error:
            reject(401, str(error).capitalize() + ".", headers=_CHALLENGE)

    def customer(self) -> str:
        """The calling customer's id; 403 for an admin token, 401 without a valid token."""
        caller = self.principal()
        if caller.customer_id is None:
            reject(403, "This endpoint is for customers.")
        return caller.customer_id

    def admin(self) -> Principal:
        """The calling admin; 403 for a customer token, and for a viewer unless the request
        only reads (so an admin endpoint that changes something refuses viewers even if it
        was guarded with this rather than `operator`)."""
        caller = self.principal()
        if caller.kind != "admin":
            reject(403, "This endpoint needs an admin token.")
        if request.method not in SAFE_METHODS and not caller.may_change:
            self._read_only(caller)
        return caller

    def operator(self) -> Principal:
        """The calling admin, who may change things; 403 for a viewer or a customer."""
        caller = self.admin()
        if not caller.may_change:
            self._read_only(caller)
        return caller

    def _read_only(self, caller: Principal) -> NoReturn:
        reject(403, f"{caller.login} is a viewer: viewers only read.", code="read_only_admin")


def verified(authenticator: Authenticator, token: str) -> Principal:
    """`authenticator.verify(token)`, once per request: a customer's token costs a database
    lookup, and a rate limit, a guard and the view may each ask who is calling."""
    # Kept with the request itself (flask.g may outlive one, in an app context pushed
    # around several): a token revoked by one request is checked afresh by the next.
    answers: dict[str, Principal | AuthError] = request.environ.setdefault(
        "shop.verified_tokens", {}
    )
    if token not in answers:
        try:
            answers[token] = authenticator.verify(token)
        except AuthError as error:
            answers[token] = error
    answer = answers[token]
    if isinstance(answer, AuthError):
        raise answer
    return answer


def bearer_token() -> str | None:
    """The request's bearer token, unverified; None without one."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


class Commands:
    """The command side of an endpoint: dispatch, and answer a refusal as a problem."""

    def __init__(self, bus: CommandBus) -> None:
        self.bus = bus

    def dispatch(
        self,
        command: Command,
        metadata: Metadata,
        statuses: Mapping[str, int] = {},
        *,
        messages: Mapping[str, str] = {},
        headers: Mapping[str, Mapping[str, str]] = {},
    ) -> Success:
        """Dispatch and return the success; a failure aborts with its problem response
        (the status from `statuses` by failure code, else STATUS_BY_CODE, else 409; the
        detail from `messages` by code, else the failure's own; `headers` by code)."""
        result = self.bus.dispatch(command, metadata)
        if isinstance(result, Failure):
            status = statuses.get(result.code) or STATUS_BY_CODE.get(result.code, 409)
            message = messages.get(result.code, result.message)
            reject(status, message, code=result.code, headers=dict(headers.get(result.code, {})))
        return result


def command_metadata(actor: str, command_id: str | None = None) -> Metadata:
    """Metadata for a command from this request; honours a sane X-Correlation-ID."""
    correlation = request.headers.get("X-Correlation-ID", "")
    if not _CORRELATION.match(correlation):
        correlation = ""
    if command_id:
        return Metadata(message_id=command_id, correlation_id=correlation, actor=actor)
    return Metadata(correlation_id=correlation, actor=actor)


def reject(status: int, message: str, **data: Any) -> NoReturn:
    """Abort the request with a problem response (`code`, `errors`, `headers` optional)."""
    abort(status, message=message, **data)
    raise AssertionError("abort returned")


_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="shop"'}
_CORRELATION = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")


# --- documenting and guarding views ------------------------------------------------
# flask-smorest ships no type hints, so its own decorators are untyped: a module applying
# them to views carries `# mypy: disable-error-code="untyped-decorator"`; these are typed.

View = Callable[..., Any]


def documented_problem(blueprint: Any, status: int, description: str) -> Callable[[View], View]:
    """Document an error response of a view as problem+json in the OpenAPI spec."""
    decorator: Callable[[View], View] = blueprint.alt_response(
        status, schema=ProblemSchema, description=description, content_type=PROBLEM_JSON
    )
    return decorator


def guarded(
    blueprint: Any,
    check: Callable[[], object],
    forbidden: str,
    *,
    unauthorized: str = "Missing, forged or expired token",
) -> Callable[[View], View]:
    """Check the credential before the request is parsed, so 401/403 come before 422,
    and document the bearer security and both errors. Place it above `arguments`."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Any:
            check()
            return view(*args, **kwargs)

        documented: View = blueprint.doc(security=[{"bearer": []}])(checked)
        documented = documented_problem(blueprint, 401, unauthorized)(documented)
        return documented_problem(blueprint, 403, forbidden)(documented)

    return decorate
