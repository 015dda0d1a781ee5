"""The layers of DESIGN.md, checked on the source: what each package may import.

Read with ``ast`` (every import, also those inside functions), so a lazy import cannot hide a
dependency that the layout forbids.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "broadcaster"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> Iterator[str]:
    """Every module ``path`` imports, absolute, including ``from X import name`` as X.name."""
    package = (
        module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    )
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def sources(package: str) -> list[Path]:
    return sorted((ROOT / package.replace(".", "/")).rglob("*.py"))


def offenders(package: str, forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sources(package)
        for name in imports(path)
        if any(name == f or name.startswith(f"{f}.") for f in forbidden)
    ]


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        # Use cases talk to repositories and adapters through their functions and protocols.
        ("broadcaster.services", ("sqlalchemy", "aiohttp")),
        # The API enqueues through the wiring's task queue, never by importing Celery's tasks.
        ("broadcaster.api", ("workers", "celery")),
        # The domain is pure: no storage, no network, no framework, no other layer.
        (
            "broadcaster.domain",
            (
                "sqlalchemy",
                "aiohttp",
                "celery",
                "redis",
                "workers",
                "broadcaster.services",
                "broadcaster.store",
                "broadcaster.api",
                "broadcaster.cli",
                "broadcaster.providers",
            ),
        ),
    ],
)
def test_a_layer_imports_nothing_it_must_not(package: str, forbidden: tuple[str, ...]) -> None:
    assert offenders(package, forbidden) == []


def test_the_domain_uses_only_the_standard_library_and_phonenumbers() -> None:
    allowed = ("broadcaster.domain", "broadcaster.errors", "broadcaster.constants", "phonenumbers")
    outside = sorted(
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sources("broadcaster.domain")
        for name in imports(path)
        if name.split(".")[0] not in sys.stdlib_module_names
        and not name.startswith(allowed)
        and name != "broadcaster"
    )
    assert outside == []


def test_the_offender_finder_sees_a_lazy_import() -> None:
    """The checks above would pass vacuously if ``imports`` missed imports inside functions."""
    found = list(imports(PACKAGE / "wiring.py"))
    assert "workers.tasks" in found  # wiring.py imports it inside a function


def import_graph() -> dict[str, set[str]]:
    """broadcaster's modules and the broadcaster modules each imports (lazy imports too)."""
    modules = {module_name(path): path for path in sources("broadcaster")}
    return {
        name: {found for found in imports(path) if found in modules and found != name}
        for name, path in modules.items()
    }


def cycle_through(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as the chain of modules, or None (depth first, colouring)."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_module_imports_itself_back() -> None:
    """A cycle, even through an import inside a function, is two modules that are one."""
    assert cycle_through(import_graph()) is None


def test_the_cycle_finder_finds_one() -> None:
    assert cycle_through({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
