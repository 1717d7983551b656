"""Hooks the domain apps fill at start (their ``AppConfig.ready``), so the core asks them questions
without importing them: the core sits below every domain app and must stay importable on its own.

- ``site_manageable(user=, site_id=)``: may this user change a site and what stands in it? The sites
  app answers; with nobody registered the answer is no (fail closed).
- warmers: callables ``(limit) -> iterable of (cache builder name, key parts)``, most active first
  and at most ``limit`` of each kind of entry, that the periodic cache-warming job walks. The miners
  app registers its portfolios and sites.

Cache builders themselves register in ``hashinsight.core.cache`` (``register_builder``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

Warmer = Callable[[int], Iterable[tuple[str, dict]]]

_site_manageable: Callable[..., bool] | None = None
_WARMERS: dict[str, Warmer] = {}


def register_site_manageable(fn: Callable[..., bool]) -> Callable[..., bool]:
    global _site_manageable
    _site_manageable = fn
    return fn


def site_manageable(*, user, site_id: int) -> bool:
    if _site_manageable is None:
        return False
    return _site_manageable(user=user, site_id=site_id)


def register_warmer(name: str):
    """Register ``fn(limit)`` under ``name``; registering the same name again replaces it."""

    def decorator(fn: Warmer) -> Warmer:
        _WARMERS[name] = fn
        return fn

    return decorator


def warmers() -> dict[str, Warmer]:
    return dict(_WARMERS)
