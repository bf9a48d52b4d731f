"""The ``xtomo`` command: one small function per subcommand, registered with ``@command``.

A new subcommand is a function ``def name(args) -> int | None`` decorated with
``@command(arg(...), ...)``; its docstring's first line is its help. Errors that the library
raises for bad input end as one ``xtomo: error: ...`` line, never a traceback.
"""
from __future__ import annotations

import argparse
import sys
from typing import Callable

from .profiles import PROFILES

__all__ = ["main", "command", "arg"]

_COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int | None], tuple]] = {}


def arg(*flags, **options) -> tuple:
    """One argument of a subcommand, as given to ``ArgumentParser.add_argument``."""
    return flags, options


def command(*arguments: tuple):
    """Register the decorated function as the subcommand of the same name (``_`` becomes ``-``)."""
    def register(function):
        _COMMANDS[function.__name__.replace("_", "-")] = (function, arguments)
        return function
    return register


PROFILE = arg("--profile", default="quick", metavar="P",
              help=f"scale profile: {', '.join(PROFILES)} (default: quick)")
PARAMETER = arg("-p", "--parameter", dest="parameters", action="append", default=[],
                metavar="KEY=VALUE",
                help="set a parameter of the chapter's parameters cell; repeatable; the value is "
                     "read with the type of the default")


def _key_values(items: list[str]) -> dict[str, str]:
    """``["seed=3"]`` as ``{"seed": "3"}``; typing the values is the chapter's parameters' job."""
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"-p expects KEY=VALUE, got {item!r}")
        pairs[key.strip()] = value
    return pairs


@command(PROFILE, arg("--seed", type=int, default=None, help="override the profile's seed"))
def simulate(args) -> None:
    """Build the species volumes and the train/validation split; print the counts."""
    from .data import simulate_collection
    from .profiles import get_profile

    overrides = {} if args.seed is None else {"seed": args.seed}
    manifest = simulate_collection(get_profile(args.profile, **overrides), progress=sys.stderr.isatty())
    c = manifest["counts"]
    paper = c["paper"]
    rows = [("species", c["species"], paper["species"]),
            ("  training species", c["train_species"], paper["species"] - paper["val_species"]),
            ("  held-out species", c["val_species"], paper["val_species"]),
            ("views per species", c["views"], paper["views"]),
            ("mirrors per view", c["mirrors"], paper["mirrors"]),
            ("samples", c["samples"], paper["samples"]),
            ("  training samples", c["train_samples"], paper["samples"] - paper["val_samples"]),
            ("  validation samples", c["val_samples"], paper["val_samples"])]
    print(f"profile {c['profile']}: volumes {c['volume_size']}^3, x-rays {c['xray_size']}^2")
    print(f"{'':24}{'this profile':>14}{'paper':>10}")
    for name, ours, theirs in rows:
        print(f"{name:24}{ours:>14,}{theirs:>10,}")
    print(f"volumes cached in {manifest['volumes']}")


@command()
def fetch_data(args) -> None:
    """Fetch the real CT volume and radiographs used by the tests and chapters (data/real/)."""
    from .realdata import data_dir, fetch

    fetch()
    print(data_dir())


@command(arg("chapter", help="chapter number (1, 01), name (01_data_simulation) or notebook path"),
         PROFILE, PARAMETER)
def run(args) -> None:
    """Execute one chapter with papermill into _build/<profile>/notebooks/."""
    from .book import run_chapter

    path = run_chapter(args.chapter, args.profile, _key_values(args.parameters),
                       progress_bar=sys.stderr.isatty())
    print(path)


@command(PROFILE)
def book(args) -> None:
    """Execute every chapter in order, then build the HTML book into _build/html/."""
    from .book import build_book

    print(build_book(args.profile, progress_bar=sys.stderr.isatty()))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xtomo", description="Single-image tomography: the library's command line and the book.")
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (function, arguments) in _COMMANDS.items():
        summary = (function.__doc__ or "").strip().splitlines()[0]
        sub = subcommands.add_parser(name, help=summary, description=summary)
        for flags, options in arguments:
            sub.add_argument(*flags, **options)
        sub.set_defaults(function=function)
    return parser


def _error(error: Exception, status: int) -> int:
    print("xtomo: error: " + " ".join(str(error).split()), file=sys.stderr)
    return status


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, run the subcommand; exit status 2 for bad input, 1 for a failed chapter/book."""
    from .book import BookError

    args = _parser().parse_args(argv)
    try:
        return args.function(args) or 0
    except (ValueError, FileNotFoundError) as error:
        return _error(error, 2)
    except BookError as error:
        return _error(error, 1)
    except KeyboardInterrupt:
        print("xtomo: interrupted", file=sys.stderr)
        return 130
