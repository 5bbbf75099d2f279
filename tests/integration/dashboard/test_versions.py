"""The projections page says which version each read model's generation was built with,
and why a rebuild runs."""

from __future__ import annotations

import os
import socket

from flask.testing import FlaskClient

from config.bootstrap import Application
from config.jobs import Jobs
from config.settings import Settings
from projections import order_detail
from tests.integration.dashboard.support import csrf, place, settle
from tests.support.api_client import Customer
from tests.support.releases import release

OLD = order_detail.VERSION  # in this code
NEW = OLD + 1  # in the next release


def row_of(html: str, name: str) -> str:
    return html.split(f'data-subscription="{name}"')[1].split("</tr>")[0]


def test_the_projections_page_shows_versions_and_why_a_rebuild_runs(
    admin: FlaskClient, application: Application, settings: Settings, catalog: None, ada: Customer
) -> None:
    place(admin, ada, {"MUG-1": 1})
    settle(application)
    Jobs(application).sweep()
    row = row_of(admin.get("/admin/projections").get_data(as_text=True), "order_detail")
    assert "data-version" in row and f">v{OLD}</span>" in row
    assert "data-rebuild-reason" not in row

    with release(settings, order_detail=NEW) as next_release:
        assert Jobs(next_release).sweep() == {"order_detail": 2}
        row = row_of(admin.get("/admin/projections").get_data(as_text=True), "order_detail")
        worker = f"{socket.gethostname()}:{os.getpid()}"
        assert f"v{NEW}: version {OLD} -&gt; {NEW} by {worker}</span>" in row
        assert Jobs(next_release).rebuild("order_detail") == "switched to generation 2"

    # This (older) code shows the newer version it does not run, and will not go back.
    row = row_of(admin.get("/admin/projections").get_data(as_text=True), "order_detail")
    assert f">v{NEW} (code v{OLD})</span>" in row
    response = admin.post(
        "/admin/projections/order_detail/rebuild",
        data={"csrf_token": csrf(admin), "confirmed": "yes"},  # past the confirmation step
    )
    assert response.status_code == 409
    assert f"built with version {NEW}; this code is version {OLD}" in response.get_data(
        as_text=True
    )
    assert application.read_side.generations("order_detail").building is None


def test_the_generation_number_stands_alone_for_the_page_script_to_update(
    admin: FlaskClient, application: Application, catalog: None
) -> None:
    Jobs(application).sweep()
    row = row_of(admin.get("/admin/projections").get_data(as_text=True), "order_detail")
    # dashboard.js replaces this element's text with the new generation after a switch.
    assert "<span data-generation>1</span>" in row
