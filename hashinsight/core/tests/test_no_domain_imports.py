"""The core sits below the domain apps: it asks them through hooks they register at start
(``hashinsight.core.registry``, ``register_builder``), and never imports them. Tests are exempt:
they exercise the hooks with the real apps installed."""

from __future__ import annotations

import ast
from pathlib import Path

import hashinsight.core

DOMAIN_APPS = {"sites", "miners", "telemetry", "commands", "intelligence", "edge"}
CORE = Path(hashinsight.core.__file__).parent


def _imported_modules(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
        elif isinstance(node, ast.Call) and _is_dynamic_import(node):
            yield node.lineno, node.args[0].value


def _is_dynamic_import(node: ast.Call) -> bool:
    name = getattr(node.func, "attr", getattr(node.func, "id", ""))
    first = node.args[0] if node.args else None
    return name in ("import_module", "__import__") and isinstance(first, ast.Constant) and isinstance(first.value, str)


def core_modules() -> list[Path]:
    return [p for p in sorted(CORE.rglob("*.py")) if "tests" not in p.relative_to(CORE).parts]


def test_core_imports_no_domain_app():
    offences = []
    for path in core_modules():
        for lineno, module in _imported_modules(ast.parse(path.read_text(), filename=str(path))):
            if module.split(".")[0] in DOMAIN_APPS:
                offences.append(f"{path.relative_to(CORE.parent.parent)}:{lineno} imports {module}")
    assert offences == []


def test_the_walk_sees_every_kind_of_import():
    # The check above is only as good as this walk: it must catch the lazy in-function imports that
    # the old admin mixin and cache warming used.
    source = "import miners\nfrom sites.selectors import x\ndef f():\n    from telemetry import groups\n"
    source += "importlib.import_module('commands.models')\n"
    found = [m for _, m in _imported_modules(ast.parse(source))]
    assert found == ["miners", "sites.selectors", "telemetry", "commands.models"]
    assert len(core_modules()) > 5
