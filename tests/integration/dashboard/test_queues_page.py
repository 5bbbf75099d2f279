"""RQ's dashboard, mounted under the admin dashboard, leads back to the shop's pages."""

from __future__ import annotations

import re

from flask.testing import FlaskClient


def test_the_queues_pages_link_back_to_the_shops_pages(admin: FlaskClient) -> None:
    response = admin.get("/admin/rq/", follow_redirects=True)

    assert response.status_code == 200
    html = response.get_data(as_text=True)
    back = re.search(r'<a class="navbar-brand" href="([^"]+)" data-back-to-shop>', html)
    assert back is not None and back.group(1) == "/admin/orders"
    assert "« Shop admin</a>" in html
    for tab in ("queues", "jobs", "workers"):  # RQ's own navigation is still there
        assert f'/admin/rq/0/view/{tab}" class="nav-link"' in html
    assert 'id="autorefresh-switch"' in html
