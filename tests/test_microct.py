"""The simulated micro-CT: it reduces to Beer–Lambert where it should and departs from it as physics does."""
import math

import pytest
import torch

from xtomo.imaging import microct as M
from xtomo.imaging import xray


def slab_volume(n=32):
    """Soft tissue with a bone rod inside, inside the inscribed sphere."""
    c = (torch.arange(n) + 0.5) / n - 0.5
    z, y, x = torch.meshgrid(c, c, c, indexing="ij")
    body = ((x ** 2 + z ** 2) < 0.3 ** 2) & (y.abs() < 0.3)
    rod = ((x - 0.05) ** 2 + z ** 2 < 0.06 ** 2) & (y.abs() < 0.25)
    soft = 0.25 * body.float()
    mineral = 0.5 * rod.float()
    return soft, mineral


def test_monochromatic_ideal_scanner_is_beer_lambert():
    soft, mineral = slab_volume()
    d = xray.direction(40.0, 35.0)
    mono = M.Scanner(monochromatic=True).ideal()
    alpha = M.expose(soft, mineral, d, mono, n_steps=32)
    expected = xray.simulate(soft + mineral, d, n_steps=32)
    assert torch.allclose(alpha, expected, atol=1e-6)


def test_beam_hardening_lowers_the_effective_attenuation_of_thick_paths():
    sc = M.Scanner()
    lengths = torch.tensor([1e-4, 0.1, 0.5, 1.0])
    soft = M.effective_attenuation(lengths, "soft", sc)
    bone = M.effective_attenuation(lengths, "bone", sc)
    assert (soft[1:] < soft[:-1]).all() and (bone[1:] < bone[:-1]).all()
    assert soft[0] == pytest.approx(1.0, abs=0.01)          # thin water: the reference energy's value
    assert (bone[0] - bone[-1]) > (soft[0] - soft[-1])      # bone hardens the beam more
    mono = M.effective_attenuation(lengths, "soft", M.Scanner(monochromatic=True))
    assert torch.allclose(mono, torch.ones_like(mono), atol=1e-9)


def test_bone_absorbs_soft_photons_relatively_more():
    sc = M.Scanner()
    e = torch.tensor([15.0, 30.0, 45.0])
    assert (M.relative_attenuation("bone", e, sc) > M.relative_attenuation("soft", e, sc))[0]
    assert (M.relative_attenuation("bone", e, sc)[1:] < M.relative_attenuation("bone", e, sc)[:-1]).all()
    assert 10 < M.reference_energy(sc) < sc.kvp


def test_spectrum_is_normalised_and_filtered():
    e, w = M.spectrum(M.Scanner())
    assert float(w.sum()) == pytest.approx(1.0) and (w >= 0).all()
    _, hard = M.spectrum(M.Scanner(filter_mm=2.0))
    mean = float((e * w).sum())
    assert float((e * hard).sum()) > mean    # more aluminium, harder beam


def test_water_correction_inverts_the_water_curve():
    sc = M.Scanner()
    lengths = torch.linspace(0.05, 2.0, 20, dtype=torch.float64)
    measured = M.log_transform(M.transmission(lengths, torch.zeros_like(lengths), sc.ideal()), sc.ideal())
    assert (measured < lengths).all()                       # hardening: too little attenuation
    assert torch.allclose(M.linearize(measured, sc), lengths, atol=1e-4)


def test_bone_correction_inverts_the_bone_curve_and_unharden_gives_back_beer_lambert():
    """A dry skull's polychromatic x-ray (ideal detector), unhardened with its own tube, is the Beer–Lambert x-ray
    at the reference energy; a monochromatic tube at that energy leaves an x-ray as it is; a wrong tube gets part
    of the way."""
    sc = M.Scanner()
    bone = torch.linspace(0.02, 1.5, 30, dtype=torch.float64)
    hardened = M.transmission(torch.zeros_like(bone), bone, sc.ideal())
    assert (M.log_transform(hardened, sc) < bone).all()
    assert torch.allclose(M.linearize(M.log_transform(hardened, sc), sc, "bone"), bone, atol=1e-4)
    beer_lambert = torch.exp(-sc.chi * bone)
    assert torch.allclose(M.unharden(hardened, sc), beer_lambert, rtol=1e-4, atol=1e-6)
    mono = M.Scanner(monochromatic=True)
    seen = beer_lambert > 1e-4                                  # above the half-photon floor of log_transform
    assert torch.allclose(M.unharden(beer_lambert, mono)[seen], beer_lambert[seen], rtol=1e-4, atol=1e-6)
    wrong = M.unharden(hardened, M.Scanner(kvp=70, filter_mm=2.5))
    assert ((wrong - beer_lambert).abs() < (hardened - beer_lambert).abs() + 1e-9).all()
    with pytest.raises(ValueError, match="material must be"):
        M.linearize(bone, sc, "metal")


def test_detector_noise_scatter_and_blur():
    primary = torch.full((64, 64), 0.3)
    primary[20:40, 20:40] = 0.05
    sc = M.Scanner(photons=1e4)
    a = M.detect(primary, sc, seed=1)
    assert torch.equal(a, M.detect(primary, sc, seed=1))
    assert not torch.equal(a, M.detect(primary, sc, seed=2))
    assert float(a.mean()) > float(primary.mean())           # scatter adds light
    quiet = M.detect(primary, M.Scanner(photons=None, scatter=0.0, blur=0.0))
    assert torch.equal(quiet, primary)
    flat = M.detect(torch.full((128, 128), 0.5), M.Scanner(photons=1e4, scatter=0.0, blur=0.0), seed=3)
    assert float(flat.std()) == pytest.approx(math.sqrt(0.5 / 1e4), rel=0.1)   # Poisson: var = mean / N


def test_acquisition_differs_from_beer_lambert_measurably():
    soft, mineral = slab_volume()
    d = xray.direction(0.0, 90.0)
    real = M.expose(soft, mineral, d, M.Scanner(), n_steps=32)
    model = xray.simulate(soft + mineral, d, n_steps=32)
    diff = M.difference(real, model)
    assert diff["relative"] > 0.01 and diff["psnr"] < 60
    assert M.difference(model, model)["psnr"] == math.inf


def test_ideal_monochromatic_scan_reconstructs_the_volume():
    soft, mineral = slab_volume(32)
    mono = M.Scanner(monochromatic=True).ideal()
    scan = M.scan(soft, mineral, mono, 60, detector=32)
    assert scan.alpha.shape == (32, 60, 32)
    for method in ("fbp", "sart"):
        rec = M.reconstruct_scan(scan, method, water_correction=False)
        truth = soft + mineral
        assert float((rec - truth).square().mean().sqrt()) < 0.05
        assert float(rec.sum()) == pytest.approx(float(truth.sum()), rel=0.05)


def test_polychromatic_scan_shows_cupping_that_water_correction_reduces():
    soft, _ = slab_volume(32)
    sc = M.Scanner().ideal()
    scan = M.scan(soft * 2, torch.zeros_like(soft), sc, 60, detector=32)   # a thick soft-tissue body
    raw = M.reconstruct_scan(scan, "fbp", water_correction=False)
    fixed = M.reconstruct_scan(scan, "fbp", water_correction=True)
    inside = soft > 0
    assert float(raw[inside].mean()) < 0.97 * 0.5
    assert abs(float(fixed[inside].mean()) - 0.5) < abs(float(raw[inside].mean()) - 0.5)


def test_the_detector_can_be_coarser_than_the_phantom():
    soft, mineral = slab_volume(32)
    scan = M.scan(soft, mineral, M.Scanner(monochromatic=True).ideal(), 30, detector=16)
    assert scan.alpha.shape == (16, 30, 16)
    with pytest.raises(ValueError, match="multiple"):
        M.scan(soft, mineral, M.Scanner(), 30, detector=20)


def test_bad_scanners_are_named():
    with pytest.raises(ValueError, match="kvp"):
        M.Scanner(kvp=400)
    with pytest.raises(ValueError, match="photons"):
        M.Scanner(photons=0)
    with pytest.raises(ValueError, match="method"):
        M.reconstruct_scan(M.scan(*slab_volume(16), M.Scanner(), 8), "art")
