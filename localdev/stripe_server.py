"""A local Stripe API for development and tests: localstripe, made faithful where the
shop's payment flow depends on it.

    python -m localdev.stripe_server --port PORT --state FILE [--host 127.0.0.1]

It serves localstripe's aiohttp routes (through a new ``web.Application`` holding the
same handlers), on the loopback interface only: localstripe's own ``start()`` binds every
interface. SIGTERM and SIGINT stop it after it has written its state. Everything below
replaces or wraps internals of localstripe 1.15.10, which is why pyproject.toml pins that
exact version; each addition closes one gap of that version, as Stripe documents it:

1. Idempotent requests (https://docs.stripe.com/api/idempotent_requests). localstripe
   ignores ``Idempotency-Key``, so a retried POST charges twice. Here a POST to ``/v1/``
   with a key is run once per (API key, idempotency key): its status and body are saved
   and a retry with the same parameters gets them back, with ``Idempotent-Replayed:
   true``, changing nothing. The same key with other parameters, or on another endpoint,
   is a 400 ``idempotency_error``; a retry arriving while the first request is still in
   progress (its body still being received) is a 409 ``idempotency_error`` with code
   ``idempotency_key_in_use``. Keys are forgotten 24 hours after first use, and kept in
   the state file across restarts. As Stripe does, a result is saved only once the
   endpoint has begun executing, whatever it is, 402 and 5xx included (Stripe: "Retries
   with the same key return the saved response, including 500 errors"); a request that
   failed validation is not saved, so it can be retried with the same key. localstripe
   validates before it changes anything, so an error response from a request that wrote
   nothing to the store counts as a validation failure. Unauthenticated requests are
   never saved either.
2. Stripe's test payment methods (https://docs.stripe.com/testing). localstripe knows
   three ``pm_card_*`` ids, and declines ``pm_card_visa_chargeDeclined`` (4000000000000002)
   only when it is attached to a customer: charging it succeeds. Here every card of
   ``DECLINES`` (by number, so cards created with ``payment_methods.create`` count too) is
   declined when charged, with Stripe's ``code``, ``decline_code`` and message; the 402 is
   a ``card_error`` carrying ``charge``, ``payment_intent`` (the whole intent) and
   ``payment_method``, as Stripe's is (localstripe's is an ``invalid_request_error`` with no
   intent); ``last_payment_error`` (so the ``payment_intent.payment_failed`` event) carries
   ``type`` and ``decline_code``. ``TEST_PAYMENT_METHODS`` lists the ids; a PaymentIntent
   created with one refers to the PaymentMethod made from it (Stripe's behaviour; in
   localstripe it kept the test id and every use minted another PaymentMethod). Cards that
   require 3-D Secure end in ``requires_action``; the customer's part is localstripe's
   ``POST /v1/payment_intents/{id}/_authenticate`` with ``client_secret`` and ``success``.
   A failed authentication now sends ``payment_intent.payment_failed``, as Stripe does
   (localstripe sent nothing), and a canceled intent ``payment_intent.canceled``.
   Attaching a declining card to a customer is the same ``card_error`` (localstripe's
   has no decline code).
3. ``amount_received`` on PaymentIntent and ``amount_captured`` on Charge (localstripe
   has neither): what the latest charge captured, partial captures included, else 0.
   A PaymentIntent's ``latest_charge`` is the charge's id, as in Stripe, unless expanded
   (localstripe inlined the whole charge).
4. Refunds. localstripe sends no event for a refund: here each refund created through
   ``/v1/refunds`` sends ``charge.refunded`` with the charge (``payment_intent``,
   ``amount``, ``amount_refunded``, ``refunded``). localstripe also refunds any amount, any
   number of times: here a refund without ``amount`` takes what remains, refunding a
   charge that has nothing left is a 400 with Stripe's code ``charge_already_refunded``,
   and asking for more than remains is Stripe's 400 on ``param: amount`` (with no code).
5. State. localstripe pickles its whole store to the fixed path /tmp/localstripe.pickle
   on every write (instances overwrite each other, and a write costs the size of the
   store: thousands of objects after a few minutes at 20 payments/s). Here the store, the
   idempotency keys and the registered webhooks are loaded from ``--state`` at start and
   written there atomically (temporary file, then rename) by a background task at most
   once a second when something changed (less often when a write takes longer than a
   tenth of that), and on shutdown.
6. Cost per request. localstripe finds a charge's refunds by going through every object
   in the store, three times per charge each time a charge or an intent is exported: with
   17,000 objects in the store (3,000 payments) a payment took 30 ms and kept slowing
   down. Here each charge keeps its own refunds.

Kept as localstripe has it: webhook delivery (``POST /_config/webhooks/{id}`` registers an
endpoint; see ``localdev.stripe_webhooks``). Each event is posted once, a second after it
happened, signed like Stripe's, with no retry. Stripe retries for days; losing a webhook
here is what the shop's reconciliation must recover from, so this server keeps losing
them (and drops those still waiting when it stops).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import logging
import os
import pickle
import tempfile
import time
import warnings
import zlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

with warnings.catch_warnings():  # aiohttp deprecates localstripe's plain-function handlers
    warnings.simplefilter("ignore", DeprecationWarning)
    from localstripe import resources, server, webhooks
    from localstripe.errors import UserError
    from localstripe.resources import (
        Charge,
        Event,
        List,
        PaymentIntent,
        PaymentMethod,
        Refund,
        store,
        try_convert_to_int,
    )

log = logging.getLogger("localdev.stripe_server")

KEY_LIFETIME = 24 * 60 * 60.0
"""Seconds an idempotency key is remembered (Stripe: at least 24 hours)."""
SAVE_INTERVAL = 1.0


@dataclass
class _Changes:
    writes: int = 0  # objects stored or deleted, ever: has a request changed anything?
    dirty: bool = False  # something may have changed since the state was last written


_changes = _Changes()


# --- 1. Idempotent requests --------------------------------------------------------------


class SavedResponse(NamedTuple):
    endpoint: str  # "POST /v1/payment_intents"
    fingerprint: str  # of the request's parameters
    status: int
    body: bytes  # zlib-compressed
    created: float  # time.time()


Scope = tuple[str, str]  # (API key, idempotency key)


class IdempotencyKeys:
    """The saved responses by (API key, idempotency key), oldest first, and the keys whose
    first request is still in progress."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.saved: dict[Scope, SavedResponse] = {}
        self.in_flight: set[Scope] = set()

    def get(self, scope: Scope) -> SavedResponse | None:
        saved = self.saved.get(scope)
        if saved is not None and self._expired(saved):
            del self.saved[scope]
            return None
        return saved

    def put(self, scope: Scope, saved: SavedResponse) -> None:
        self.saved.pop(scope, None)  # re-inserted last, keeping the oldest first
        self.saved[scope] = saved
        _changes.dirty = True

    def prune(self) -> None:
        expired = []
        for scope, saved in self.saved.items():
            if not self._expired(saved):
                break
            expired.append(scope)
        for scope in expired:
            del self.saved[scope]

    def clear(self) -> None:
        self.saved.clear()

    def export(self) -> dict[Scope, tuple[Any, ...]]:
        """As plain tuples: a pickle of them does not depend on this module's name."""
        return {scope: tuple(saved) for scope, saved in self.saved.items()}

    def restore(self, exported: dict[Scope, tuple[Any, ...]]) -> None:
        saved = (SavedResponse(*fields) for fields in exported.values())
        pairs = sorted(zip(exported, saved, strict=True), key=lambda pair: pair[1].created)
        self.saved = dict(pairs)

    def _expired(self, saved: SavedResponse) -> bool:
        return self.clock() - saved.created >= KEY_LIFETIME


def idempotency_middleware(keys: IdempotencyKeys) -> Middleware:
    """Runs outside localstripe's authentication, so that a retry arriving while the first
    request's body is still being received finds that key in flight."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        key = request.headers.get("Idempotency-Key")
        if request.method != "POST" or key is None or not request.path.startswith("/v1/"):
            return await handler(request)
        if not 0 < len(key) <= 255:
            message = "Idempotency keys must be 1 to 255 characters long."
            return _error(400, "invalid_request_error", message)
        scope = (_api_key(request), key)
        if scope in keys.in_flight:
            return _error(
                409,
                "idempotency_error",
                "There is currently another in-progress request using this idempotent key "
                "(that probably means you submitted twice, and the other request is still "
                f"going through): {key}. Please try again later.",
                code="idempotency_key_in_use",
            )
        keys.in_flight.add(scope)
        try:
            endpoint = f"POST {request.path}"
            fingerprint = await _fingerprint(request)
            saved = keys.get(scope)
            if saved is not None:
                return _replay(saved, endpoint, fingerprint, key)
            writes = _changes.writes
            response = await _respond(request, handler)
            # localstripe validates before it changes anything: an error that changed
            # nothing is a validation failure, which Stripe does not save either.
            executed = response.status < 400 or _changes.writes != writes
            if executed and isinstance(response, web.Response):
                body = response.body
                if isinstance(body, bytes):
                    saved = SavedResponse(
                        endpoint, fingerprint, response.status, zlib.compress(body, 1), keys.clock()
                    )
                    keys.put(scope, saved)
            return response
        finally:
            keys.in_flight.discard(scope)

    return middleware


def _api_key(request: web.Request) -> str:
    try:
        return str(server.get_api_key(request) or "")
    except (NameError, ValueError):  # localstripe's reading of a malformed Authorization
        return ""


async def _fingerprint(request: web.Request) -> str:
    try:
        params = await server.get_post_data(request) or {}
        text = json.dumps(params, sort_keys=True, default=str)
    except ValueError:  # not JSON, not a form: compare the bytes
        return hashlib.sha256(await request.read()).hexdigest()
    return hashlib.sha256(text.encode()).hexdigest()


def _replay(saved: SavedResponse, endpoint: str, fingerprint: str, key: str) -> web.Response:
    if saved.endpoint != endpoint:
        return _error(
            400,
            "idempotency_error",
            "Keys for idempotent requests can only be used for the same endpoint they were "
            f"first used for ('{saved.endpoint}' vs '{endpoint}'). Try using a key other "
            f"than '{key}' if you meant to execute a different request.",
        )
    if saved.fingerprint != fingerprint:
        return _error(
            400,
            "idempotency_error",
            "Keys for idempotent requests can only be used with the same parameters they "
            f"were first used with. Try using a key other than '{key}' if you meant to "
            "execute a different request.",
        )
    return web.Response(
        status=saved.status,
        body=zlib.decompress(saved.body),
        content_type="application/json",
        charset="utf-8",
        headers={"Idempotent-Replayed": "true"},
    )


async def _respond(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The handler's response, with errors as responses (so that they can be saved)."""
    try:
        return await handler(request)
    except UserError as error:
        response: web.StreamResponse = error.to_response()
        return response
    except web.HTTPException:
        raise  # no such route or method: nothing ran
    except Exception:
        log.exception("POST %s failed", request.path)
        return _error(500, "api_error", "An unknown error occurred.")


def _error(status: int, kind: str, message: str, **detail: Any) -> web.Response:
    response: web.Response = server.json_response(
        {"error": {"type": kind, "message": message, **detail}}, status=status
    )
    return response


# --- 2. Test payment methods and declines ------------------------------------------------


class Decline(NamedTuple):
    code: str
    decline_code: str
    message: str
    param: str | None = None


_GENERIC = Decline("card_declined", "generic_decline", "Your card was declined.")
_INSUFFICIENT = Decline("card_declined", "insufficient_funds", "Your card has insufficient funds.")

DECLINES: dict[str, Decline] = {
    "4000000000000002": _GENERIC,
    "4000000000009995": _INSUFFICIENT,
    "4000000000009987": Decline("card_declined", "lost_card", "Your card was declined."),
    "4000000000009979": Decline("card_declined", "stolen_card", "Your card was declined."),
    "4000000000000069": Decline(
        "expired_card", "expired_card", "Your card has expired.", "exp_month"
    ),
    "4000000000000127": Decline(
        "incorrect_cvc", "incorrect_cvc", "Your card's security code is incorrect.", "cvc"
    ),
    "4000000000000119": Decline(
        "processing_error",
        "processing_error",
        "An error occurred while processing your card. Try again in a little bit.",
    ),
    "4000000000000341": _GENERIC,  # attaches to a customer, then every charge fails
    "4000008260003178": _INSUFFICIENT,  # after 3-D Secure
    "4000008400001629": _GENERIC,  # after 3-D Secure
}
"""Cards declined when charged, by number, with Stripe's error."""

TEST_PAYMENT_METHODS: dict[str, str] = {
    "pm_card_visa": "4242424242424242",
    "pm_card_visa_chargeDeclined": "4000000000000002",
    "pm_card_chargeDeclined": "4000000000000002",
    "pm_card_visa_chargeDeclinedInsufficientFunds": "4000000000009995",
    "pm_card_chargeDeclinedInsufficientFunds": "4000000000009995",
    "pm_card_visa_chargeDeclinedLostCard": "4000000000009987",
    "pm_card_chargeDeclinedLostCard": "4000000000009987",
    "pm_card_visa_chargeDeclinedStolenCard": "4000000000009979",
    "pm_card_chargeDeclinedStolenCard": "4000000000009979",
    "pm_card_chargeDeclinedExpiredCard": "4000000000000069",
    "pm_card_chargeDeclinedIncorrectCvc": "4000000000000127",
    "pm_card_chargeDeclinedProcessingError": "4000000000000119",
    "pm_card_chargeCustomerFail": "4000000000000341",
    # 3-D Secure: the intent waits in requires_action for the customer.
    "pm_card_authenticationRequired": "4000002760003184",
    "pm_card_authenticationRequiredOnSetup": "4000002500003155",
    "pm_card_threeDSecure2Required": "4000000000003220",
    "pm_card_threeDSecureRequired": "4000000000003063",
    "pm_card_authenticationRequiredChargeDeclinedInsufficientFunds": "4000008260003178",
}
"""Stripe's test PaymentMethod ids and the card each stands for."""


def _decline_of(source: Any) -> Decline | None:
    if getattr(source, "type", None) != "card":
        return None
    return DECLINES.get(getattr(source, "_card_number", ""))


def _test_payment_method(cls: Any, id: str) -> Any:
    number = TEST_PAYMENT_METHODS.get(id)
    if number is None:
        return None
    card = {"number": number, "exp_month": "12", "exp_year": "2034", "cvc": "123"}
    return PaymentMethod(type="card", card=card)


def _card_error(decline: Decline, **detail: Any) -> UserError:
    """Stripe's 402: a card_error with its code, decline code and the objects involved."""
    contents = {
        "code": decline.code,
        "decline_code": decline.decline_code,
        "doc_url": f"https://stripe.com/docs/error-codes/{decline.code.replace('_', '-')}",
        **detail,
    }
    if decline.param:
        contents["param"] = decline.param
    error = UserError(402, decline.message, contents)
    error.body["error"]["type"] = "card_error"
    return error


def _charge_decline(charge: Any) -> Decline:
    code = getattr(charge, "_decline_code", None) or "generic_decline"
    param = getattr(charge, "_failure_param", None)
    return Decline(charge.failure_code, code, charge.failure_message, param)


def _exported_payment_method(id: str) -> Any:
    try:
        return PaymentMethod._api_retrieve(id)._export()
    except UserError:  # deleted since
        return None


def _patch_declines() -> None:
    charging_was_declined = PaymentMethod._charging_is_declined
    set_auth_failure = Charge._set_auth_failure
    last_payment_error = PaymentIntent.last_payment_error.fget
    payment_intent_init = PaymentIntent.__init__

    def charging_is_declined(self: Any) -> bool:
        return _decline_of(self) is not None or bool(charging_was_declined(self))

    def set_charge_failure(self: Any) -> None:
        set_auth_failure(self)
        decline = _decline_of(PaymentMethod._api_retrieve(self.payment_method))
        self._decline_code = decline.decline_code if decline else None
        self._failure_param = decline.param if decline else None
        if decline is not None:
            self.failure_code, self.failure_message = decline.code, decline.message

    def raise_failure(self: Any) -> None:
        detail: dict[str, Any] = {"charge": self.id}
        if self.payment_intent:
            detail["payment_intent"] = PaymentIntent._api_retrieve(self.payment_intent)._export()
        detail["payment_method"] = _exported_payment_method(self.payment_method)
        raise _card_error(_charge_decline(self), **detail)

    def payment_error(self: Any) -> dict[str, Any] | None:
        error: dict[str, Any] | None = last_payment_error(self)
        if error is None:
            return None
        if self._authentication_failed:
            return {**error, "type": "invalid_request_error"}
        charge = self.latest_charge
        error = {**error, "type": "card_error"}
        if getattr(charge, "_decline_code", None):
            error["decline_code"] = charge._decline_code
        if getattr(charge, "_failure_param", None):
            error["param"] = charge._failure_param
        error["payment_method"] = _exported_payment_method(charge.payment_method)
        return error

    def init_payment_intent(self: Any, *args: Any, **kwargs: Any) -> None:
        payment_intent_init(self, *args, **kwargs)
        if self.payment_method in TEST_PAYMENT_METHODS:
            self.payment_method = PaymentMethod._api_retrieve(self.payment_method).id

    PaymentMethod._try_get_canonical_test_article = classmethod(_test_payment_method)
    PaymentMethod._charging_is_declined = charging_is_declined
    Charge._set_auth_failure = set_charge_failure
    Charge._raise_failure = raise_failure
    PaymentIntent.last_payment_error = property(payment_error)
    PaymentIntent.__init__ = init_payment_intent


def _cancel_payment_intent(id: str, cancellation_reason: str | None = None, **params: Any) -> Any:
    intent = PaymentIntent._api_cancel(id=id, **params)
    intent.cancellation_reason = cancellation_reason
    webhooks.schedule_webhook(Event("payment_intent.canceled", intent))
    return intent


def _authenticate_payment_intent(id: str, **params: Any) -> Any:
    intent = PaymentIntent._api_authenticate(id=id, **params)
    if intent._authentication_failed:
        webhooks.schedule_webhook(Event("payment_intent.payment_failed", intent))
    return intent


def _attach_payment_method(id: str, **params: Any) -> Any:
    try:
        return PaymentMethod._api_attach(id=id, **params)
    except UserError as error:
        if error.code != 402:
            raise
        method = PaymentMethod._api_retrieve(id)
        decline = _decline_of(method) or _GENERIC
        raise _card_error(decline, payment_method=method._export()) from None


# --- 3. Amounts received ------------------------------------------------------------------


def _patch_amounts() -> None:
    capture = Charge._capture
    export_payment_intent = PaymentIntent._export

    def amount_captured(self: Any) -> int:
        if not (self.captured and self.status == "succeeded"):
            return 0
        return int(getattr(self, "_amount_captured", self.amount))

    def capture_charge(self: Any, amount: Any, on_success: Any = None) -> None:
        earlier = getattr(self, "_amount_captured", None)
        self._amount_captured = try_convert_to_int(self.amount if amount is None else amount)
        try:
            capture(self, amount, on_success)
        except BaseException:
            self._amount_captured = earlier
            raise

    def amount_received(self: Any) -> int:
        charge = self.latest_charge
        return 0 if charge is None else int(charge.amount_captured)

    def export(self: Any, expand: Any = None) -> Any:
        exported = export_payment_intent(self, expand=expand)
        expanded = any(str(path).split(".")[0] == "latest_charge" for path in expand or ())
        if self.latest_charge is not None and not expanded:
            exported["latest_charge"] = self.latest_charge.id
        return exported

    Charge.amount_captured = property(amount_captured)
    Charge._capture = capture_charge
    PaymentIntent.amount_received = property(amount_received)
    PaymentIntent._export = export


# --- 4. Refunds -------------------------------------------------------------------------------


def _patch_refunds() -> None:
    create_refund = Refund._api_create
    init_refund = Refund.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        init_refund(self, *args, **kwargs)
        charge = Charge._api_retrieve(self.charge)
        charge._refunds = [*getattr(charge, "_refunds", ()), self]

    def refunds(self: Any) -> Any:
        """The charge's refunds, newest first, as localstripe lists them (but without
        going through every object in the store, for each of a charge's three properties
        that count its refunds, each time a charge or intent is exported)."""
        listed = List(f"/v1/charges/{self.id}/refunds")
        kept = (refund for refund in getattr(self, "_refunds", ()) if _stored(refund))
        listed._list = sorted(kept, key=lambda refund: refund.date, reverse=True)
        return listed

    def create(
        cls: Any, /, charge: Any = None, payment_intent: Any = None, amount: Any = None, **data: Any
    ) -> Any:
        target = _refunded_charge(charge, payment_intent)
        amount = try_convert_to_int(amount)
        if target is not None:
            left = target.amount - target.amount_refunded
            if left <= 0:
                raise UserError(
                    400,
                    f"Charge {target.id} has already been refunded.",
                    {"code": "charge_already_refunded"},
                )
            if amount is None:
                amount = left
            elif isinstance(amount, int) and amount > left:
                what = "charge amount" if left == target.amount else "unrefunded amount on charge"
                raise UserError(
                    400,
                    f"Refund amount ({_money(amount, target.currency)}) is greater than "
                    f"{what} ({_money(left, target.currency)})",
                    {"param": "amount"},
                )
        refund = create_refund(charge=charge, payment_intent=payment_intent, amount=amount, **data)
        webhooks.schedule_webhook(Event("charge.refunded", Charge._api_retrieve(refund.charge)))
        return refund

    Refund.__init__ = init
    Refund._api_create = classmethod(create)
    Charge.refunds = property(refunds)


def _stored(thing: Any) -> bool:
    return store.get(f"{thing.object}:{thing.id}") is thing


def _refunded_charge(charge: Any, payment_intent: Any) -> Any:
    """The charge a refund would be taken from, or None when localstripe's own checks
    should answer (malformed ids, a failed payment)."""
    if isinstance(charge, str) and charge.startswith("ch_") and payment_intent is None:
        found = Charge._api_retrieve(charge)
    elif charge is None and isinstance(payment_intent, str) and payment_intent.startswith("pi_"):
        found = PaymentIntent._api_retrieve(payment_intent).latest_charge
        if found is None:
            raise UserError(
                400,
                f"This PaymentIntent ({payment_intent}) does not have a successful charge "
                "to refund.",
            )
    else:
        return None
    return found if found.status == "succeeded" else None


def _money(amount: int, currency: str) -> str:
    return f"{amount / 100:.2f} {currency.upper()}"


# --- 5. State ---------------------------------------------------------------------------------


def _patch_store() -> None:
    def set_item(self: Any, key: str, value: Any) -> None:
        dict.__setitem__(self, key, value)
        _changes.writes += 1
        _changes.dirty = True

    def del_item(self: Any, key: str) -> None:
        dict.__delitem__(self, key)
        _changes.writes += 1
        _changes.dirty = True

    def objects_changed(self: Any) -> None:  # localstripe calls it after each POST and DELETE
        _changes.dirty = True

    resources.Store.__setitem__ = set_item
    resources.Store.__delitem__ = del_item
    resources.Store.dump_to_disk = objects_changed


class StateFile:
    """The store, the idempotency keys and the registered webhooks, as one pickle."""

    def __init__(self, path: Path, keys: IdempotencyKeys) -> None:
        self.path = path
        self.keys = keys

    def load(self) -> None:
        try:
            saved = pickle.loads(self.path.read_bytes())
        except FileNotFoundError:
            return
        dict.clear(store)
        dict.update(store, saved["store"])
        webhooks._webhooks.clear()
        webhooks._webhooks.update(saved["webhooks"])
        self.keys.restore(saved["idempotency"])

    def snapshot(self) -> bytes:
        state = {
            "store": dict(store),
            "webhooks": dict(webhooks._webhooks),
            "idempotency": self.keys.export(),
        }
        return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)

    def save(self) -> None:
        _changes.dirty = False
        write_atomically(self.path, self.snapshot())

    async def save_while_changing(self, interval: float = SAVE_INTERVAL) -> None:
        """Write the state when it changed, at most once per ``interval``, and at most a
        tenth of the time (a large store takes a while to pickle, blocking requests)."""
        pause = interval
        while True:
            await asyncio.sleep(pause)
            self.keys.prune()
            if not _changes.dirty:
                continue
            began = time.monotonic()
            _changes.dirty = False
            data = self.snapshot()  # here: requests change the objects in this thread
            try:
                await asyncio.to_thread(write_atomically, self.path, data)
            except OSError:
                log.exception("could not write the state to %s", self.path)
                _changes.dirty = True
            pause = max(interval, 9 * (time.monotonic() - began))

    async def kept(self, app: web.Application) -> AsyncIterator[None]:
        """aiohttp cleanup context: saving in the background while serving, and last."""
        task = asyncio.create_task(self.save_while_changing())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        self.save()
        log.info("state written to %s", self.path)


def write_atomically(path: Path, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


# --- The application ------------------------------------------------------------------------


def install() -> None:
    """Apply the changes above to localstripe's classes (once per process)."""
    _patch_store()
    _patch_declines()
    _patch_amounts()
    _patch_refunds()


def build_app(keys: IdempotencyKeys) -> web.Application:
    """localstripe's routes, in its order, with a few handlers replaced, behind its
    middlewares and the idempotency layer."""

    async def flush_data(request: web.Request) -> web.Response:
        store.clear()
        keys.clear()
        return web.Response()

    api_overrides: dict[tuple[str, str], Callable[..., Any]] = {
        ("POST", "/v1/payment_intents/{id}/cancel"): _cancel_payment_intent,
        ("POST", "/v1/payment_intents/{id}/_authenticate"): _authenticate_payment_intent,
        ("POST", "/v1/payment_methods/{id}/attach"): _attach_payment_method,
    }
    app = web.Application(
        middlewares=[
            server.error_middleware,
            idempotency_middleware(keys),
            server.auth_middleware,
            server.save_store_middleware,
        ]
    )
    app.on_response_prepare.append(server.add_cors_headers)
    for route in server.app.router.routes():
        assert route.resource is not None
        method, path = route.method, route.resource.canonical
        handler: Handler = route.handler
        if (method, path) in api_overrides:
            handler = server.api_extra(api_overrides[method, path], path)
        elif (method, path) == ("DELETE", "/_config/data"):
            handler = flush_data
        app.router.add_route(method, path, handler)
    return app


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m localdev.stripe_server", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state", type=Path, required=True, help="the state file (a pickle)")
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    install()
    keys = IdempotencyKeys()
    state = StateFile(args.state.resolve(), keys)
    state.load()
    app = build_app(keys)
    app.cleanup_ctx.append(state.kept)
    web.run_app(
        app,
        host=args.host,
        port=args.port,
        shutdown_timeout=5,
        print=log.info,
        access_log=logging.getLogger("aiohttp.access"),
    )


if __name__ == "__main__":
    main()
