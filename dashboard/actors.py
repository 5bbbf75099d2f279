"""Who an event's actor is, in words: an admin by login, a customer, the system."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from kernel.admins import AdminAccounts
from kernel.auth import BOOTSTRAP

LEGACY_ADMINS = {"admin", "admin:dashboard"}  # before named admins: the shared token
SYSTEM_ACTORS = {
    "system": "the system",
    "seed": "the demo catalog seed",
    "payment-provider": "the payment provider",
}


@dataclass(frozen=True, slots=True)
class Actor:
    raw: str  # as recorded in the metadata
    name: str  # in words
    kind: str  # "admin", "customer", "operator" (the CLI) or "system"


def named(admins: AdminAccounts, actors: Iterable[str]) -> dict[str, Actor]:
    """Each of `actors` (as recorded) in words; admins' ids resolved to their logins in
    one lookup (a disabled admin keeps their name)."""
    wanted = set(actors)
    ids = {actor.removeprefix("admin:") for actor in wanted if actor.startswith("admin:")}
    logins = admins.logins(ids - {BOOTSTRAP})
    return {actor: _actor(actor, logins) for actor in wanted}


def _actor(raw: str, logins: dict[str, str]) -> Actor:
    kind, _, who = raw.partition(":")
    if raw in LEGACY_ADMINS:
        return Actor(raw, "an admin (the shared token)", "admin")
    if kind == "admin" and who == BOOTSTRAP:
        return Actor(raw, "the bootstrap admin (ADMIN_TOKEN)", "admin")
    if kind == "admin":
        return Actor(raw, logins.get(who, f"unknown admin {who[:8]}"), "admin")
    if kind == "customer":
        return Actor(raw, f"the customer {who[:8]}", "customer")
    if kind == "saga":
        return Actor(raw, f"the saga ({who})", "system")
    if kind == "cli":
        return Actor(raw, f"{who} (shop CLI)", "operator")
    return Actor(raw, SYSTEM_ACTORS.get(raw, raw), "system")
