"""Subpackages load their modules on first use, so ``import xtomo`` stays quick and light."""
from __future__ import annotations

import importlib
import importlib.util

__all__ = ["submodules", "short_names"]


def submodules(package: str, names: list[str]):
    """``__getattr__`` and ``__dir__`` for ``package`` that import ``package.NAME`` when first asked:
    the ``names`` it lists, and any other public module it holds."""

    def __getattr__(name: str):
        if name in names or (not name.startswith("_") and importlib.util.find_spec(f"{package}.{name}")):
            return importlib.import_module(f"{package}.{name}")
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(names)

    return __getattr__, __dir__


def short_names(package: str, subpackages: list[str]) -> dict[str, str]:
    """Each module that one of ``package``'s ``subpackages`` lists in its ``__all__``, by its own
    name: ``{"metrics": "xtomo.evaluation.metrics", ...}`` (imports the subpackages' ``__init__``
    only, which import nothing heavy). Two subpackages listing one name is an error."""
    found: dict[str, str] = {}
    for sub in subpackages:
        if importlib.util.find_spec(f"{package}.{sub}").submodule_search_locations is None:
            continue   # a module (profiles, cli), not a subpackage
        for name in importlib.import_module(f"{package}.{sub}").__all__:
            if name in found:
                raise ImportError(f"{package}: module name {name!r} is in both {found[name]} and {package}.{sub}")
            found[name] = f"{package}.{sub}.{name}"
    return found
