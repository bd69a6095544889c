"""The layout's rules (../shared/STYLE.md): a pure core, one composition root, no import circles."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IO_LIBRARIES = {"kafka", "aiokafka", "faust", "mode", "fastavro", "prometheus_client", "aiohttp", "rocksdict"}


def modules() -> dict[str, Path]:
    out = {}
    for package in ("streams", "alerts"):
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


#: what the core may import of streams: itself, and plain data and types
PURE_OR_DATA = ("streams.core", "streams.dashboard", "streams.reference", "streams.model", "streams.errors")


def test_the_core_imports_no_io_library() -> None:
    for name, path in modules().items():
        if name.startswith(("streams.core", "streams.dashboard", "alerts")):
            bad = {i for i in imports(path) if i.split(".")[0] in IO_LIBRARIES}
            assert not bad, f"{name} imports {bad}"
            assert not {
                i for i in imports(path) if i.startswith("streams.") and not i.startswith(PURE_OR_DATA)
            }, f"{name} reaches into the shell"
        if name.startswith("alerts"):
            assert not {i for i in imports(path) if i.startswith("streams")}, f"{name} imports streams"


def test_only_the_entry_point_imports_the_composition_root() -> None:
    for name, path in modules().items():
        if name != "streams.cli":
            assert "streams.app" not in imports(path), f"{name} imports streams.app"


def test_no_import_circles() -> None:
    mods = modules()
    graph = {name: {i for i in imports(path) if i in mods and i != name} for name, path in mods.items()}
    for name in graph:  # a package depends on its own modules only through what it re-exports
        graph[name] -= {m for m in graph[name] if name.startswith(m + ".")}
    visiting: list[str] = []
    done: set[str] = set()

    def visit(n: str) -> None:
        if n in done:
            return
        assert n not in visiting, "import circle: " + " -> ".join([*visiting[visiting.index(n) :], n])
        visiting.append(n)
        for m in sorted(graph[n]):
            visit(m)
        visiting.pop()
        done.add(n)

    for n in sorted(graph):
        visit(n)


def test_every_error_roots_at_its_packages_base_and_is_drawn() -> None:
    """An error class defined anywhere in the package derives from ``StreamError`` (or, in the
    alerts package, ``AlertError``) and is named in its package's drawing of errors."""
    import importlib

    import alerts.errors
    import streams.errors

    roots = {"streams": streams.errors.StreamError, "alerts": alerts.errors.AlertError}
    drawings = {"streams": streams.errors.__doc__ or "", "alerts": alerts.errors.__doc__ or ""}
    found = []
    for name in modules():
        module = importlib.import_module(name)
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, BaseException) and obj.__module__ == name:
                package = name.split(".")[0]
                found.append(obj.__name__)
                assert issubclass(
                    obj, roots[package]
                ), f"{name}.{obj.__name__} is not a {roots[package].__name__}"
                assert obj.__name__ in drawings[package] or obj.__name__.startswith(
                    "_With"
                ), f"{name}.{obj.__name__} is not in {package}.errors' drawing"
    assert {"PeerError", "Fenced", "ProduceFailed", "OffsetWentBack", "InvariantError"} <= set(found)


def test_the_counting_loop_and_kafka_clients_stay_in_the_runtime() -> None:
    """Only the runtime and the composition root know ``CountingLoop``: the cluster, evaluator
    and pages read a ``WorkerState``. aiokafka is imported by the runtime, the client factory
    and the alert writer and log, and nowhere else."""
    kafka_users = {
        "streams.clients",  # makes the clients
        "streams.alerting.writer",  # its errors become Fenced and WriteAborted
        "streams.alerting.log",
    }
    for name, path in modules().items():
        if name.startswith("streams.runtime"):
            continue
        found = imports(path)
        if name != "streams.app":
            assert "streams.runtime.loop.CountingLoop" not in found, f"{name} imports CountingLoop"
        if name not in kafka_users:
            assert not {i for i in found if i.split(".")[0] == "aiokafka"}, f"{name} imports aiokafka"


def test_no_function_is_more_complex_than_15_without_saying_why() -> None:
    """Radon's cyclomatic complexity of every function in the package is at most 15, unless its
    docstring has a line starting ``complex:`` that says why (a hand-written codec, the
    per-record loop)."""
    from radon.complexity import cc_visit
    from radon.visitors import Function

    over = []
    for name, path in modules().items():
        for block in cc_visit(path.read_text()):
            items = [block, *getattr(block, "closures", [])]
            if hasattr(block, "methods"):
                items += block.methods
            for f in items:
                if not isinstance(f, Function) or f.complexity <= 15:
                    continue
                source = path.read_text().splitlines()[f.lineno - 1 : f.endline]
                if not any(line.strip().startswith("complex:") for line in source):
                    over.append(f"{name}.{f.fullname} ({f.complexity})")
    assert not over, over


def test_no_function_is_longer_than_60_lines_without_saying_why() -> None:
    """As for complexity: a function of more than 60 lines says why in a ``complex:`` line."""
    long = []
    for name, path in modules().items():
        text = path.read_text()
        lines = text.splitlines()
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            end = node.end_lineno or node.lineno
            if end - node.lineno + 1 > 60 and not any(
                line.strip().startswith("complex:") for line in lines[node.lineno - 1 : end]
            ):
                long.append(f"{name}.{node.name} ({end - node.lineno + 1} lines)")
    assert not long, long
