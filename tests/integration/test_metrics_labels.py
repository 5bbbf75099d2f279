"""`/metrics` stays bounded whatever clients send: every label value comes from a closed
set (unknown methods are "other", paths no route matches are "<unmatched>"), so a flood
of made-up methods and paths adds no series; and it answers with one valid Content-Type.

In-process through the test client: the counters are prometheus_client's multiprocess
files either way, so this is what a scrape of the gunicorn API shows too."""

from __future__ import annotations

import random
import string

from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from config.metrics import METHODS, OTHER_METHOD

Series = set[tuple[str, frozenset[tuple[str, str]]]]
FLOOD = 600
REAL_PATHS = ("/api/products", "/api/orders", "/healthz", "/metrics", "/admin/api/products")


def series(client: FlaskClient) -> Series:
    response = client.get("/metrics")
    assert response.status_code == 200
    return {
        (sample.name, frozenset(sample.labels.items()))
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
    }


def token(rng: random.Random, alphabet: str, longest: int) -> str:
    return "".join(rng.choices(alphabet, k=rng.randint(1, longest)))


def made_up_request(rng: random.Random) -> tuple[str, str]:
    """A method no HTTP client uses on any path, or a real method on a path no route
    has (a real method on a real path would be a real request)."""
    path_alphabet = string.ascii_letters + string.digits + "-_.~%"
    path = "/" + "/".join(token(rng, path_alphabet, 12) for _ in range(rng.randint(1, 4)))
    if rng.random() < 0.2:
        return rng.choice(sorted(METHODS)), "/no-such-route" + path
    method = token(rng, string.ascii_uppercase + "-_", 10)
    while method in METHODS:
        method += "X"
    return method, rng.choice((path, "/api" + path, *REAL_PATHS))


def test_requests_with_made_up_methods_and_paths_add_no_series(client: FlaskClient) -> None:
    rng = random.Random(14)
    # One of each kind first (a scrape too): the closed set's series exist from then on.
    series(client)
    for method in sorted(METHODS):
        client.open("/no-such-route/warm-up", method=method)
    for path in ("/warm-up", *REAL_PATHS):
        client.open(path, method="BREW")
    before = series(client)

    statuses = set()
    for _ in range(FLOOD):
        method, path = made_up_request(rng)
        response = client.open(path, method=method)
        statuses.add(response.status_code)
        response.close()
    after = series(client)

    added = after - before
    assert not added, f"{len(added)} series added by {FLOOD} requests, e.g. {sorted(added)[:5]}"
    assert statuses <= {400, 404, 405}, statuses
    methods = {dict(labels).get("method") for name, labels in after if name.startswith("shop_http")}
    assert methods <= METHODS | {OTHER_METHOD}, methods


def test_metrics_answer_with_one_content_type(client: FlaskClient) -> None:
    response = client.get("/metrics")

    (content_type,) = response.headers.getlist("Content-Type")
    media_type, *parameters = (part.strip() for part in content_type.split(";"))
    names = [parameter.partition("=")[0].lower() for parameter in parameters]
    assert media_type == "text/plain"
    assert sorted(names) == ["charset", "version"], content_type
    assert dict(parameter.lower().partition("=")[::2] for parameter in parameters) == {
        "charset": "utf-8",
        "version": "0.0.4",
    }
