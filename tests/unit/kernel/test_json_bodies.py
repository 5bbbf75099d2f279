# flask-smorest ships no type hints, so its decorators are untyped; the views stay annotated.
# mypy: disable-error-code="untyped-decorator"
"""The strict JSON body loader: what the stdlib json would take, or crash on, is refused
as malformed JSON (a JSONDecodeError, which webargs answers with a 400)."""

from __future__ import annotations

import json
from json import JSONDecodeError

import marshmallow as ma
import pytest
from flask import Flask

from kernel.http import MAX_JSON_DEPTH, Blueprint, ProblemApi, loads_json


def nested(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


@pytest.mark.parametrize(
    ("body", "value"),
    [
        (b'{"name": "Zo\\u00eb \\ud83d\\ude00"}', {"name": "Zo\u00eb \U0001f600"}),  # a pair
        ('{"name": "Zoë"}'.encode(), {"name": "Zoë"}),
        (b'{"quantity": 18446744073709551615}', {"quantity": 2**64 - 1}),
    ],
)
def test_ordinary_json_loads(body: bytes, value: object) -> None:
    assert loads_json(body) == value


def test_nesting_up_to_the_limit_loads() -> None:
    body = b'{"a": ' + nested(MAX_JSON_DEPTH - 1) + b"}"
    assert loads_json(body) == json.loads(body)


@pytest.mark.parametrize(
    "body",
    [
        b'{"name": "\\ud800"}',  # a lone high surrogate
        b'{"name": "x\\udc00"}',  # a lone low surrogate
        b'{"name": "\xed\xa0\x80"}',  # a surrogate encoded as (invalid) UTF-8
        b'{"name": "\xff"}',
        nested(MAX_JSON_DEPTH + 1),
        nested(1500),
        b'{"a": ' + nested(1000) + b"}",
        b'{"n": ' + b"9" * 5000 + b"}",
        b'{"n": NaN}',
        b"  ",
        b'{"a": 1',
    ],
)
def test_hostile_or_malformed_json_is_a_decode_error_carrying_the_body(body: bytes) -> None:
    with pytest.raises(JSONDecodeError) as raised:
        loads_json(body)
    assert raised.value.doc  # not empty: webargs takes an empty `doc` for "no body"


def test_an_empty_body_is_a_decode_error_of_an_empty_document() -> None:
    with pytest.raises(JSONDecodeError) as raised:
        loads_json(b"")
    assert raised.value.doc == ""


class NameSchema(ma.Schema):
    name = ma.fields.String()


def test_the_blueprint_answers_hostile_json_with_a_400_problem() -> None:
    app = Flask("test")
    app.config.update(API_TITLE="t", API_VERSION="1", OPENAPI_VERSION="3.0.3")
    api = ProblemApi(app)
    blp = Blueprint("t", __name__)

    @blp.post("/t")
    @blp.arguments(NameSchema())
    def view(body: dict[str, str]) -> dict[str, str]:
        return body

    api.register_blueprint(blp)
    client = app.test_client()
    for data in (b'{"name": "\\ud800"}', nested(1500), b'{"name": ' + b"9" * 5000 + b"}"):
        reply = client.post("/t", data=data, content_type="application/json")
        assert reply.status_code == 400, reply.data
        assert reply.mimetype == "application/problem+json"
        assert reply.json is not None and reply.json["detail"].startswith("Invalid JSON body (")
    assert client.post("/t", json={"name": "ok"}).json == {"name": "ok"}
