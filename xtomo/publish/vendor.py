"""The JavaScript the book serves itself, so that it works offline, widgets included.

Instead of the CDNs that jupyter-book and myst-nb load JavaScript from, the book serves its own
copies in ``_vendor/``: the ipywidgets HTML manager, RequireJS and MathJax (pinned npm packages,
hash-checked, fetched once into a cache by ``fetch_bundles``), and the widget libraries'
JavaScript as the installed Python packages ship it (their classic-notebook ``nbextensions``,
found by ``widget_modules``). ``install_bundles`` copies them into a built book with
``widgets.js`` (from ``templates/``), which points RequireJS at them; ``offline_config`` is what
the pages' Sphinx configuration needs to load them.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from importlib import resources
from pathlib import Path

from xtomo.files import atomic_path

from .chapters import BookError

__all__ = ["NPM_BUNDLES", "VENDOR", "MATHJAX_ENTRY", "BundleUnavailable", "fetch_bundles", "widget_modules",
           "check_widget_modules", "install_bundles", "offline_config"]

# The JavaScript the book serves itself (npm name: exact version, the registry's sha512 of the
# tarball, checked on every fetch). html-manager 1.0.15 is ipywidgets 8.1's: it bundles the same
# @jupyter-widgets/base 6.0.12 and controls 5.0.13 as the installed jupyterlab_widgets 3.0.17.
NPM_BUNDLES = {
    "@jupyter-widgets/html-manager": ("1.0.15", "sha512-5thBIV6ymNgmPVOHvzx+gGy8ZSKmSazhtGw4/c4xJDVzR"
                                      "hG9PTeQsRjF3FUTopvFi//SABeNz1yp47bCrJ3CQA=="),
    "requirejs": ("2.3.8", "sha512-7/cTSLOdYkNBNJcDMWf+luFvMriVm7eYxp4BcFCsAX0wF421Vyce5SXP17c+Jd5otXK"
                  "GNehIonFlyQXSowL6Mw=="),
    "mathjax": ("3.2.2", "sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJv"
                "tRZM1vO+geW0OhGw=="),
}
VENDOR = "_vendor"  # the HTML book's folder of bundled JavaScript, beside _static (not in it:
# jupyter-book adds every .js of a _static folder to every page, which breaks AMD modules)
MATHJAX_ENTRY = "tex-mml-chtml.js"  # the MathJax component Sphinx loads (its default, from a CDN)
# widget modules that html-manager's embed-amd.js defines itself
_HTML_MANAGER_MODULES = {"@jupyter-widgets/base", "@jupyter-widgets/controls", "@jupyter-widgets/output"}
# modules that nbextensions map for the classic Notebook but the book never loads: the Notebook's
# widget manager, and the modules above, which the book takes from html-manager instead
_NOT_SERVED = {"jupyter-js-widgets"} | _HTML_MANAGER_MODULES
# `name: "nbextensions/folder/file"` in an nbextension's requirejs map (quoted or bare keys)
_NBEXTENSION_MAP = re.compile(r"""["']?([\w@./-]+)["']?\s*:\s*["']nbextensions/([^"']+)["']""")
# Sphinx prefixes local script paths with _static/; these go up from it into _vendor/
_FROM_STATIC = f"../{VENDOR}"
_FONTS = {".woff2", ".woff", ".ttf", ".eot", ".svg"}


class BundleUnavailable(BookError):
    """An npm package the book bundles could not be fetched (no npm, or no registry)."""


def _template(name: str) -> str:
    """A file of this package's ``templates/`` folder (package data, shipped with the package)."""
    return resources.files(__package__).joinpath("templates", name).read_text(encoding="utf-8")


def _sri(path: Path) -> str:
    """The Subresource Integrity string of a file (``sha512-<base64>``), as npm records it."""
    return "sha512-" + base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()


def _npm_pack(spec: str, work: Path) -> Path:
    """Download the tarball of ``spec`` (``name@version``) into ``work`` with ``npm pack``."""
    npm = shutil.which("npm")
    if npm is None:
        raise BundleUnavailable(f"npm is not installed; the book serves {spec} from the npm "
                                f"registry itself (install Node.js with npm, e.g. `apt-get install npm`)")
    command = [npm, "pack", spec, "--json", "--pack-destination", str(work)]
    try:
        result = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        raise BundleUnavailable(f"`npm pack {spec}` ran for 10 minutes: is the npm registry "
                                f"reachable?") from None
    if result.returncode != 0:
        lines = result.stderr.splitlines()
        errors = [line.strip() for line in lines if "err" in line.lower()] or lines[-3:] or ["no output"]
        raise BundleUnavailable(f"`npm pack {spec}` failed (is the npm registry reachable?): "
                                f"{' '.join(errors[:4])}")
    return work / json.loads(result.stdout)[0]["filename"]


def fetch_bundles(cache: str | os.PathLike) -> dict[str, Path]:
    """Each package of ``NPM_BUNDLES``, unpacked in ``cache``; returns name -> package folder.

    A package not yet in the cache is downloaded with ``npm pack`` and unpacked only if its
    tarball has the pinned hash. No npm or no registry raises ``BundleUnavailable``.
    """
    cache = Path(cache).resolve()
    folders = {}
    for name, (version, integrity) in NPM_BUNDLES.items():
        folder = cache / f"{name.replace('/', '+')}@{version}"
        if not folder.is_dir():
            cache.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(prefix=".npm-", dir=cache) as work:
                tarball = _npm_pack(f"{name}@{version}", Path(work))
                found = _sri(tarball)
                if found != integrity:
                    raise BookError(f"npm gave {name}@{version} with hash {found}, not the pinned "
                                    f"{integrity} (NPM_BUNDLES in {__file__})")
                with tarfile.open(tarball) as tar:
                    tar.extractall(Path(work) / "unpacked", filter="data")
                os.replace(Path(work) / "unpacked" / "package", folder)
        folders[name] = folder
    return folders


def widget_modules() -> tuple[dict[str, Path], dict[str, str]]:
    """The installed nbextension folders by name, and RequireJS module name -> ``folder/file``.

    The modules come from each nbextension's ``extension.js``, which maps them for the classic
    Notebook; as there, the first folder of Jupyter's data path holding an extension wins.
    """
    from jupyter_core.paths import jupyter_path

    folders: dict[str, Path] = {}
    for base in map(Path, jupyter_path("nbextensions")):
        for extension in sorted(base.glob("*/extension.js")):
            folders.setdefault(extension.parent.name, extension.parent)
    modules: dict[str, str] = {}
    for folder in folders.values():
        text = (folder / "extension.js").read_text(errors="replace")
        for name, target in _NBEXTENSION_MAP.findall(text):
            owner = folders.get(target.split("/")[0])
            if name not in _NOT_SERVED and owner and (owner.parent / f"{target}.js").is_file():
                modules.setdefault(name, target)
    return folders, modules


def check_widget_modules(executed: list[Path], modules: dict[str, str]) -> None:
    """Refuse chapters whose saved widgets need a module that the book cannot serve itself."""
    import nbformat

    for notebook in executed:
        widgets = nbformat.read(notebook, as_version=4).metadata.get("widgets", {})
        state = widgets.get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
        needed = {m.get("model_module") for m in state.values()}
        needed |= {m.get("state", {}).get("_view_module") for m in state.values()}
        missing = sorted(needed - _HTML_MANAGER_MODULES - set(modules) - {None})
        if missing:
            raise BookError(f"chapter {notebook.stem} shows widgets of {', '.join(missing)}, which "
                            f"no installed nbextension provides (Jupyter's nbextensions folders hold "
                            f"{', '.join(sorted(modules)) or 'none'}); the book cannot show them offline")


def install_bundles(html: Path, bundles: dict[str, Path], folders: dict[str, Path],
                    modules: dict[str, str]) -> None:
    """Copy the book's JavaScript into ``<html>/_vendor`` (source maps left out)."""
    vendor = html / VENDOR
    no_maps = shutil.ignore_patterns("*.map")
    for folder in ("html-manager", "mathjax"):
        (vendor / folder).mkdir(parents=True)
    shutil.copy2(bundles["requirejs"] / "require.js", vendor / "require.js")
    # html-manager: the AMD bundle and the fonts its CSS refers to (its other bundles are not AMD)
    for file in (bundles["@jupyter-widgets/html-manager"] / "dist").iterdir():
        if file.name == "embed-amd.js" or file.suffix in _FONTS:
            shutil.copy2(file, vendor / "html-manager" / file.name)
    # MathJax: the component the pages load and the folders it loads from on demand (fonts, TeX
    # extensions, menu, accessibility); its other top-level files are alternative components
    mathjax = bundles["mathjax"] / "es5"
    shutil.copy2(mathjax / MATHJAX_ENTRY, vendor / "mathjax" / MATHJAX_ENTRY)
    for sub in mathjax.iterdir():
        if sub.is_dir():
            shutil.copytree(sub, vendor / "mathjax" / sub.name, ignore=no_maps)
    for name in sorted({target.split("/")[0] for target in modules.values()}):
        shutil.copytree(folders[name], vendor / "nbextensions" / name, ignore=no_maps)
    # html-manager's modules (e.g. @jupyter-widgets/controls) take their fonts from html-manager/
    paths = {"@jupyter-widgets": "html-manager", "@jupyter-widgets/html-manager/dist": "html-manager"}
    paths.update({name: f"nbextensions/{target}" for name, target in sorted(modules.items())})
    with atomic_path(vendor / "widgets.js") as tmp:
        tmp.write_text(_template("widgets.js").replace("__PATHS__", json.dumps(paths, indent=2)))


def offline_config() -> dict:
    """Sphinx settings that have the pages load ``_vendor/`` instead of the CDNs."""
    return {
        "nb_ipywidgets_js": {  # in this order: RequireJS, its configuration, the widget manager
            f"{_FROM_STATIC}/require.js": {},
            f"{_FROM_STATIC}/widgets.js": {},
            # a module missing from _vendor/ fails there, instead of being fetched from jsDelivr
            f"{_FROM_STATIC}/html-manager/embed-amd.js": {"data-jupyter-widgets-cdn": "./"},
        },
        "mathjax_path": f"{_FROM_STATIC}/mathjax/{MATHJAX_ENTRY}",
    }
