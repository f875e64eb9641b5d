"""The package's layers import one way, and no modules import each other in a cycle.

Read with `ast` from the source files (function-local imports count: hiding an import in a
function hides a cycle, it does not remove it). The order, bottom to top:

    leaves    errors, target, cache (with its remote tier), once, version, paths, and ir/dtypes.py
              (the dtype table, which imports only errors): anyone may import them
    ir        the graph, op table, tracer, passes
    fuse      groups and the partition
    schedule  configs, defaults for every target, spaces, layout, GPU rules, thread count
    codegen   render only
    backends  the Backend protocol and one package per language: build, launch, runners
    runtime   compiler, runtime/ (hardware, aliases, specialisation), intake
    faces     kernel, tune/, explain, embed, aot, cli, __init__, __main__

An import from a layer to one above it, or an import that closes a cycle, fails here
naming the file and line. (Issue 16 emptied the list of 58 such imports this test was
written with; there are no exceptions.)
"""
from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "torsh_jit"

LAYERS = ["leaves", "ir", "fuse", "schedule", "codegen", "backends", "runtime", "faces"]
_LEAVES = {"errors", "target", "cache", "once", "version", "paths"}
_LEAF_MODULES = {"torsh_jit.ir.dtypes"}
_RUNTIME = {"compiler", "intake", "runtime"}
_FACES = {"kernel", "tune", "explain", "embed", "aot", "cli", "__init__", "__main__"}


def layer(module: str) -> int:
    parts = module.split(".")[1:] or ["__init__"]
    head = parts[0]
    if head in _LEAVES or module in _LEAF_MODULES:
        return 0
    if head in _RUNTIME:
        return LAYERS.index("runtime")
    if head in _FACES:
        return LAYERS.index("faces")
    return LAYERS.index(head)


def modules() -> dict[str, Path]:
    out = {}
    for p in sorted(PKG.rglob("*.py")):
        rel = p.relative_to(PKG.parent).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        out[".".join(parts)] = p
    return out


def imports(mods: dict[str, Path]):
    """(importer, imported, line) for every import of a package module, anywhere in a file."""
    for name, path in mods.items():
        is_pkg = path.name == "__init__.py"
        base = name.split(".") if is_pkg else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    root = ".".join(base[:len(base) - node.level + 1])
                    mod = f"{root}.{node.module}" if node.module else root
                else:
                    mod = node.module or ""
                targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in mods else mod for a in node.names]
            else:
                continue
            for t in targets:
                while t and t not in mods:      # `import torsh_jit.x.y` names x.y; a name in x
                    t = t.rpartition(".")[0]
                if t and t != name and t.startswith("torsh_jit"):
                    yield name, t, node.lineno


def cycles(edges) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set())
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    for v in sorted(graph):          # ~100 modules: recursion is deep enough
        if v not in index:
            visit(v)
    return out


def bad_edges() -> dict[tuple[str, str], list[str]]:
    """(importer, imported) -> ["file:line why", ...] for each import against the order or
    inside a cycle. The package's __init__ re-exports everything and is left out of cycles
    (importing a subpackage runs it: that is Python's, not ours)."""
    mods = modules()
    found = list(imports(mods))
    edges = {(a, b) for a, b, _ in found if a != "torsh_jit" and b != "torsh_jit"}
    in_cycle = set()
    for comp in cycles(edges):
        in_cycle |= {(a, b) for a, b in edges if a in comp and b in comp}
    out: dict[tuple[str, str], list[str]] = {}
    for a, b, line in found:
        why = []
        if layer(b) > layer(a):
            why.append(f"{LAYERS[layer(a)]} imports {LAYERS[layer(b)]}")
        if (a, b) in in_cycle:
            why.append("closes a cycle")
        if why:
            rel = mods[a].relative_to(PKG.parent)
            out.setdefault((a, b), []).append(f"{rel}:{line} imports {b} ({', '.join(why)})")
    return out


def test_no_import_goes_against_the_layers_or_closes_a_cycle():
    bad = sorted(w for where in bad_edges().values() for w in where)
    assert not bad, "imports against the layer order or in a cycle:\n  " + "\n  ".join(bad)


def test_the_reader_sees_function_local_imports_and_cycles():
    """The analysis itself, on a made-up pair: a cycle through a function-local import."""
    assert cycles({("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")}) == [{"a", "b", "c"}]
    mods = modules()
    found = {(a, b) for a, b, _ in imports(mods)}
    # kernel imports the compiler at module level; compiler.py imports nothing above itself
    assert ("torsh_jit.kernel", "torsh_jit.compiler") in found
    assert layer("torsh_jit.codegen.llvm") > layer("torsh_jit.schedule.space") > layer("torsh_jit.ir.graph")


def test_target_is_a_pure_table_and_the_runtime_resolves_aliases():
    """Parsing a name pulls in nothing of the stack (every module target.py reaches by its
    imports, function-local ones included, is a leaf);
    `host` and `cuda` mean this machine's targets only through the runtime (tj.parse_target)."""
    found = {}
    for a, b, _ in imports(modules()):
        found.setdefault(a, set()).add(b)
    reach, todo = set(), ["torsh_jit.target"]
    while todo:
        for b in found.get(todo.pop(), ()):
            if b not in reach and b != "torsh_jit":
                reach.add(b)
                todo.append(b)
    assert all(layer(m) == 0 for m in reach), sorted(reach)
    assert reach, "the reader found no import of target.py (errors, once)"
    import pytest

    import torsh_jit as tj
    from torsh_jit import errors as E
    from torsh_jit.runtime.hardware import host_target
    from torsh_jit.target import parse
    with pytest.raises(E.TargetError, match="alias") as e:
        parse("host")
    assert "parse_target" in e.value.hint
    assert tj.parse_target(" host ") == host_target() and parse(host_target().name) == host_target()
