"""The house's layers, drawn from its imports (issue 38): every import in serapp/ and trainer/, at
the top of a module or inside a function, read with `ast`; none may run up a layer, and none may
close a circle. The layers are written down here once; the README's Layout section shows them.

An import is an arrow to the module it names (`from pkg import name` names pkg.name where that is
a module, else pkg); importing a submodule is not counted as importing its package."""

from __future__ import annotations

import ast
import fnmatch
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("serapp", "trainer")

# Top first. A module may import modules of its own layer and of the layers below it, never of one
# above. A layer whose modules are split into groups by " | " keeps the groups apart: no group
# imports another (the experiments; the two trainers). Every module of serapp/ and trainer/ is in
# exactly one layer; a new module is placed here before it can pass.
LAYERS = [
    ("entry points", "serapp.__main__ trainer.__main__"),
    ("trainer: command line", "trainer.cli trainer.cli_common trainer.cli_run trainer.cli_tables"),
    ("trainer: experiments",
     "trainer.crosscorpus | trainer.encoder_table trainer.encoder_choices trainer.encoder_render | trainer.zoo"
     " | trainer.zoo_emovo"),
    ("trainer: one run", "trainer.run trainer.export trainer.jobs"),
    ("trainer: the two trainers", "trainer.end_to_end | trainer.frozen"),
    ("trainer: library",
     "trainer trainer.training trainer.evaluation trainer.summaries trainer.distributed trainer.data trainer.cache"
     " trainer.augment trainer.config trainer.folds trainer.ema trainer.report trainer.calibrate trainer.quantise"
     " trainer.costs trainer.claims trainer.basic_head"),
    ("serapp: command lines", "serapp.cli serapp.profile_cli serapp.listen_web_cli"),
    ("serapp: the desktop app and the web listening test", "serapp.gui serapp.gui.* serapp.web serapp.web.*"),
    ("serapp: reading files, the microphone and listeners",
     "serapp.live serapp.file_analysis serapp.calibration serapp.adapt_files serapp.predict_output"
     " serapp.model_card serapp.listening serapp.listening.*"),
    ("serapp: analysis", "serapp.analysis serapp.profiles"),
    ("serapp: predictor, bundles and corpora",
     "serapp.predictor serapp.bundle serapp.bundle_file serapp.corpora serapp.corpus_schemes"),
    ("serapp: features, audio and networks", "serapp.features serapp.audio serapp.audio.* serapp.models serapp.models.*"),
    ("serapp: foundations",
     "serapp serapp.errors serapp.files serapp.labels serapp.settings serapp.readout serapp.scoring serapp.metrics"
     " serapp.csv_cells serapp.timeline serapp.adaptation serapp.feature_config serapp.reading_cost"),
]


def find_modules(root: Path, packages) -> dict[str, Path]:
    """{dotted name: file} for every .py file of the packages under `root`."""
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """{module: the modules of `modules` it imports}, from every import statement in it."""

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        arrows = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                arrows.update(known(alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join(parent + ([base] if base else []))
                for alias in node.names:
                    arrows.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else known(base))
        graph[module] = arrows - {None, module}
    return graph


def parse_layers(layers) -> list[tuple[str, list[list[str]]]]:
    return [(name, [group.split() for group in spec.split("|")]) for name, spec in layers]


def place(modules, layers) -> tuple[dict[str, tuple[int, int]], list[str]]:
    """{module: (layer index, group index)}, and what is wrong with the placing."""
    where, problems = {}, []
    for m in sorted(modules):
        spots = [(i, g) for i, (_, groups) in enumerate(layers) for g, patterns in enumerate(groups)
                 if any(fnmatch.fnmatchcase(m, p) for p in patterns)]
        if not spots:
            problems.append(f"{m}: in no layer (place it in tests/test_import_layers.py's LAYERS)")
        elif len(spots) > 1:
            problems.append(f"{m}: in more than one layer or group: {', '.join(layers[i][0] for i, _ in spots)}")
        else:
            where[m] = spots[0]
    for name, groups in layers:
        for pattern in (p for group in groups for p in group):
            if not any(fnmatch.fnmatchcase(m, pattern) for m in modules):
                problems.append(f"layer {name!r}: {pattern} names no module")
    return where, problems


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
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

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def layer_problems(root: Path, packages, layers) -> list[str]:
    """Everything that breaks the layering of the packages under `root`: a module placed in no
    layer (or two), a pattern naming nothing, an import up a layer or across groups, a circle."""
    layers = parse_layers(layers)
    modules = find_modules(root, packages)
    graph = import_graph(modules)
    where, problems = place(modules, layers)
    for a in sorted(graph):
        for b in sorted(graph[a]):
            if a not in where or b not in where:
                continue
            (la, ga), (lb, gb) = where[a], where[b]
            if lb < la:
                problems.append(f"{a} ({layers[la][0]}) imports {b}, a layer up ({layers[lb][0]})")
            elif la == lb and ga != gb:
                problems.append(f"{a} imports {b}: separate groups of {layers[la][0]!r}, kept apart")
    for component in circles(graph):
        members = set(component)
        arrows = [f"{a} -> {b}" for a in component for b in sorted(graph[a] & members)]
        problems.append(f"circle: {', '.join(component)} ({'; '.join(arrows)})")
    return problems


def test_no_import_runs_up_a_layer_or_closes_a_circle():
    assert layer_problems(ROOT, PACKAGES, LAYERS) == []


def test_no_module_is_over_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in find_modules(ROOT, PACKAGES).values()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400}
    assert long == {}


def test_the_readme_layout_shows_the_same_layers_in_the_same_order():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    layout = readme.split("\n## Layout", 1)[1].split("\n## ", 1)[0]
    names = [name for name, _ in LAYERS]
    assert [line.strip() for line in layout.splitlines() if line.strip() in names] == names


def _package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


HOUSE = [("top", "pkg.cli"), ("middle", "pkg.one | pkg.two"), ("bottom", "pkg pkg.base pkg.sub pkg.sub.*")]
CLEAN = {"pkg/__init__.py": "", "pkg/cli.py": "from pkg import one, two\n",
         "pkg/one.py": "from pkg.base import X\n", "pkg/two.py": "from . import base\n",
         "pkg/base.py": "X = 1\n", "pkg/sub/__init__.py": "", "pkg/sub/leaf.py": "from ..base import X\n"}


def test_a_clean_generated_package_passes(tmp_path):
    assert layer_problems(_package(tmp_path, CLEAN), ["pkg"], HOUSE) == []


def test_a_circle_reintroduced_by_an_import_inside_a_function_fails(tmp_path):
    root = _package(tmp_path, {**CLEAN, "pkg/base.py": "X = 1\n\n\ndef later():\n    from pkg.sub.leaf import X\n"})
    assert layer_problems(root, ["pkg"], HOUSE) == [
        "circle: pkg.base, pkg.sub.leaf (pkg.base -> pkg.sub.leaf; pkg.sub.leaf -> pkg.base)"]


def test_an_import_up_a_layer_or_across_groups_fails_and_so_does_a_module_in_no_layer(tmp_path):
    root = _package(tmp_path, {**CLEAN, "pkg/sub/leaf.py": "import pkg.cli\n", "pkg/two.py": "from pkg.one import *\n",
                               "pkg/stray.py": ""})
    assert layer_problems(root, ["pkg"], HOUSE) == [
        "pkg.stray: in no layer (place it in tests/test_import_layers.py's LAYERS)",
        "pkg.sub.leaf (bottom) imports pkg.cli, a layer up (top)",
        "pkg.two imports pkg.one: separate groups of 'middle', kept apart"]


def test_the_house_with_a_circle_put_back_fails(tmp_path):
    """A copy of the house with the library's data.py importing from the end-to-end trainer inside a
    function, as it once imported the rank from the training loop: the test names the arrow up and
    the circle it closes."""
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "*.toml"))
    assert layer_problems(tmp_path, PACKAGES, LAYERS) == []
    with open(tmp_path / "trainer" / "data.py", "a", encoding="utf-8") as f:
        f.write("\n\ndef _later() -> int:\n    from trainer.end_to_end import CHECKPOINT\n\n    return len(CHECKPOINT)\n")
    up, *circle = layer_problems(tmp_path, PACKAGES, LAYERS)
    assert up == "trainer.data (trainer: library) imports trainer.end_to_end, a layer up (trainer: the two trainers)"
    assert len(circle) == 1 and circle[0].startswith("circle: trainer.data, trainer.end_to_end")
    assert "trainer.data -> trainer.end_to_end" in circle[0] and "trainer.end_to_end -> trainer.data" in circle[0]
