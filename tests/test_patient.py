"""The patient's bone of a clinical CT: the table and head holder go, anatomy and dry skulls stay."""
import warnings

import numpy as np
import pytest
import torch

from xtomo.cli import main
from xtomo.data import io, patient, realdata

N = 80


def _head(holder: str | None = None, soft: bool = True, spacing=(1.0, 1.0, 1.0)) -> np.ndarray:
    """CT numbers of a round head (mm, ``spacing`` per axis): skin and brain (water), a skull shell and a separate
    bone piece inside (a jaw); below it a head holder of 400 HU, apart (``"apart"``) or touching the skin over a
    small patch."""
    z, y, x = np.meshgrid(*(np.arange(round(N / s)) * s for s in spacing), indexing="ij")
    r = np.sqrt((z - 44) ** 2 + (y - N / 2) ** 2 + (x - N / 2) ** 2)
    hu = np.full(r.shape, -1000.0, np.float32)
    if soft:
        hu[r < 30] = 0.0
    hu[(r >= 24) & (r < 28)] = 1200.0
    hu[np.sqrt((z - 44) ** 2 + (y - 52) ** 2 + (x - 40) ** 2) < 5] = 900.0
    if holder is not None:
        hu[(z >= 3) & (z < 9) & (abs(y - N / 2) < 20) & (abs(x - N / 2) < 20)] = 400.0
        if holder == "touching":
            hu[(z >= 8) & (z < 15) & (abs(y - N / 2) < 1.5) & (abs(x - N / 2) < 1.5)] = 400.0  # a post up to the skin
    return hu


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (3.0, 1.0, 1.0)], ids=["isotropic", "thick slices"])
@pytest.mark.parametrize("holder", ["apart", "touching"])
def test_the_head_holder_goes_and_the_anatomy_stays(holder, spacing):
    hu = _head(holder, spacing=spacing)
    bone = hu >= io.HU_WINDOW[0]
    kept = patient.patient_bone(hu, bone, spacing)
    assert np.count_nonzero(bone & ~kept) > 1_000, "the holder is not the patient's bone"
    assert np.array_equal(kept, _head(spacing=spacing) >= io.HU_WINDOW[0]), "the skull and the separate jaw stay"


def test_a_dry_skull_in_air_comes_back_unchanged():
    hu = _head(soft=False)
    bone = hu >= io.HU_WINDOW[0]
    assert patient.body(hu, bone) is None
    assert np.array_equal(patient.patient_bone(hu, bone), bone)


def test_a_ct_with_a_holder_is_framed_as_the_head_alone():
    """Without the body, the holder's bone-dense plastic would be skull: the fit would frame both."""
    with_holder = io.prepare_volume(_head("touching"), 48)
    alone = io.prepare_volume(_head(), 48)
    assert torch.equal(with_holder, alone)


def test_bad_input_is_named():
    hu = _head()
    with pytest.raises(ValueError, match="patient_bone"):
        patient.patient_bone(hu, hu[:-1] > 0)
    with pytest.raises(ValueError, match="parting_mm"):
        patient.patient_bone(hu, hu > 0, parting_mm=0.0)
    with pytest.raises(ValueError, match="spacing"):
        patient.patient_bone(hu, hu > 0, spacing=(1.0, 0.0, 1.0))


def test_the_blind_head_as_scanned_reads_as_its_curated_volume():
    """The second real head's scan holds its head holder (two arcs behind the head); read as a reader's CT
    is, it comes out as the volume whose holder was taken out by hand, to the odd bone island inside."""
    try:
        hu, spacing = realdata.second_head_scan()
    except FileNotFoundError as missing:
        pytest.skip(str(missing))
    as_read = io.prepare_volume(hu, 48, spacing=spacing)
    curated = realdata.second_head(48, upright=False)
    assert float((as_read - curated).abs().mean()) < 1e-4
    bone = hu >= io.HU_WINDOW[0]
    kept = patient.patient_bone(hu, bone, spacing)
    assert bone.sum() - kept.sum() > 40_000, "the holder's two arcs (about 24,000 voxels each) go"


def _values(hu: np.ndarray) -> np.ndarray:
    """A CT stored in other units: attenuation relative to air, water at 0.4 (as the first real head is stored)."""
    return np.clip((hu + 1000.0) / 1000.0 * 0.4, 0.0, None).astype(np.float32)


def test_soft_tissue_is_found_where_a_scan_holds_it():
    level = patient.soft_tissue(_values(_head()))
    assert level == pytest.approx(0.4, abs=0.02)
    assert patient.soft_tissue(_values(_head(soft=False))) is None, "a dry skull's bone spreads over its range"
    r = np.sqrt(((np.mgrid[:40, :40, :40] - 20.0) ** 2).sum(0))
    assert patient.soft_tissue((r < 15).astype(np.float32)) is None, "a uniform phantom is not soft tissue"
    assert patient.soft_tissue(np.zeros((4, 4, 4))) is None


def test_a_scan_with_soft_tissue_in_other_units_is_named_and_its_dry_skull_is_not(tmp_path):
    with pytest.warns(UserWarning, match="soft tissue"):
        io.prepare_volume(_values(_head()), 32, source="head.npy")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        io.prepare_volume(_values(_head()), 32, bone=0.5)  # its dry skull, asked for
        io.prepare_volume(_head(), 32)  # CT numbers: the bone window leaves the dry skull anyway


def test_the_command_line_says_so_in_one_line(tmp_path, capsys):
    path = tmp_path / "head.npy"
    np.save(path, _values(_head()))
    assert main(["render", str(path), "--mode", "xray", "--out", str(tmp_path / "x.png")]) == 0
    err = capsys.readouterr().err
    assert err.count("xtomo: warning:") == 1 and "soft tissue" in err and "UserWarning" not in err


def test_ct_numbers_stored_with_1024_added_read_as_the_same_head():
    """Unsigned CT data (air 0, water 1024, as a raw copy of a DICOM with intercept -1024 holds them) read as the
    same density cube as the CT numbers, with a warning saying so; other units with soft tissue elsewhere do not."""
    hu = _head()
    stored = (hu + patient.CT_OFFSET).astype(np.uint16)

    def offset(values):
        return patient.stored_offset(values, patient.soft_tissue(values))

    assert offset(stored) == patient.CT_OFFSET
    assert offset(stored.astype(np.float32)) == 0, "floats say their own units"
    assert offset((hu + 2000).astype(np.uint16)) == 0, "soft tissue at 2000: not CT numbers + 1024"
    assert offset(np.where(hu > 500, 1000, 0).astype(np.uint16)) == 0, "no soft tissue"
    with pytest.warns(UserWarning, match="stored with 1024 added"):
        read = io.prepare_volume(stored, 32, fit=False)
    assert torch.equal(read, io.prepare_volume(hu, 32, fit=False))
    with pytest.warns(UserWarning, match="stored with 1024 added"):
        assert torch.equal(io.prepare_volume(stored, 32, fit=False, bone=1000), io.prepare_volume(hu, 32, fit=False,
                                                                                                 bone=1000))
