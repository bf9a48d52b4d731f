"""DICOM as people have it: compressed transfer syntaxes, files without the .dcm name, DICOMDIR,
multi-frame radiographs."""
from __future__ import annotations

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.fileset import FileSet
from pydicom.uid import (
    CTImageStorage,
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
    generate_uid,
)

from xtomo.data.io import load_volume, load_xray

PIXELS = (np.add.outer(np.arange(64) * 90, np.arange(48) * 40) % 4096).astype(np.uint16)  # 64 x 48, 12 bits


def dataset(pixels: np.ndarray, sop=DigitalXRayImageStorageForPresentation, **tags) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = sop, generate_uid()
    ds.PatientID, ds.PatientName, ds.StudyInstanceUID, ds.SeriesInstanceUID = "x", "x", "1.2.1", "1.2.3"
    ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber, ds.SeriesNumber = "20240101", "1200", "1", "1", 1
    ds.Modality = "DX" if sop == DigitalXRayImageStorageForPresentation else "CT"
    for name, value in tags.items():
        setattr(ds, name, value)
    ds.set_pixel_data(pixels, photometric_interpretation="MONOCHROME2", bits_stored=12)
    return ds


def jpeg_lossless(image: np.ndarray, precision: int = 16) -> bytes:
    """``image`` (unsigned) as a JPEG Lossless process 14, selection value 1 codestream.

    pydicom has no encoder for this syntax, so the test writes one: every difference category
    (0..16) gets a 5-bit Huffman code, the first row predicts from the left, the first column
    from above, the rest from the left.
    """
    rows, cols = image.shape
    x = image.astype(np.int64)
    predicted = np.empty_like(x)
    predicted[0, 0] = 1 << (precision - 1)
    predicted[0, 1:], predicted[1:, 0], predicted[1:, 1:] = x[0, :-1], x[:-1, 0], x[1:, :-1]
    bits = []
    for d in ((x - predicted + 32768) % 65536 - 32768).ravel():
        category = int(abs(d)).bit_length()
        bits.append(format(category, "05b"))
        if 0 < category < 16:
            bits.append(format(d if d > 0 else d - 1 + (1 << category), f"0{category}b")[-category:])
    stream = "".join(bits)
    stream += "1" * (-len(stream) % 8)
    data = bytes(int(stream[i:i + 8], 2) for i in range(0, len(stream), 8)).replace(b"\xff", b"\xff\x00")
    segment = lambda marker, body: marker + (len(body) + 2).to_bytes(2, "big") + body
    size = rows.to_bytes(2, "big") + cols.to_bytes(2, "big")
    sof = segment(b"\xff\xc3", bytes([precision]) + size + b"\x01\x01\x11\x00")
    dht = segment(b"\xff\xc4", b"\x00" + bytes([0, 0, 0, 0, 17] + [0] * 11) + bytes(range(17)))
    sos = segment(b"\xff\xda", b"\x01\x01\x00\x01\x00\x00")
    return b"\xff\xd8" + sof + dht + sos + data + b"\xff\xd9"


@pytest.mark.parametrize("syntax", [RLELossless, JPEGLSLossless, JPEG2000Lossless, JPEGLosslessSV1])
def test_each_compressed_transfer_syntax_loads(tmp_path, syntax):
    ds = dataset(PIXELS)
    plain = load_xray(_save(ds, tmp_path / "plain.dcm"))
    if syntax == JPEGLosslessSV1:
        ds.PixelData = encapsulate([jpeg_lossless(PIXELS)])
        ds["PixelData"].VR = "OB"
        ds.file_meta.TransferSyntaxUID = syntax
    else:
        ds.compress(syntax)
    path = _save(ds, tmp_path / "compressed.dcm")
    assert ds.file_meta.TransferSyntaxUID == syntax
    assert np.array_equal(load_xray(path).numpy(), plain.numpy())  # lossless: the same x-ray


def _save(ds: Dataset, path):
    ds.save_as(path, enforce_file_format=True)
    return path


def test_dicom_files_are_known_by_their_preamble_not_their_name(tmp_path):
    named = _save(dataset(PIXELS), tmp_path / "x.dcm")
    for name in ("IM0001", "radiograph.img"):
        (tmp_path / name).write_bytes(named.read_bytes())
        assert np.array_equal(load_xray(tmp_path / name).numpy(), load_xray(named).numpy())
    (tmp_path / "notes.txt").write_bytes(b"\0" * 128 + b"DICX" + b"\0" * 10)
    with pytest.raises(ValueError, match="unknown x-ray format '.txt'"):
        load_xray(tmp_path / "notes.txt")


def series(folder, n=6, named=lambda k: f"IM{k:04d}"):
    """A CT series of ``n`` axial slices (a ball) in ``folder``, files without an extension."""
    folder.mkdir(parents=True, exist_ok=True)
    z, y, x = np.mgrid[:n, :16, :16]
    ball = ((x - 7.5) ** 2 + (y - 7.5) ** 2 + ((z - (n - 1) / 2) * 2) ** 2 < 36) * 1500 + 24
    datasets = []
    for k in range(n):
        ds = dataset(ball[k].astype(np.uint16), sop=CTImageStorage, ImagePositionPatient=[0, 0, 2.0 * k],
                     ImageOrientationPatient=[1, 0, 0, 0, 1, 0], PixelSpacing=[1, 1], InstanceNumber=k + 1,
                     RescaleSlope=1, RescaleIntercept=-1024)
        datasets.append(ds)
        _save(ds, folder / named(k))
    return datasets


def test_a_series_of_files_without_extension_and_through_a_dicomdir(tmp_path):
    datasets = series(tmp_path / "plain")
    from_folder = load_volume(tmp_path / "plain", size=16)
    fs = FileSet()
    for ds in datasets:
        fs.add(ds)
    fs.write(tmp_path / "disc")
    for path in (tmp_path / "disc", tmp_path / "disc" / "DICOMDIR"):
        assert np.allclose(load_volume(path, size=16).numpy(), from_folder.numpy(), atol=1e-6)

    two = FileSet()
    for ds in datasets + series(tmp_path / "other", n=4):
        ds.SeriesInstanceUID = "1.2.3" if ds in datasets else "1.2.4"
        two.add(ds)
    two.write(tmp_path / "two")
    with pytest.raises(ValueError, match=r"DICOMDIR lists 2 series: 1\.2\.3 \(6 images\); 1\.2\.4 \(4 images\)"):
        load_volume(tmp_path / "two", size=16)


def test_a_multi_frame_radiograph_needs_its_frame_chosen(tmp_path):
    frames = np.stack([PIXELS, PIXELS[::-1], 4095 - PIXELS]).astype(np.uint16)
    path = _save(dataset(frames, NumberOfFrames=3), tmp_path / "cine.dcm")
    with pytest.raises(ValueError, match=r"holds 3 frames; choose the x-ray with frame= .*0 to 2"):
        load_xray(path)
    single = _save(dataset(PIXELS[::-1].copy()), tmp_path / "one.dcm")
    assert np.array_equal(load_xray(path, frame=1).numpy(), load_xray(single).numpy())
    with pytest.raises(ValueError, match="frame 3 does not exist; the file holds 3 frame"):
        load_xray(path, frame=3)
    png = tmp_path / "x.png"
    png.write_bytes(b"")
    with pytest.raises(ValueError, match="not one"):
        load_xray(_png(png), frame=0)


def _png(path):
    import imageio.v3 as iio
    iio.imwrite(path, (PIXELS // 16).astype(np.uint8))
    return path
