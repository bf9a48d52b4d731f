"""The real heads: fetched by URL with their checksums, turned into dry skulls, in the canonical frame."""
from __future__ import annotations

import hashlib
import io as _bytes
import re

import numpy as np
import pytest
import torch
from conftest import require

from xtomo.data import io, realdata
from xtomo.data.io import dry_skull


def test_dry_skull_keeps_bone_values_and_drops_soft_tissue_and_islands():
    ct = np.full((20, 20, 20), 0.4, np.float32)           # a head of soft tissue
    ct[0] = 0.0                                           # air
    ct[5:15, 5:15, 5:8] = np.linspace(0.5, 0.9, 3)        # a plate of bone, 300 voxels
    ct[18, 18, 18] = 0.9                                  # one speck: an island of 1 voxel
    ct[2, 2, 2:4] = 0.7                                   # two diagonal-free voxels: an island of 2
    out = dry_skull(ct, 0.45, min_island=3)
    assert out.dtype == ct.dtype and out.shape == ct.shape
    np.testing.assert_array_equal(out[5:15, 5:15, 5:8], ct[5:15, 5:15, 5:8])   # bone untouched
    assert np.count_nonzero(out) == 300                   # soft tissue, air and islands gone


def test_dry_skull_joins_bone_across_corners():
    """Thin bone touches diagonally at coarse voxels: 26-connected, a diagonal chain is one piece."""
    ct = np.zeros((8, 8, 8), np.float32)
    for i in range(6):
        ct[i, i, i] = 0.8                                 # six voxels meeting only at corners
    assert np.count_nonzero(dry_skull(ct, 0.5, min_island=6)) == 6


def test_dry_skull_accepts_tensors_and_names_bad_input():
    assert isinstance(dry_skull(torch.ones(3, 3, 3), 0.5), np.ndarray)
    with pytest.raises(ValueError, match="dry_skull: expected a 3-D volume"):
        dry_skull(np.ones((3, 3)), 0.5)
    with pytest.raises(ValueError, match=r"no voxel above the threshold 2 \(values span 1..1\)"):
        dry_skull(np.ones((3, 3, 3)), 2.0)
    with pytest.raises(ValueError, match="threshold"):
        dry_skull(np.ones((3, 3, 3)), float("nan"))
    with pytest.raises(ValueError, match="min_island"):
        dry_skull(np.ones((3, 3, 3)), 0.5, min_island=0)


class _Response(_bytes.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_archive_with_a_wrong_checksum_is_refused_and_not_kept(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XTOMO_DATA", str(tmp_path / "real"))
    monkeypatch.setattr(realdata.urllib.request, "urlopen", lambda url, **kw: _Response(b"not the archive"))
    members = realdata.PACKAGES["pytigre==0.1.8"]
    assert realdata.fetch_package("pytigre==0.1.8", members) is False
    out = capsys.readouterr().out
    assert f"sha256 {hashlib.sha256(b'not the archive').hexdigest()} differs" in out
    assert not (tmp_path / "real" / "tigre_head.mat").exists()


@pytest.fixture(scope="module")
def head():
    require((realdata.data_dir() / realdata.HEAD["file"]).exists(),
            "the real head is missing: run `xtomo fetch-data`")
    return realdata.head(64)


def test_head_is_a_dry_skull_fitted_like_every_real_volume(head):
    assert head.shape == (64, 64, 64) and head.dtype == torch.float32
    assert 0.7 < float(head.max()) <= 1.0                 # dense bone near the file's top value
    bone = head > 0.05
    assert 0.005 < float(bone.float().mean()) < 0.1       # thin shells, no soft tissue filling the head
    z, y, x = torch.meshgrid(*[torch.arange(64) + 0.5 - 32] * 3, indexing="ij")
    assert float(((z**2 + y**2 + x**2).sqrt()[bone]).max()) <= io.FIT_RADIUS * 64 + 1   # inside the fit sphere


def test_head_is_in_the_canonical_frame(head):
    """x across (the skull is mirror-symmetric in x, not in y or z); z up and y forward: below the
    middle the face (maxilla, teeth) puts more bone in front; above it the vault reaches further back."""
    def mirrored(axis):
        return float((head * head.flip(axis)).sum() / (head * head).sum())
    assert mirrored(2) > 2 * max(mirrored(1), mirrored(0))
    lower, upper = head[:32], head[32:]
    assert float(lower[:, 32:].sum()) > 1.2 * float(lower[:, :32].sum())   # 1.5 measured at 128^3
    assert float(upper[:, :32].sum()) > 1.2 * float(upper[:, 32:].sum())   # 1.4 measured at 128^3


def test_the_head_as_ct_numbers_is_the_same_dry_skull():
    """A reader's CT in HU goes through ``io.HU_WINDOW``: the head given as CT numbers, soft tissue
    and all, loads as the dry skull ``head`` is (both as scanned), its densities scaled by one factor
    (attenuation 1000 / water over the window's top, hi + 1000), not thinned by an offset."""
    as_ct = io.prepare_volume(realdata.head_hu(), 64, source="head in HU")
    factor = 1000 / (realdata.HEAD_WATER * (io.HU_WINDOW[1] + 1000))
    assert torch.allclose(as_ct, realdata.head(64, upright=False) * factor, atol=1e-5)


def _deb(files: dict[str, bytes]) -> bytes:
    """A Debian package as ``dpkg-deb`` lays it out: an ar archive of a version, a control and a data tar."""
    import tarfile

    data = _bytes.BytesIO()
    with tarfile.open(fileobj=data, mode="w:xz") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, _bytes.BytesIO(content))
    out = b"!<arch>\n"
    for name, content in (("debian-binary", b"2.0\n"), ("control.tar.xz", b"odd"), ("data.tar.xz", data.getvalue())):
        out += f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(content):<10}`\n".encode() + content
        out += b"\n" * (len(content) % 2)            # members are padded to an even length
    return out


def test_a_debian_package_is_fetched_like_any_archive(tmp_path, monkeypatch):
    """The second head comes from Debian's archive: its data tar is opened inside the ar archive, past
    an odd-length member, and only the listed member is kept."""
    member, name = next(iter(realdata.PACKAGES["invesalius-examples==3.1.99998-4"].items()))
    package = _deb({member: b"the project", "./usr/share/other": b"not listed"})
    url = realdata.ARCHIVES["invesalius-examples==3.1.99998-4"][0]
    monkeypatch.setitem(realdata.ARCHIVES, "invesalius-examples==3.1.99998-4",
                        (url, hashlib.sha256(package).hexdigest()))
    monkeypatch.setenv("XTOMO_DATA", str(tmp_path / "real"))
    monkeypatch.setattr(realdata.urllib.request, "urlopen", lambda url, **kw: _Response(package))
    assert realdata.fetch_package("invesalius-examples==3.1.99998-4", {member: name}) is True
    assert [p.name for p in (tmp_path / "real").iterdir()] == [name]
    assert (tmp_path / "real" / name).read_bytes() == b"the project"


@pytest.fixture(scope="module")
def second_head():
    require((realdata.data_dir() / realdata.SECOND_HEAD["file"]).exists(),
            "the second real head is missing: run `xtomo fetch-data`")
    return realdata.second_head(64)


def test_the_second_head_is_a_ct_without_its_head_holder(second_head):
    """CT numbers at the file's voxel size; bone-dense voxels are one piece, the skull's: the holder
    behind the head (two arcs apart from it) is gone, while the skull (469,000 voxels) is all kept."""
    from scipy import ndimage

    hu, spacing = realdata.second_head_hu()
    assert hu.shape == (108, 256, 256) and hu.dtype == np.float32
    assert spacing == pytest.approx((1.5, 0.957, 0.957), abs=1e-3)
    assert hu.min() == -1024 and hu.max() > 2000                      # air and dense bone, in HU
    bone = hu >= io.HU_WINDOW[0]
    assert ndimage.label(bone, structure=np.ones((3, 3, 3)))[1] == 1
    assert 450_000 < int(bone.sum()) < 500_000


def test_the_second_head_is_in_the_canonical_frame(second_head):
    """x across (mirror-symmetric in x only); z up and y forward: the lowest bone (the upper jaw and
    teeth) lies in front of the skull's centre, and the top of the vault behind the lowest bone."""
    def mirrored(axis):
        return float((second_head * second_head.flip(axis)).sum() / (second_head * second_head).sum())
    assert mirrored(2) > 1.5 * max(mirrored(1), mirrored(0))          # 0.92 against 0.34 and 0.54
    z = torch.nonzero(second_head > 0.05)[:, 0]
    low, high = int(z.min()), int(z.max())
    slab = max(2, (high - low + 1) // 8)                               # an eighth of the bone's height
    y = torch.arange(64) + 0.5 - 32

    def forward(rows):
        mass = second_head[rows].sum((0, 2))
        return float((mass * y).sum() / mass.sum())
    lowest, top, whole = slice(low, low + slab), slice(high + 1 - slab, high + 1), slice(low, high + 1)
    assert forward(lowest) > forward(whole) + 2          # 1.2 against -2.5 voxels, measured
    assert forward(top) < forward(lowest) - 2            # -2.0 against 1.2


def test_a_file_inside_a_tar_inside_a_source_archive_is_fetched(tmp_path, monkeypatch):
    """The phantom head lies in a tar.gz inside Debian's xz test-data archive (``OUTER!INNER``): only the inner
    file is kept, under its listed name, and an inner name the archive lacks is an error naming both."""
    import tarfile

    def tar(files: dict[str, bytes], mode: str) -> bytes:
        out = _bytes.BytesIO()
        with tarfile.open(fileobj=out, mode=mode) as archive:
            for name, content in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(content)
                archive.addfile(info, _bytes.BytesIO(content))
        return out.getvalue()

    requirement = "plastimatch==1.10.0+dfsg.2"
    (member, name), = realdata.PACKAGES[requirement].items()
    outer, inner = member.split("!")
    inside = tar({"other.mha": b"not this", inner: b"the phantom"}, "w:gz")
    source = tar({outer: inside, "plastimatch-1.10.0+dfsg.2/registration-tutorial.tar.gz": b"x"}, "w:xz")
    monkeypatch.setitem(realdata.ARCHIVES, requirement,
                        (realdata.ARCHIVES[requirement][0], hashlib.sha256(source).hexdigest()))
    monkeypatch.setenv("XTOMO_DATA", str(tmp_path / "real"))
    monkeypatch.setattr(realdata.urllib.request, "urlopen", lambda url, **kw: _Response(source))
    assert realdata.fetch_package(requirement, {member: name}) is True
    assert [p.name for p in (tmp_path / "real").iterdir()] == [name]
    assert (tmp_path / "real" / name).read_bytes() == b"the phantom"
    with pytest.raises(KeyError, match=re.escape(f"{outer} holds no file missing.mha")):
        realdata.fetch_package(requirement, {f"{outer}!missing.mha": "missing.mha"})


#: The fetched heads read as a reader's CT: name, file and where bone starts in its units (None: CT numbers)
READ_AS_GIVEN = {"phantom head": (realdata.PHANTOM_HEAD["file"], None)} | {
    name: (found["file"], found["bone"]) for name, found in realdata.UNSEEN_HEADS.items()}


@pytest.mark.parametrize("name", list(READ_AS_GIVEN))
def test_the_fetched_heads_are_whole_dry_skulls_in_the_canonical_frame(name):
    """The phantom and each unseen head read as a dry skull (thin shells, no soft tissue filling the head: the third
    head's 8-bit soft tissue is dropped by its ``bone``), mirror-symmetric across x only, set upright with a sure
    pose, the vault on top: its highest bone lies behind its lowest (the jaw and teeth in front)."""
    file, bone = READ_AS_GIVEN[name]
    require((realdata.data_dir() / file).exists(), f"the {name} is missing: run `xtomo fetch-data`")
    volume, _, pose = io.load_volume_pose(realdata.path(file), size=64, bone=bone, upright=True)
    assert 0.005 < float((volume > 0.05).float().mean()) < 0.1
    assert pose.margin >= 0.1

    def mirrored(axis):
        return float((volume * volume.flip(axis)).sum() / (volume * volume).sum())
    assert mirrored(2) > 1.5 * max(mirrored(1), mirrored(0))
    bone = torch.nonzero(volume > 0.05).float()
    low, high = bone[:, 0].min(), bone[:, 0].max()
    assert bone[bone[:, 0] > high - 4, 1].mean() < bone[bone[:, 0] < low + 4, 1].mean()
    with pytest.raises(ValueError, match="no head named 'fourth head'"):
        realdata.unseen_head("fourth head")
