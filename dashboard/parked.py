"""Parked keys: the orders a subscription passes over since a handler kept failing on
one of their events; retrying one after a fix, or skipping it with a reason."""

from __future__ import annotations

import marshmallow as ma
from flask import Blueprint, Response, flash, redirect, request, url_for
from flask.typing import ResponseReturnValue

from dashboard.auth import acting_admin
from dashboard.common import page, problem
from dashboard.services import Services
from kernel import parking
from kernel.errors import ParkedKeyBusy, StillFailing
from kernel.parking_api import SkipSchema


def blueprint(services: Services) -> Blueprint:
    pages = Blueprint("parked", __name__)
    runner = services.read_side.runner

    @pages.get("/parked")
    def index() -> Response:
        """Every parked key, oldest first, with its error and the actions on it."""
        with services.engine.connect() as conn:
            found = parking.listing(conn, limit=500)
        return page("dashboard/parked.html", parked=found)

    @pages.post("/parked/<subscription>/<key>/retry")
    def retry(subscription: str, key: str) -> ResponseReturnValue:
        """Apply the key's parked events in order, after a fix."""
        try:
            applied = runner.retry(services.subscriber(subscription), key, acting_admin().actor)
        except (KeyError, LookupError):
            return problem(404, f"{key} is not parked for {subscription}.")
        except ParkedKeyBusy as busy:
            flash(f"Try again in a moment: {busy}", "error")
        except StillFailing as failing:
            flash(f"{key} failed again in {subscription} and stays parked: {failing}", "error")
        else:
            flash(f"Applied {applied} parked event(s) of {key} to {subscription}.", "ok")
        return redirect(url_for("dashboard.parked.index"), code=303)

    @pages.post("/parked/<subscription>/<key>/skip")
    def skip(subscription: str, key: str) -> ResponseReturnValue:
        """Drop the key's parked events unapplied; the reason is required."""
        try:  # the admin API's rule for a reason
            reason = SkipSchema().load({"reason": request.form.get("reason", "").strip()})["reason"]
        except ma.ValidationError:
            flash("Say why the events may be skipped (1 to 500 characters).", "error")
            return redirect(url_for("dashboard.parked.index"), code=303)
        try:
            actor = acting_admin().actor
            skipped = runner.skip(services.subscriber(subscription), key, actor, reason)
        except (KeyError, LookupError):
            return problem(404, f"{key} is not parked for {subscription}.")
        except ParkedKeyBusy as busy:
            flash(f"Try again in a moment: {busy}", "error")
        else:
            flash(f"Skipped {skipped} parked event(s) of {key} in {subscription}.", "ok")
        return redirect(url_for("dashboard.parked.index"), code=303)

    return pages
