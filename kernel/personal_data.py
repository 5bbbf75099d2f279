"""Personal data in events, sealed with a key per person so that forgetting them is
destroying one key (crypto-shredding): the log stays append-only, and every copy of the
ciphertext, in the log, read models and backups of either, becomes noise.

An event class names its personal fields and whose they are (`PersonalFields`). On
append the event store moves those fields out of the payload into one sealed envelope,
`{"subject": ..., "sealed": ...}` under the payload field `personal`: AES-256-GCM with
the subject's key, a random 96-bit nonce and the subject's id as associated data, so
an envelope cannot be passed off as another person's. On read the envelope is opened
with the subject's key; once that key is destroyed the fields read as erased (`ERASED`
in every string), and nothing else about the event changes.

Keys live in `personal_data_keys`, one row per subject. Forgetting a subject keeps the
row with its key set to NULL: a tombstone, so that sealing anything more for them fails
instead of quietly making a new key.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import os
import threading
import time
import typing
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection, text

from kernel.errors import DomainError

ENVELOPE = "personal"
"""The payload field holding an event's sealed personal fields."""
ERASED = "(erased)"
"""What every personal string of a forgotten person reads as."""
NONCE_BYTES = 12


@dataclass(frozen=True, slots=True)
class PersonalFields:
    """Declared by an event class: `fields` are personal data of the person whose id is
    in the field `subject` (which stays in the clear: ids are random, not personal)."""

    subject: str
    fields: tuple[str, ...]


class Forgotten(DomainError):
    """Personal data cannot be sealed for a person who was forgotten."""

    code = "forgotten"


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def seal(key: bytes, subject: str, fields: Mapping[str, Any]) -> dict[str, str]:
    """The envelope holding `fields` (JSON-ready values) for `subject`."""
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, orjson.dumps(fields), subject.encode())
    return {"subject": subject, "sealed": base64.b64encode(nonce + sealed).decode()}


def unseal(key: bytes, envelope: Mapping[str, Any]) -> dict[str, Any]:
    """The fields sealed in `envelope`; raises ValueError if it was not sealed with `key`
    for its subject, or was altered."""
    try:
        raw = base64.b64decode(envelope["sealed"], validate=True)
        plain = AESGCM(key).decrypt(
            raw[:NONCE_BYTES], raw[NONCE_BYTES:], str(envelope["subject"]).encode()
        )
    except (InvalidTag, binascii.Error, KeyError, TypeError) as error:
        raise ValueError("the personal data envelope does not open with this key") from error
    fields: dict[str, Any] = orjson.loads(plain)
    return fields


def lookup_digest(value: str) -> bytes:
    """A digest to find a record by a personal value (an email) without storing the value.
    Anyone holding the value can compute it, so it is deleted with the record it finds."""
    return hashlib.sha256(value.encode()).digest()


def subject_of(data: Mapping[str, Any]) -> str | None:
    """The subject of a stored payload's envelope, None if it has none."""
    envelope = data.get(ENVELOPE)
    return envelope.get("subject") if isinstance(envelope, dict) else None


def sealed_payload(declared: PersonalFields, data: dict[str, Any], key: bytes) -> dict[str, Any]:
    """The payload to store: `data` with the declared fields moved into an envelope (an
    older payload may lack a field declared since: it has nothing of it to seal)."""
    personal = {name: data[name] for name in declared.fields if name in data}
    stored = {name: value for name, value in data.items() if name not in personal}
    stored[ENVELOPE] = seal(key, str(data[declared.subject]), personal)
    return stored


def opened_payload(
    event_class: type[Any], data: dict[str, Any], key: bytes | None
) -> dict[str, Any]:
    """`data` with its envelope opened back into fields, or, without the key, with every
    personal field erased. A payload without an envelope is returned as it is."""
    envelope = data.get(ENVELOPE)
    if not isinstance(envelope, dict):
        return data
    opened = {name: value for name, value in data.items() if name != ENVELOPE}
    if key is None:
        opened |= erased_fields(event_class)
    else:
        opened |= unseal(key, envelope)
    return opened


def opened_envelope(
    event_class: type[Any], envelope: Mapping[str, Any] | None, key: bytes | memoryview | None
) -> dict[str, Any]:
    """The personal fields of `event_class` in a stored `envelope` (as a read model keeps
    it), opened with `key` as read from the database; erased without either."""
    if envelope is None or key is None:
        return erased_fields(event_class)
    return unseal(bytes(key), envelope)


def erased_fields(event_class: type[Any]) -> dict[str, Any]:
    """The declared personal fields of `event_class`, each erased."""
    declared: PersonalFields = event_class.personal_fields
    hints = typing.get_type_hints(event_class)
    return {name: _erased(hints[name]) for name in declared.fields}


def _erased(hint: Any) -> Any:
    if hint is str:
        return ERASED
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        nested = typing.get_type_hints(hint)
        return {f.name: _erased(nested[f.name]) for f in dataclasses.fields(hint)}
    raise TypeError(f"a personal field must be a string or a dataclass of them, not {hint}")


def check_declaration(event_class: type[Any]) -> None:
    """Fail at start-up, not at the first erasure, on a declaration that cannot be kept."""
    declared: PersonalFields | None = getattr(event_class, "personal_fields", None)
    if declared is None:
        return
    names = {f.name for f in dataclasses.fields(event_class)}
    missing = {declared.subject, *declared.fields} - names
    if missing:
        raise TypeError(f"{event_class.__name__} has no field {sorted(missing)}")
    if declared.subject in declared.fields or ENVELOPE in names:
        raise TypeError(f"{event_class.__name__}: the subject stays clear; `{ENVELOPE}` is taken")
    erased_fields(event_class)


class PersonalDataKeys:
    """The `personal_data_keys` table: reads and writes inside the caller's transaction.

    Keys for sealing are kept in memory for `kept_for` seconds once read (appends of one
    customer's events then cost no extra round trip). That is safe because a key never
    changes, it only goes: an event sealed with a key kept past its customer's erasure
    opens with no key anywhere, so it reads erased like the rest. Reading never uses
    what is kept here, so erasure takes effect on every read at once.
    """

    def __init__(self, *, kept_for: float = 60.0, most: int = 10_000) -> None:
        self.kept_for = kept_for
        self.most = most
        self._sealing: dict[str, tuple[bytes, float]] = {}
        self._lock = threading.Lock()

    def kept(self, subject: str) -> bool:
        """Whether `key_for_sealing` has the subject's key in memory: it reads nothing."""
        kept = self._sealing.get(subject)
        return kept is not None and kept[1] > time.monotonic()

    def key_for_sealing(self, conn: Connection, subject: str) -> bytes:
        """The subject's key, made on first use; raises Forgotten for a forgotten subject
        (the customer's aggregate refuses their commands first: this is the last guard)."""
        now = time.monotonic()
        kept = self._sealing.get(subject)
        if kept is not None and kept[1] > now:
            return kept[0]
        for _ in range(2):
            row = conn.execute(_KEY_FOR_SEALING, {"subject": subject}).first()
            if row is None:  # no key yet: make one (another transaction may race us)
                made = conn.execute(_NEW_KEY, {"subject": subject, "key": new_key()}).first()
                if made is not None:  # not kept: this transaction may yet roll back
                    return bytes(made[0])
                continue
            if row[0] is None:
                raise Forgotten(f"the personal data of {subject} was erased")
            key = bytes(row[0])
            with self._lock:
                if len(self._sealing) >= self.most:
                    self._sealing.pop(next(iter(self._sealing)))  # the oldest kept
                self._sealing[subject] = (key, now + self.kept_for)
            return key
        raise RuntimeError(f"no key could be made or read for {subject}")

    def keys(self, conn: Connection, subjects: Collection[str]) -> dict[str, bytes]:
        """The live keys of those of `subjects` that have one."""
        if not subjects:
            return {}
        rows = conn.execute(_LIVE_KEYS, {"subjects": sorted(set(subjects))})
        return {subject: bytes(key) for subject, key in rows}

    def forget(self, conn: Connection, subject: str) -> bool:
        """Destroy the subject's key (leaving a tombstone); False if it was gone already."""
        forgot = conn.execute(_FORGET, {"subject": subject}).scalar()
        return bool(forgot)


_KEY_FOR_SEALING = text("SELECT key FROM personal_data_keys WHERE subject_id = :subject")
_NEW_KEY = text(
    """
    INSERT INTO personal_data_keys (subject_id, key) VALUES (:subject, :key)
    ON CONFLICT (subject_id) DO NOTHING
    RETURNING key
    """
)
_LIVE_KEYS = text(
    "SELECT subject_id, key FROM personal_data_keys"
    " WHERE subject_id = ANY(:subjects) AND key IS NOT NULL"
)
# A subject with no key yet gets the tombstone straight away.
_FORGET = text(
    """
    INSERT INTO personal_data_keys (subject_id, key, forgotten_at)
    VALUES (:subject, NULL, now())
    ON CONFLICT (subject_id) DO UPDATE SET key = NULL, forgotten_at = now()
    WHERE personal_data_keys.key IS NOT NULL
    RETURNING true
    """
)
