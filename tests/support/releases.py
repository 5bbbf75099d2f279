"""Another release of the shop beside the one under test, as in a rolling deploy."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from config.bootstrap import Application, bootstrap
from config.settings import Settings


@contextmanager
def release(settings: Settings, **versions: int) -> Iterator[Application]:
    """A process of another release: the shop wired afresh (its own database pool and Redis
    clients), with the named read models at the versions its code declares."""
    application = bootstrap(settings)
    for name, version in versions.items():
        application.read_side.projection(name).version = version
    try:
        yield application
    finally:
        application.close()
