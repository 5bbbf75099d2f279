from kernel.command_bus import CommandBus
from payments.gateway import PaymentGateway


def register(bus: CommandBus, gateway: PaymentGateway) -> None:
    """Register this context's command handlers."""
