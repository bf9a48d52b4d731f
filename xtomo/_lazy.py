"""Subpackages load their modules on first use, so ``import xtomo`` stays quick and light."""
from __future__ import annotations

import importlib

__all__ = ["submodules"]


def submodules(package: str, names: list[str]):
    """``__getattr__`` and ``__dir__`` for ``package`` that import ``package.NAME`` when first asked."""

    def __getattr__(name: str):
        if name in names:
            return importlib.import_module(f"{package}.{name}")
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(names)

    return __getattr__, __dir__
