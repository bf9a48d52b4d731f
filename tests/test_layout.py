"""The library's shape: subpackages in pipeline order, imports that only look back up the pipeline,
short modules and functions, no private names borrowed across modules, one public name per idea."""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

import xtomo

PACKAGE = Path(xtomo.__file__).resolve().parent
# The pipeline the book tells, first to last; each layer may import only from layers before it
# (and from itself). The shared modules at the top serve every layer.
LAYERS = ["_lazy", "_checks", "_options", "files", "profiles", "geometry", "specimens", "imaging", "data", "learning",
          "methods", "evaluation", "study", "viz", "publish", "cli", "__main__"]
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60


def modules() -> dict[str, ast.Module]:
    return {".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts): ast.parse(p.read_text())
            for p in sorted(PACKAGE.rglob("*.py"))}


def layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 else -1  # the package itself is the front door


def imports(module: str, tree: ast.Module) -> list[tuple[str, list[str]]]:
    """(imported module, imported names) for every ``import``/``from ... import`` of xtomo."""
    found = []
    package = module.split(".")[:-1] if not module.endswith("__init__") else module.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            if base.split(".")[0] == "xtomo":
                found.append((base, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names if a.name.split(".")[0] == "xtomo"]
    return found


def test_every_subpackage_has_a_place_in_the_pipeline():
    top = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
           if (p.suffix == ".py" or (p / "__init__.py").exists()) and p.name != "__init__.py"}
    assert top <= set(LAYERS), f"not placed in LAYERS: {sorted(top - set(LAYERS))}"


def test_imports_only_look_back_up_the_pipeline():
    backwards = []
    for module, tree in modules().items():
        if module == "xtomo.__init__":
            continue
        for target, _ in imports(module, tree):
            if target == "xtomo":
                continue  # the version string
            if layer(target) > layer(module):
                backwards.append(f"{module} imports {target}")
    assert not backwards, "\n".join(backwards)


def test_no_module_imports_another_modules_private_names():
    borrowed = []
    for module, tree in modules().items():
        for target, names in imports(module, tree):
            private = [n for n in names if n.startswith("_") and not n.startswith("__")
                       and not (PACKAGE.parent / Path(*target.split("."), n)).with_suffix(".py").exists()]
            if private and target != module:
                borrowed.append(f"{module}: from {target} import {', '.join(private)}")
        for node in ast.walk(tree):  # module._name attribute access, e.g. xray._check_directions
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                    and isinstance(node.value, ast.Name) and node.value.id in _module_aliases(tree)):
                borrowed.append(f"{module}: {node.value.id}.{node.attr}")
    assert not borrowed, "\n".join(borrowed)


def _module_aliases(tree: ast.Module) -> set[str]:
    """Names bound to xtomo modules by ``from xtomo.pkg import module`` (or ``import ... as``)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("xtomo"):
            for a in node.names:
                path = PACKAGE.parent / Path(*(node.module.split(".") + [a.name]))
                if path.with_suffix(".py").exists() or (path / "__init__.py").exists():
                    names.add(a.asname or a.name)
    return names


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_and_functions_are_short(path):
    lines = path.read_text().splitlines()
    assert len(lines) <= MAX_MODULE_LINES, f"{path.name}: {len(lines)} lines"
    long = [f"{node.name} ({node.end_lineno - node.lineno + 1} lines)" for node in ast.walk(ast.parse("\n".join(lines)))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, f"{path.name}: {', '.join(long)}"


def test_no_two_public_functions_share_a_name():
    where = defaultdict(list)
    for module, tree in modules().items():
        if module in ("xtomo.cli", "xtomo.__init__") or module.split(".")[-1].startswith("_"):
            continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
                where[node.name].append(module)
    shared = {name: mods for name, mods in where.items() if len(mods) > 1}
    assert not shared, shared


def test_every_subpackage_declares_all_and_loads_its_modules_on_use():
    for name in ("specimens", "imaging", "data", "learning", "methods", "evaluation", "study", "viz", "publish"):
        package = getattr(xtomo, name)
        assert package.__all__, name
        for member in package.__all__:
            assert getattr(package, member) is not None, f"xtomo.{name}.{member}"


def test_the_front_door():
    for name in ("simulate", "align", "load_volume", "load_xray", "load_model", "reconstruct", "get_profile"):
        assert callable(getattr(xtomo, name)) and name in xtomo.__all__ and name in xtomo.__doc__
