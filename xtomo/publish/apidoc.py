"""The book's API reference page, ``book/api.md``, written from the package itself.

The page holds no documentation of its own: Sphinx's autodoc fills it from the docstrings while
the book builds. What it lists is generated here too, from ``xtomo.SUBPACKAGES`` and each
subpackage's ``__all__``, so a new module joins the reference by being listed in its subpackage.
``python -m xtomo.publish.apidoc`` rewrites the page; ``tests/test_book.py`` checks it is current.
"""
from __future__ import annotations

import importlib
import os
from pathlib import Path

from xtomo.files import atomic_path

from .chapters import book_root

__all__ = ["api_page", "write_api_page"]

_INTRO = """\
# API reference

This page is generated from the library's docstrings by Sphinx's autodoc each time the book is
built, so it documents exactly the code that built the book. The front door comes first, then
each subpackage in the order of the pipeline with the modules it lists in its `__all__`, then
the modules that serve them all. Its list of modules is written by `xtomo.publish.apidoc`
(`python -m xtomo.publish.apidoc` after adding a module).
"""


def _rst(*lines: str) -> str:
    """A MyST ``eval-rst`` block: autodoc writes reStructuredText, which MyST must not parse."""
    return "```{eval-rst}\n" + "\n".join(lines) + "\n```\n"


def _module(name: str, level: str = "###") -> str:
    return f"{level} `{name}`\n\n" + _rst(f".. automodule:: {name}", "   :members:")


def api_page(package: str = "xtomo") -> str:
    """The Markdown of the API page for ``package`` (its front door, subpackages and modules)."""
    root = importlib.import_module(package)
    parts, shared = [_INTRO, "## The front door\n\n" + _rst(f".. automodule:: {package}", "   :members:")], []
    for name in root.SUBPACKAGES:
        module = importlib.import_module(f"{package}.{name}")
        if not hasattr(module, "__path__"):
            shared.append(name)
            continue
        members = list(module.__all__)
        parts.append(f"## `{package}.{name}`\n\n" + _rst(f".. automodule:: {package}.{name}", "", ".. autosummary::",
                                                        "", *(f"   {m}" for m in members)))
        parts += [_module(f"{package}.{name}.{m}") for m in members]
    parts.append("## Shared modules\n\n" + _rst(f".. currentmodule:: {package}", "", ".. autosummary::", "",
                                                *(f"   {m}" for m in shared)))
    parts += [_module(f"{package}.{m}") for m in shared]
    return "\n".join(parts)


def write_api_page(root: str | os.PathLike | None = None) -> Path:
    """Write ``<root>/book/api.md`` (default root: ``book_root()``), atomically; returns its path."""
    path = Path(root or book_root()) / "book" / "api.md"
    with atomic_path(path) as tmp:
        tmp.write_text(api_page())
    return path


if __name__ == "__main__":
    print(write_api_page())
