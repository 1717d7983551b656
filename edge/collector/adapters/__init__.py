"""Adapters: one per way of talking to miners. ``build_adapter(name, ...)`` makes one; pyasic is loaded only
when a miner uses it."""

from __future__ import annotations

from edge.collector.adapters.base import COMMANDS, Adapter, AdapterError, UnsupportedCommand

__all__ = ["COMMANDS", "Adapter", "AdapterError", "UnsupportedCommand", "build_adapter"]


def build_adapter(name: str, *, timeout: float, overheat_c: float) -> Adapter:
    if name == "cgminer":
        from edge.collector.adapters.cgminer import CGMinerAdapter

        return CGMinerAdapter(timeout=timeout, overheat_c=overheat_c)
    if name == "pyasic":
        from edge.collector.adapters.pyasic import PyasicAdapter

        return PyasicAdapter(timeout=timeout, overheat_c=overheat_c)
    raise ValueError(f"unknown adapter {name!r}")
