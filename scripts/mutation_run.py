"""``mutmut`` with one rule widened: functions whose only decorator is ``@transaction.atomic`` are
mutated too.

mutmut 3 skips every decorated function, because copying a decorator for its trampoline may have
side effects (a route registered twice, say). ``transaction.atomic`` has none: the trampoline keeps
it, and the mutated copies run inside it as a savepoint, which behaves the same. Every service in the
project carries it, so without this the services would not be mutated at all. Pinned to the mutmut in
requirements-dev.txt; arguments are mutmut's own (``run --max-children 2``, ``results``, ``show …``).
"""

from __future__ import annotations

import sys

import libcst as cst
import libcst.matchers as m
from mutmut.mutation import file_mutation

ATOMIC = m.Attribute(value=m.Name("transaction"), attr=m.Name("atomic"))


def _only_atomic(node: cst.FunctionDef) -> bool:
    return bool(node.decorators) and all(m.matches(d.decorator, ATOMIC) for d in node.decorators)


_skip = file_mutation.MutationVisitor._skip_node_and_children


def _skip_unless_atomic(self, node):
    if isinstance(node, cst.FunctionDef) and _only_atomic(node):
        return _skip(self, node.with_changes(decorators=[]))
    return _skip(self, node)


file_mutation.MutationVisitor._skip_node_and_children = _skip_unless_atomic

if __name__ == "__main__":
    from mutmut.__main__ import cli

    sys.exit(cli())
