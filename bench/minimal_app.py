"""The baseline API: a minimal Flask app served by gunicorn with the same settings.

`GET /ping` returns a constant; `POST /orders` parses a JSON body and answers 202
with a small JSON document, as `POST /api/orders` does, but does no work.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import Flask, request

app = Flask("bench-baseline")


@app.get("/ping")
def ping() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/orders")
def orders() -> tuple[dict[str, Any], int]:
    body = request.get_json()
    lines = len(body.get("lines", [])) if isinstance(body, dict) else 0
    return {"order_id": str(uuid.uuid4()), "status": "pending", "lines": lines}, 202
