from kernel.command_bus import CommandBus


def register(bus: CommandBus) -> None:
    """Register this context's command handlers."""
