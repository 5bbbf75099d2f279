"""Named admins: who may use the admin API and the dashboard, with which role.

Each admin has a random token, shown once when it is issued; only its SHA-256 is kept
(`admin_accounts.token_hash`, unique, so verifying a token is one indexed lookup).
Rotating issues a new token and the old one stops working at once; disabling keeps the
account (events name its id as their actor, so the audit trail still resolves to a
login) but no token of it works again. See kernel.auth for how tokens are verified.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from kernel.auth import ADMIN_TOKEN_PREFIX, BOOTSTRAP, ROLES, Principal, token_digest

LOGIN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
LOGIN_RULE = "1 to 63 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit"


class AdminError(Exception):
    """The account cannot be created or changed as asked (the message says why)."""


@dataclass(frozen=True, slots=True)
class AdminAccount:
    admin_id: str
    login: str
    role: str
    created_at: datetime
    created_by: str
    disabled_at: datetime | None
    token_hash: bytes = field(default=b"", repr=False)

    @property
    def principal(self) -> Principal:
        return Principal("admin", admin_id=self.admin_id, login=self.login, role=self.role)


def new_token() -> str:
    return ADMIN_TOKEN_PREFIX + secrets.token_urlsafe(32)


class AdminAccounts:
    """The admin_accounts table of `engine`'s database (an AdminLookup for kernel.auth)."""

    COLUMNS = "admin_id::text, login, role, created_at, created_by, disabled_at, token_hash"

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, login: str, role: str, created_by: str) -> tuple[AdminAccount, str]:
        """A new admin and their token (to show once: it is not kept)."""
        if not LOGIN.match(login):
            raise AdminError(f"a login is {LOGIN_RULE}")
        if login == BOOTSTRAP:
            raise AdminError(f"{BOOTSTRAP} is ADMIN_TOKEN's name: choose another login")
        if role not in ROLES:
            raise AdminError(f"the role is one of {', '.join(ROLES)}")
        token = new_token()
        try:
            with self.engine.begin() as conn:
                row = conn.execute(
                    text(
                        "INSERT INTO admin_accounts (admin_id, login, role, token_hash, created_by)"
                        f" VALUES (:id, :login, :role, :hash, :by) RETURNING {self.COLUMNS}"
                    ),
                    {
                        "id": uuid.uuid4(),
                        "login": login,
                        "role": role,
                        "hash": token_digest(token),
                        "by": created_by,
                    },
                ).one()
        except IntegrityError:
            raise AdminError(f"an admin named {login} exists already") from None
        return _account(row), token

    def listing(self) -> list[AdminAccount]:
        """Every admin, disabled ones too, by login."""
        with self.engine.connect() as conn:
            rows = conn.execute(text(f"SELECT {self.COLUMNS} FROM admin_accounts ORDER BY login"))
            return [_account(row) for row in rows]

    def rotate(self, login: str) -> str:
        """A new token for the enabled admin `login`; their old one stops working."""
        token = new_token()
        self._change(
            login, "token_hash = :hash", {"hash": token_digest(token)}, "rotate the token of"
        )
        return token

    def disable(self, login: str) -> None:
        """No token of `login` works again (their actions stay theirs in the log)."""
        self._change(login, "disabled_at = now()", {}, "disable")

    def by_token_digest(self, digest: bytes) -> Principal | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                text(
                    f"SELECT {self.COLUMNS} FROM admin_accounts"
                    " WHERE token_hash = :hash AND disabled_at IS NULL"
                ),
                {"hash": digest},
            ).first()
        return None if row is None else _account(row).principal

    def find(self, admin_id: str) -> AdminAccount | None:
        """The admin `admin_id`, enabled or not; None for an id that is no admin's."""
        wanted = _uuid_or_none(admin_id)
        if wanted is None:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(
                text(f"SELECT {self.COLUMNS} FROM admin_accounts WHERE admin_id = :id"),
                {"id": wanted},
            ).first()
        return None if row is None else _account(row)

    def logins(self, admin_ids: Collection[str]) -> dict[str, str]:
        """{admin id: login} for those of `admin_ids` that are admins' (disabled too)."""
        wanted = [found for found in map(_uuid_or_none, admin_ids) if found is not None]
        if not wanted:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(
                text("SELECT admin_id::text, login FROM admin_accounts WHERE admin_id = ANY(:ids)"),
                {"ids": wanted},
            )
            return {admin_id: login for admin_id, login in rows}

    def admin_id(self, login: str) -> str | None:
        with self.engine.connect() as conn:
            found = conn.execute(
                text("SELECT admin_id::text FROM admin_accounts WHERE login = :login"),
                {"login": login},
            ).scalar()
        return None if found is None else str(found)

    def _change(self, login: str, assignment: str, values: dict[str, Any], what: str) -> None:
        with self.engine.begin() as conn:
            changed = conn.execute(
                text(
                    f"UPDATE admin_accounts SET {assignment}"
                    " WHERE login = :login AND disabled_at IS NULL RETURNING login"
                ),
                {"login": login, **values},
            ).first()
        if changed is None:
            raise AdminError(f"cannot {what} {login}: there is no enabled admin of that name")


def _account(row: Any) -> AdminAccount:
    admin_id, login, role, created_at, created_by, disabled_at, token_hash = row
    return AdminAccount(
        admin_id, login, role, created_at, created_by, disabled_at, bytes(token_hash)
    )


def _uuid_or_none(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
