"""Event handlers, registered per event type.

A handler takes ``(payload, event)``; a batch handler (``batch=True``) takes a list of such pairs
and applies them together, which is how a burst of events costs a few queries instead of a few per
event. Handlers must be idempotent by event id or by a natural key: the processor records a receipt
in the handler's own transaction, so a redelivered event never applies the same handler twice."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Handler:
    name: str
    fn: Callable
    batch: bool


_HANDLERS: dict[str, list[Handler]] = defaultdict(list)


def handles(*event_types: str, batch: bool = False):
    def register(fn: Callable) -> Callable:
        name = f"{fn.__module__}.{fn.__qualname__}"
        for event_type in event_types:
            if all(h.name != name for h in _HANDLERS[event_type]):
                _HANDLERS[event_type].append(Handler(name, fn, batch))
        return fn

    return register


def handlers_for(event_type: str) -> list[Handler]:
    return list(_HANDLERS.get(event_type, ()))
