"""Event handlers, registered per event type. A handler receives the typed payload and the event.

Handlers must be idempotent by event id or by a natural key: the processor records a receipt in the
handler's own transaction, so a redelivered event never applies the same handler twice."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

_HANDLERS: dict[str, list[tuple[str, Callable]]] = defaultdict(list)


def handles(*event_types: str):
    def register(fn: Callable) -> Callable:
        name = f"{fn.__module__}.{fn.__qualname__}"
        for event_type in event_types:
            if all(existing != name for existing, _ in _HANDLERS[event_type]):
                _HANDLERS[event_type].append((name, fn))
        return fn

    return register


def handlers_for(event_type: str) -> list[tuple[str, Callable]]:
    return list(_HANDLERS.get(event_type, ()))
