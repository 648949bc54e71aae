"""No module of optlab imports another in a circle: the import graph, read from the source with ``ast`` (module-level
and function-level imports alike, so a cycle hidden inside a function still counts), has no strongly connected
component with more than one module and no self-import."""
import ast
from pathlib import Path

import optlab

ROOT = Path(optlab.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            # a module, or the package that holds a name (``from . import x`` imports module x when it is one)
            while target and target not in modules:
                target = target.rsplit(".", 1)[0] if "." in target else ""
            if target and target != name and not name.startswith(target + "."):
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    files = sorted(ROOT.rglob("*.py"))
    modules = {module_name(p) for p in files}
    return {module_name(p): imports_of(p, modules) for p in files}


def strongly_connected(g: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm; components of size > 1 are import circles."""
    index, low, stack, on_stack, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(sorted(comp))

    for v in g:
        if v not in index:
            visit(v)
    return out


def test_the_graph_reader_finds_a_planted_circle():
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert [c for c in strongly_connected(g) if len(c) > 1] == [["a", "b", "c"]]


def test_the_graph_sees_relative_and_function_level_imports():
    g = graph()
    assert "optlab.harness" in g["optlab.solvers.baselines.proxgrad"]   # `from ... import harness`
    assert "optlab.algorithm" in g["optlab.parallel"]                   # `from .algorithm import ...`


def test_no_import_circle_in_optlab():
    g = graph()
    circles = [c for c in strongly_connected(g) if len(c) > 1]
    assert circles == [], "import circles: " + "; ".join(" <-> ".join(c) for c in circles)
