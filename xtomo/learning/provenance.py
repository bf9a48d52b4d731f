"""Where a trained network came from: the code that trained it and the machine it trained on, in words for
checkpoints and manifests."""
from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

import torch

from xtomo import __version__

__all__ = ["code_version", "machine"]


def code_version() -> str:
    """The package version, with the git commit when run from a checkout (and ``.dirty`` when tracked
    files differ from it: the commit alone would not say which code ran)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, cwd=Path(__file__).parent,
                              timeout=5).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        dirty = bool(commit) and bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "", False
    return f"{__version__}+{commit}{'.dirty' if dirty else ''}" if commit else __version__


def machine() -> str:
    """The machine a run trains on, in words: CPU model (or GPU), cores, torch build."""
    if torch.cuda.is_available():
        what = torch.cuda.get_device_name()
    else:
        names = [line.split(":", 1)[1].strip() for line in _cpuinfo() if line.startswith("model name")]
        what = names[0] if names else platform.processor() or platform.machine()
    return f"{what}, {os.cpu_count()} logical cores, torch {torch.__version__}"


def _cpuinfo() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []
