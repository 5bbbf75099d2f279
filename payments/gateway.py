"""The payment gateway port (filled in by the write-side work)."""

from typing import Protocol


class PaymentGateway(Protocol):
    """Charges and refunds payments at a provider."""


class SimulatedGateway:
    """Placeholder until the simulated gateway lands."""
