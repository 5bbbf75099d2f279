from kernel.command_bus import CommandBus
from orders.ports import ProductCatalog


def register(bus: CommandBus, catalog: ProductCatalog) -> None:
    """Register this context's command handlers."""
