"""The library's layers: no import cycle in the product, each layer imports only the layers below
it, the torch-free toolkit never loads torch, and no folder grows past 12 modules."""
import ast
import os
import subprocess
import sys

from tests.helpers import REPO

PRODUCT = ("torch_utils_lib", "dataset", "mask_rcnn", "diffusion_model", "genisp", "enhancer",
           "study", "bench")
LIB = "torch_utils_lib"
# what each part of torch_utils_lib may import: the layers below it (torch_utils_lib/__init__.py)
ALLOWED = {
    "toolkit": {"toolkit", "runtime.devices"},  # cli resolves the default --device after parsing
    "runtime": {"toolkit", "runtime"},
    "data": {"toolkit", "runtime", "data", "evaluation.metrics"},
    "evaluation": {"toolkit", "runtime", "data", "evaluation"},
    "models": {"toolkit", "runtime", "data", "evaluation", "models"},
    "engine": {"toolkit", "runtime", "data", "evaluation", "models", "engine", "plots"},
    "plots": {"toolkit", "plots"},
}


def product_modules():
    """{dotted module name: path} of every product module (package __init__ as the package)."""
    modules = {}
    for top in PRODUCT:
        for folder, dirs, files in os.walk(os.path.join(REPO, top)):
            dirs[:] = [d for d in dirs if not d.startswith((".", "__"))]
            for f in files:
                if f.endswith(".py"):
                    rel = os.path.relpath(os.path.join(folder, f), REPO)[:-3].replace(os.sep, ".")
                    modules[rel[:-len(".__init__")] if rel.endswith(".__init__") else rel] = \
                        os.path.join(folder, f)
    return modules


def import_graph():
    """{module: set of product modules it imports}, at the top and inside functions alike."""
    modules = product_modules()

    def resolve(name):
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for module, path in modules.items():
        edges = set()
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                edges.update(resolve(a.name) for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                edges.update(resolve(f"{node.module}.{a.name}") or resolve(node.module)
                             for a in node.names)
        edges.discard(None)
        edges.discard(module)
        graph[module] = edges
    return graph


def cycles(graph):
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_in_the_product():
    assert cycles(import_graph()) == []


def test_each_layer_imports_only_the_layers_below_it():
    wrong = []
    for module, edges in import_graph().items():
        parts = module.split(".")
        if parts[0] != LIB or len(parts) < 3:
            continue
        allowed = ALLOWED[parts[1]]
        for target in edges:
            t = target.split(".")
            if t[0] == LIB and len(t) > 1 and t[1] not in allowed and ".".join(t[1:3]) not in allowed:
                wrong.append(f"{module} -> {target}")
    assert wrong == []


def test_the_toolkit_never_imports_torch():
    modules = sorted(m for m in product_modules() if m.startswith(f"{LIB}.toolkit"))
    assert len(modules) >= 10
    code = (f"import sys; sys.path.insert(0, {REPO!r}); import importlib\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_folder_holds_at_most_twelve_modules():
    counts = {}
    for module in product_modules():
        parts = module.split(".")
        if parts[0] == "bench" or parts[-1] == "__init__":
            continue
        folder = ".".join(parts[:-1])
        if folder and os.path.isfile(os.path.join(REPO, *parts) + ".py"):
            counts[folder] = counts.get(folder, 0) + 1
    assert counts and max(counts.values()) <= 12, {f: n for f, n in counts.items() if n > 12}
