"""Execute the book's chapters with papermill and build the HTML book from the executed copies.

A chapter is a notebook ``notebooks/NN_name.ipynb`` with a cell tagged ``parameters``.
``run_chapter`` executes one at a profile into ``_build/<profile>/notebooks/``; ``build_book``
runs them all in order and then has jupyter-book render those executed copies (it executes
nothing itself), so every number in the book comes from exactly one papermill run.

The book works without the internet: instead of the CDNs that jupyter-book and myst-nb load
JavaScript from, it serves its own copies in ``_vendor/`` — the ipywidgets HTML manager,
RequireJS and MathJax (pinned npm packages, fetched once into a cache), and the widget
libraries' JavaScript as the installed Python packages ship it (their classic-notebook
``nbextensions``).
"""
from __future__ import annotations

import ast
import base64
import contextlib
import datetime
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import yaml

from xtomo.files import atomic_path, read_json, umask, write_json
from xtomo.profiles import get_profile

__all__ = [
    "book_root", "NPM_BUNDLES", "BookError", "ChapterFailed", "BookFailed",
    "BundleUnavailable", "find_chapters", "resolve_chapter", "chapter_parameters",
    "typed_parameters", "run_chapter", "fetch_bundles", "build_book",
]

KERNEL = "python3"  # ipykernel's own kernelspec; jupyter_client starts it with sys.executable
_CHAPTER_NAME = re.compile(r"^(\d\d)_[^.]+\.ipynb$")
_TRUE, _FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_EXPECTED = {bool: "true or false", int: "an integer", float: "a number"}
# The kernel's environment: bars redraw at most once a second (each redraw is a widget message
# that nbclient records), and no inherited MPLBACKEND (e.g. Agg from CI) may stop ipykernel from
# choosing its inline backend, or figures would silently vanish from the book.
_KERNEL_ENV = {"TQDM_MININTERVAL": "1", "MPLBACKEND": None}
# ipykernel warns at every start that its local TCP sockets are unencrypted; keep its errors only
_KERNEL_ARGS = ["--IPKernelApp.log_level=ERROR"]

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
# Loaded after require.js, before embed-amd.js: RequireJS finds the widget modules in the book's
# own copies, from this script's URL, so it works from a page in any folder. html-manager's and
# jupyter-vuetify's modules find their fonts from their module's URL and from <body data-base-url>.
# The controls typeset labels with MathJax 2's MathJax.Hub.Queue; the book's MathJax is version 3.
_WIDGETS_JS = """\
// Written by xtomo.publish.chapters: the book's widgets load their JavaScript from this folder, not a CDN.
(function () {
  var here = new URL(".", document.currentScript.src).href;
  window.requirejs.config({baseUrl: here, paths: %s});
  document.addEventListener("DOMContentLoaded", function () {
    document.body.setAttribute("data-base-url", here);
    var mathjax = window.MathJax;
    if (mathjax && mathjax.startup && !mathjax.Hub) {
      mathjax.Hub = {Queue: function (job) {
        mathjax.startup.promise.then(function () { return mathjax.typesetPromise([job[2]]); });
      }};
    }
  });
})();
"""


class BookError(RuntimeError):
    """The book pipeline could not run a chapter or build the HTML."""


class ChapterFailed(BookError):
    """A chapter raised while executing; the executed notebook is kept at ``failed_notebook``."""

    def __init__(self, message: str, chapter: str, cell: int | None = None,
                 failed_notebook: Path | None = None):
        super().__init__(message)
        self.chapter = chapter
        self.cell = cell  # 1-based, in the chapter's source notebook
        self.failed_notebook = failed_notebook


class BookFailed(BookError):
    """jupyter-book reported warnings or errors (-W makes every warning fatal)."""


class BundleUnavailable(BookError):
    """An npm package the book bundles could not be fetched (no npm, or no registry)."""


def book_root(start: str | os.PathLike | None = None) -> Path:
    """The book's root folder: ``$XTOMO_BOOK``, else the nearest of ``start`` (default: the
    working directory) and its parents that holds ``_toc.yml`` and ``notebooks/``."""
    if start is None and os.environ.get("XTOMO_BOOK"):
        return Path(os.environ["XTOMO_BOOK"]).resolve()
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "_toc.yml").is_file() and (folder / "notebooks").is_dir():
            return folder
    raise FileNotFoundError(f"no book here: neither {here} nor a folder above it holds _toc.yml and notebooks/ "
                            "(run from the book's folder, or set XTOMO_BOOK)")


def _root(root: str | os.PathLike | None) -> Path:
    return Path(root).resolve() if root is not None else book_root()


def find_chapters(root: str | os.PathLike | None = None) -> list[Path]:
    """The chapter notebooks ``<root>/notebooks/NN_*.ipynb``, in order of their number."""
    folder = _root(root) / "notebooks"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _CHAPTER_NAME.match(p.name))


def resolve_chapter(chapter: str | int | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """The notebook named by ``chapter``: a number (``1``, ``"01"``), a stem or a path."""
    text = str(chapter)
    if text.endswith(".ipynb") or os.sep in text or "/" in text:
        path = Path(text)
        if not path.is_file():
            raise FileNotFoundError(f"no chapter notebook at {path}")
        return path.resolve()
    chapters = find_chapters(root)
    for path in chapters:
        number = _CHAPTER_NAME.match(path.name).group(1)
        if text == path.stem or (text.isdigit() and int(text) == int(number)):
            return path
    known = ", ".join(f"{int(p.name[:2])} = {p.stem}" for p in chapters) or "none yet"
    raise ValueError(f"no chapter {text!r} in {_root(root) / 'notebooks'} (chapters: {known})")


def _parameters_cell(path: Path) -> int:
    """Index of the cell tagged ``parameters``; a chapter without one is refused."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for index, cell in enumerate(nb.cells):
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            return index
    raise ValueError(f"chapter {path.stem} has no cell tagged 'parameters' ({path})")


def chapter_parameters(chapter: str | int | os.PathLike,
                       root: str | os.PathLike | None = None) -> dict[str, str]:
    """The chapter's parameters and their defaults as written (source text), by papermill.

    Every chapter must have a cell tagged ``parameters`` that defines at least ``profile``.
    """
    import papermill

    path = resolve_chapter(chapter, root)
    _parameters_cell(path)
    known = {name: p["default"] for name, p in papermill.inspect_notebook(str(path)).items()}
    if "profile" not in known:
        raise ValueError(f"chapter {path.stem}: its parameters cell must define `profile`")
    return known


def _parse(name: str, text: str, default_source: str, chapter: str):
    """``text`` read with the type of the default (bool, int, float, str; otherwise as YAML)."""
    try:
        kind = type(ast.literal_eval(default_source))
    except (ValueError, SyntaxError):
        kind = None  # the default is an expression: no type to go by
    try:
        if kind is bool:
            if text.lower() not in _TRUE | _FALSE:
                raise ValueError(text)
            return text.lower() in _TRUE
        if kind in (int, float):
            return kind(text)
        return text if kind is str else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError):
        raise ValueError(f"chapter {chapter}: parameter {name}={text!r} is not "
                         f"{_EXPECTED.get(kind, 'a YAML value')} (its default is {default_source})"
                         ) from None


def typed_parameters(chapter: str | int | os.PathLike, parameters: dict,
                     root: str | os.PathLike | None = None) -> dict:
    """``parameters`` checked against the chapter's parameters cell, strings parsed by type.

    Unknown names are refused before anything runs (papermill itself only warns); string values,
    as given on a command line, take the type of the default in the parameters cell.
    """
    path = resolve_chapter(chapter, root)
    known = chapter_parameters(path)
    unknown = sorted(set(parameters) - set(known))
    if unknown:
        listing = ", ".join(f"{k}={v}" for k, v in known.items()) or "none"
        raise ValueError(f"chapter {path.stem} has no parameter {', '.join(unknown)}; "
                         f"its parameters are: {listing}")
    return {name: _parse(name, value, known[name], path.stem) if isinstance(value, str) else value
            for name, value in parameters.items()}


def _check_kernel() -> None:
    """Refuse a ``python3`` kernelspec that would run another interpreter than this one."""
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec(KERNEL)
    executable = spec.argv[0]
    # jupyter_client replaces a bare "python"/"python3"/"pythonX.Y" with sys.executable
    bare = {"python", f"python{sys.version_info[0]}", "python%d.%d" % sys.version_info[:2]}
    if executable not in bare and executable != sys.executable:
        raise BookError(
            f"the Jupyter kernel {KERNEL!r} ({spec.resource_dir}) runs {executable}, not this "
            f"interpreter {sys.executable}; remove that kernelspec or run "
            f"`{sys.executable} -m ipykernel install --sys-prefix`")


@contextlib.contextmanager
def _kernel_environment():
    """Set ``_KERNEL_ENV`` in os.environ while a kernel starts (it inherits it); restore after."""
    saved = {name: os.environ.get(name) for name in _KERNEL_ENV}
    for name, value in _KERNEL_ENV.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ.setdefault(name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _failure(path: Path, exc: Exception, kept: Path | None, parameters_cell: int) -> ChapterFailed:
    """A one-line ChapterFailed: chapter, cell and its first line, exception type and message."""
    from papermill.exceptions import PapermillExecutionError

    where, cell = "", None
    if isinstance(exc, PapermillExecutionError):
        # papermill counts the injected-parameters cell that follows the parameters cell
        cell = exc.cell_index - (exc.cell_index > parameters_cell) + 1
        first = next((line for line in exc.source.splitlines() if line.strip()), "")
        where = f" at cell {cell} (`{first.strip()}`)"
        ename, evalue = exc.ename, exc.evalue
    else:
        ename, evalue = type(exc).__name__, str(exc)
    message = " ".join(evalue.split())
    if len(message) > 300:
        message = message[:300] + " …"
    kept_note = f"; the executed notebook is kept at {kept}" if kept else ""
    return ChapterFailed(f"chapter {path.stem} failed{where}: {ename}: {message}{kept_note}",
                         path.stem, cell, kept)


def _record_timing(path: Path, chapter: str, profile: str, seconds: float, parameters: dict):
    """Add the chapter's wall time, with date and machine, to ``timings.json`` (atomically)."""
    timings = read_json(path) if path.exists() else {}
    timings.setdefault("chapters", {})[chapter] = {
        "seconds": round(seconds, 2),
        "profile": profile,
        "parameters": parameters,
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }
    write_json(path, timings)


def run_chapter(chapter: str | int | os.PathLike, profile: str = "quick",
                parameters: dict | None = None, out_dir: str | os.PathLike | None = None, *,
                root: str | os.PathLike | None = None, progress_bar: bool = False) -> Path:
    """Execute one chapter with papermill at ``profile``; return the executed notebook's path.

    The notebook lands in ``out_dir`` (default ``<root>/_build/<profile>/notebooks/``) only if
    every cell succeeds; otherwise it is kept as ``<name>.failed.ipynb`` and ``ChapterFailed``
    says where and why. The kernel runs in ``root`` (the repository), so relative paths such as
    ``artifacts/`` mean the same as for the ``xtomo`` command. Wall time goes to
    ``<out_dir>/../timings.json``.
    """
    import papermill

    root = _root(root)
    path = resolve_chapter(chapter, root)
    parameters = dict(parameters or {})
    if "profile" in parameters:
        raise ValueError("choose the profile with --profile (profile=...), not as a parameter")
    get_profile(profile)
    values = typed_parameters(path, parameters)
    parameters_cell = _parameters_cell(path)
    _check_kernel()

    out_dir = Path(out_dir).resolve() if out_dir is not None else root / "_build" / profile / "notebooks"
    final, failed = out_dir / path.name, out_dir / f"{path.stem}.failed.ipynb"
    start = time.perf_counter()
    with atomic_path(final) as tmp, _kernel_environment():
        try:
            papermill.execute_notebook(
                str(path), str(tmp), parameters={"profile": profile, **values}, kernel_name=KERNEL,
                cwd=str(root), progress_bar=progress_bar, extra_arguments=_KERNEL_ARGS)
        except Exception as exc:
            kept = None
            if tmp.stat().st_size:  # papermill saved the notebook up to the failure
                os.replace(tmp, failed)
                kept = failed
            raise _failure(path, exc, kept, parameters_cell) from None
    failed.unlink(missing_ok=True)
    _record_timing(out_dir.parent / "timings.json", path.stem, profile,
                   time.perf_counter() - start, values)
    return final


def _replace_dir(new: Path, dest: Path) -> Path:
    """Put the finished folder ``new`` at ``dest``, swapping out any old one by renames."""
    os.chmod(new, 0o777 & ~umask())  # mkdtemp makes folders private; a book is for reading
    old = None
    if dest.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old-", dir=dest.parent))
        os.replace(dest, old)
    os.replace(new, dest)
    if old is not None:
        shutil.rmtree(old)
    return dest


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


def _widget_modules() -> tuple[dict[str, Path], dict[str, str]]:
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


def _check_widget_modules(executed: list[Path], modules: dict[str, str]) -> None:
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


def _install_bundles(html: Path, bundles: dict[str, Path], folders: dict[str, Path],
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
        tmp.write_text(_WIDGETS_JS % json.dumps(paths, indent=2))


def _offline_config() -> dict:
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


def _stage(root: Path, executed: list[Path], dest: Path) -> Path:
    """A book source folder: the root's config, TOC and ``book/`` pages, the executed chapters.

    The staged configuration executes nothing and loads JavaScript from ``_vendor/`` only.
    """
    for name in ("_config.yml", "_toc.yml", "book"):
        if not (root / name).exists():
            raise FileNotFoundError(f"{root / name} is missing: it is part of the book source")
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        config = yaml.safe_load((root / "_config.yml").read_text()) or {}
        config.setdefault("execute", {})["execute_notebooks"] = "off"  # papermill already ran them
        config.setdefault("sphinx", {}).setdefault("config", {}).update(_offline_config())
        (staging / "_config.yml").write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False))
        shutil.copy2(root / "_toc.yml", staging / "_toc.yml")
        shutil.copytree(root / "book", staging / "book")
        (staging / "notebooks").mkdir()
        for notebook in executed:
            shutil.copy2(notebook, staging / "notebooks" / notebook.name)
    except BaseException:
        shutil.rmtree(staging)
        raise
    return _replace_dir(staging, dest)


def _jupyter_book(source: Path, work: Path) -> Path:
    """Run ``jupyter-book build -W -n --keep-going`` on ``source`` into a new folder in ``work``.

    -W turns every Sphinx warning into an error, -n adds a warning for each unresolved reference,
    --keep-going reports all of them before failing. Returns the output folder (the HTML is in
    its ``_build/html``); the full log is ``<work>/jupyter-book.log``.
    """
    build = Path(tempfile.mkdtemp(prefix=".jupyter-book-", dir=work))
    command = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()",
               "build", str(source), "--path-output", str(build), "-W", "-n", "--keep-going"]
    result = subprocess.run(command, capture_output=True, text=True)
    output = _ANSI.sub("", result.stdout + result.stderr)  # Sphinx colours even into a pipe
    log = work / "jupyter-book.log"
    with atomic_path(log) as tmp:
        tmp.write_text(output)
    if result.returncode != 0:
        shutil.rmtree(build)
        lines = output.splitlines()
        problems = [line for line in lines if "WARNING" in line or "ERROR" in line]
        first = problems[0] if problems else (lines[-1] if lines else "no output")
        raise BookFailed(f"jupyter-book failed ({len(problems)} warning(s) or error(s); warnings "
                         f"are errors here); first: {first.strip()}; full log: {log}")
    return build


def build_book(profile: str = "quick", chapters: list | None = None, parameters: dict | None = None,
               out: str | os.PathLike | None = None, *, root: str | os.PathLike | None = None,
               progress_bar: bool = False) -> Path:
    """Run every chapter (or ``chapters``) in order, then build the HTML book; return its index.

    ``parameters`` go to every chapter, so each must declare them; they are all checked before
    the first chapter starts, and the build stops at the first chapter that fails. Everything
    goes under ``out`` (default ``<root>/_build``): executed chapters in ``<profile>/notebooks``,
    the staged book source in ``<profile>/source``, the npm packages the book serves in
    ``vendor/`` (fetched once), and the finished book in ``html/``, which is replaced only once
    the new one is complete. ``root`` is the book source (default: this repository):
    ``_config.yml``, ``_toc.yml``, ``book/`` and ``notebooks/``.
    """
    root = _root(root)
    out = Path(out).resolve() if out is not None else root / "_build"
    paths = [resolve_chapter(c, root) for c in chapters] if chapters is not None else find_chapters(root)
    if not paths:
        raise ValueError(f"no chapters to run: {root / 'notebooks'} has no NN_name.ipynb notebooks")
    get_profile(profile)
    for path in paths:
        typed_parameters(path, dict(parameters or {}))
    bundles = fetch_bundles(out / "vendor")  # before the chapters: no registry, no book
    folders, modules = _widget_modules()
    executed = [run_chapter(path, profile, parameters, out / profile / "notebooks", root=root,
                            progress_bar=progress_bar) for path in paths]
    _check_widget_modules(executed, modules)
    source = _stage(root, executed, out / profile / "source")
    build = _jupyter_book(source, out / profile)
    _install_bundles(build / "_build" / "html", bundles, folders, modules)
    html = _replace_dir(build / "_build" / "html", out / "html")
    shutil.rmtree(build)
    return html / "index.html"
