"""Procedural crania: deterministic, inside the sphere, the same anatomy at every resolution."""
import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from xtomo.specimens import crania, proportions
from xtomo.specimens.proportions import DENSITY
from xtomo.specimens.skull_plan import skull_layout

# above the densest bone (petrous) and below enamel: voxels wholly inside a tooth
TEETH = (DENSITY["petrous"] + DENSITY["tooth"]) / 2


@pytest.fixture(scope="module")
def species():
    return crania.catalog(175, seed=0)


def test_catalog_spans_the_families_and_is_seeded(species):
    assert len(species) == 175
    families = {f for o in crania.ORDERS.values() for f in o["families"]}
    assert {s.family for s in species} == families
    assert len({s.name for s in species}) == 175
    again = crania.catalog(175, seed=0)
    assert [s.params for s in again] == [s.params for s in species]
    assert [s.params for s in crania.catalog(175, seed=1)] != [s.params for s in species]
    # a small catalogue still spans several orders
    assert len({s.order for s in crania.catalog(12)}) >= 5


def test_split_holds_out_species(species):
    train, val = crania.split(species, 20, seed=0)
    assert len(val) == 20 and len(train) == 155
    assert not set(train) & set(val)
    assert sorted(train + val) == list(range(175))
    assert crania.split(species, 20, seed=0) == (train, val)
    with pytest.raises(ValueError, match="n_val"):
        crania.split(species, 175)


def test_skull_is_deterministic_and_individuals_differ(species):
    a = crania.skull(species[3], 32)
    assert a.dtype == torch.float32 and a.shape == (32, 32, 32)
    assert torch.equal(a, crania.skull(species[3], 32))
    assert not torch.equal(a, crania.skull(species[3], 32, individual_index=1))
    assert not torch.equal(a, crania.skull(species[4], 32))


@pytest.mark.parametrize("k", [0, 5, 11, 17])
def test_skull_inside_inscribed_sphere_and_in_range(species, k):
    n = 48
    v = crania.skull(species[k], n)
    assert 0 <= v.min() and v.max() <= 1
    t = (torch.arange(n) + 0.5) / n - 0.5
    z, y, x = torch.meshgrid(t, t, t, indexing="ij")
    r = (x**2 + y**2 + z**2).sqrt()
    assert v[r > 0.5 - 0.5 / n].abs().max() == 0
    assert v.sum() > 0.005 * n**3  # not empty


def test_same_anatomy_at_every_resolution(species):
    """A 128^3 skull averaged down to 64^3 is the 64^3 skull, up to anti-aliasing."""
    fine = F.avg_pool3d(crania.skull(species[8], 128)[None, None], 2)[0, 0]
    coarse = crania.skull(species[8], 64)
    assert coarse.sum().item() == pytest.approx(fine.sum().item(), rel=0.08)
    corr = torch.corrcoef(torch.stack([fine.flatten(), coarse.flatten()]))[0, 1]
    assert corr > 0.95
    # below 64^3 voxels are box-filtered from 64^3, so the anatomy cannot drift
    assert torch.allclose(crania.skull(species[8], 32), F.avg_pool3d(coarse[None, None], 2)[0, 0], atol=1e-6)


def test_tissues_cortical_cancellous_teeth(species):
    v = crania.skull(species[0], 96)
    bone = v[v > 0.05]
    cortical, teeth = DENSITY["cortical"], TEETH
    assert (v > teeth).sum() > 20                       # teeth, denser than any bone
    # cortical shells: the density varies by +-14 % over the skull (crania._tissues)
    assert ((bone > 0.85 * cortical) & (bone < 1.15 * cortical)).float().mean() > 0.05
    assert ((bone > 0.15) & (bone < 0.5)).float().mean() > 0.05  # cancellous bone and partial voxels


def test_canonical_orientation(species):
    """Teeth sit forward (+y) of and below (-z) the braincase in every family."""
    by_family = {}
    for s in species:
        by_family.setdefault(s.family, s)
    n = 80  # at 64^3 the smallest teeth (a koala's) are never a whole voxel
    t = (torch.arange(n) + 0.5) / n - 0.5
    z, y, x = torch.meshgrid(t, t, t, indexing="ij")
    for s in by_family.values():
        v = crania.skull(s, n)
        w = v / v.sum()
        teeth = (v > TEETH).float()
        assert teeth.sum() > 0, s.name
        teeth = teeth / teeth.sum()
        assert (teeth * y).sum() > (w * y).sum(), s.name
        assert (teeth * z).sum() < (w * z).sum(), s.name
        # bilateral symmetry, up to the lean of its textured walls (the real head: 0.010)
        assert abs((w * x).sum()) < 0.02, s.name


def test_bad_arguments_are_named(species):
    with pytest.raises(ValueError, match="skull: size must be an integer >= 8"):
        crania.skull(species[0], 4)
    with pytest.raises(ValueError, match="individual must be an integer >= 0"):
        crania.skull(species[0], 16, individual_index=-1)
    with pytest.raises(ValueError, match="catalog: n must be an integer >= 1"):
        crania.catalog(0)
    with pytest.raises(ValueError, match="seed must be an integer"):
        crania.catalog(3, seed=1.5)
    with pytest.raises(ValueError, match="unknown family"):
        crania.family_template("Felis")


def test_individuals_keep_counts_and_switches(species):
    """Jitter varies sizes only: tooth counts and on/off parts are the species' own."""
    for s in species[:20]:
        for k in (1, 2):
            p = crania.individual(s, k)
            assert p.cheek_teeth == s.params.cheek_teeth and isinstance(p.cheek_teeth, int)
            assert (p.rodent_incisors, p.postorbital_bar, p.blowhole) == (
                s.params.rodent_incisors, s.params.postorbital_bar, s.params.blowhole)
            assert p.male == (k % 2 == 0) and 0.86 <= p.size <= 1.0
    assert crania.individual(species[0]).size == 1.0
    # every order and family overrides only proportions that exist
    for order, spec in crania.ORDERS.items():
        for family in spec["families"]:
            assert crania.family_template(family).params == proportions.template(order, family)


def test_a_primate_floor_falls_behind_and_the_spine_enters_from_below():
    """A primate's cranial floor is level in front and ``base_drop`` half-heights lower at the back (the
    posterior fossa; bone there, none under it), and the foramen magnum opens through that low floor,
    under the braincase; a carnivore's floor stays level, its foramen magnum at the back."""
    for family, drop in (("Cercopithecidae", True), ("Canidae", False)):
        p = crania.individual(crania.family_template(family))
        lay, (bl, bh) = skull_layout(p), (p.braincase_length, p.braincase_height)
        front, back = float(lay.floor_at(0.3 * bl)), float(lay.floor_at(-0.7 * bl))
        assert front == pytest.approx(-p.braincase_floor * bh)
        assert back == pytest.approx(front - p.base_drop * bh) and (back < front - 0.3 * bh) == drop
        z = torch.linspace(-1.2 * bh, 0.0, 600)

        def bone_on(y, p=p, z=z):
            line = (torch.zeros(600, 1, 1), torch.full((600, 1, 1), y), z[:, None, None])
            return crania.cranium(p, line, voxel=0.001, texture=False).flatten() > 0.2

        floor = float(lay.floor_at(-0.1 * bl))   # further back: the foramen, then the ellipsoid's own floor
        at = bone_on(-0.1 * bl)
        assert at[(z - floor).abs() < p.braincase_wall / 2 - 0.001].all() and not at[z < floor - 0.03].any()
        (fy, fz), _ = lay.foramen()
        assert (fy > -0.5 * bl) == drop and not bone_on(fy)[(z - fz).abs() < 0.01].any()


def test_a_human_has_its_orbits_low_and_a_face_under_them():
    """Crania v6 on: the Hominidae template's forward-facing orbits sit ``orbit_drop`` half-heights lower than a
    monkey's, in the lower front of a braincase narrower than it is long, and are hollow; the face's top
    (the rostrum's base section) reaches up to them."""
    human, monkey = (crania.individual(crania.family_template(f)) for f in ("Hominidae", "Cercopithecidae"))
    (_, _, oz, orr), (_, _, mz, _) = skull_layout(human).orbit, skull_layout(monkey).orbit
    bh = human.braincase_height
    assert oz / bh == pytest.approx(mz / monkey.braincase_height - human.orbit_drop) and oz < -0.3 * bh
    assert human.braincase_width < 0.85 * human.braincase_length
    lay = skull_layout(human)
    (_, zs), (_, sh0) = lay.snout_base, lay.base_section
    assert zs + sh0 > oz - orr   # the face reaches the orbits: no gap of air between them
    ox, oy = lay.orbit[:2]
    centre = (torch.full((1, 1, 1), ox), torch.full((1, 1, 1), oy), torch.full((1, 1, 1), oz))
    assert float(crania.cranium(human, centre, voxel=0.001, texture=False)) == 0.0


def test_the_first_hominid_is_a_human_near_its_template():
    """Crania v6 on: the catalogue's first Hominidae species (Homo sapiens) is its family's template, unblended,
    every size within 4 sigma of its 4 % spread; the family's other species spread as every species does."""
    hominids = [s for s in crania.catalog() if s.family == "Hominidae"]
    t = crania.family_template("Hominidae").params
    def spread(s):
        return max(abs(math.log(getattr(s.params, f.name) / getattr(t, f.name)))
                   for f in dataclasses.fields(t) if getattr(t, f.name) and f.name != "cheek_teeth")
    assert spread(hominids[0]) < 0.16 and min(spread(s) for s in hominids[1:]) > 0.16
    assert hominids[0].name == "Homo sapiens" and hominids[1].name == "Hominidae sp. 02"


def test_the_braincase_is_a_dome_over_a_flat_floor(species):
    """On the midline, halfway back, a vertical line through the untextured skull meets the vault above
    and the cranial floor ``braincase_floor`` half-heights below the centre, and no bone below the floor
    (a whole ellipsoid, as the braincase was before crania v4, puts its wall there, at 0.87 half-heights).
    Families whose floor falls behind (primates, ``base_drop``) are the test above's."""
    by_family = {}
    for s in species:
        if not s.params.base_drop:
            by_family.setdefault(s.family, s)
    assert len(by_family) >= 19   # every family outside the primates
    for s in by_family.values():
        p = crania.individual(s)
        bl, bh, wall = p.braincase_length, p.braincase_height, p.braincase_wall
        z = torch.linspace(-1.2 * bh, 1.2 * bh, 1200)
        line = (torch.zeros(1200, 1, 1), torch.full((1200, 1, 1), -0.5 * bl), z[:, None, None])  # a (z, y, x) grid
        bone = crania.cranium(p, line, voxel=0.001, texture=False).flatten() > 0.2
        floor = -p.braincase_floor * bh
        inside, outside = wall / 2 - 0.001, wall + 0.03  # the wall's half, and the smooth union with the snout
        assert bone[(z - floor).abs() < inside].all(), f"{s.name}: no cranial floor"
        assert bone[z > 0].any(), f"{s.name}: no vault"
        assert not bone[z < floor - outside].any(), f"{s.name}: bone below the cranial floor"


def test_a_flexed_floor_falls_in_two_steps_onto_the_braincase_bottom():
    """Crania v7: a human's cranial floor falls from the anterior fossa to the middle one at the sphenoid's
    ridge (most of ``base_drop``, steeply), then on into the posterior fossa; where it falls below the braincase
    ellipsoid, ``bottom_at`` is the ellipsoid's own lower wall, and the foramen magnum opens through that."""
    p = crania.individual(crania.family_template("Hominidae"))
    lay, (bl, bh) = skull_layout(p), (p.braincase_length, p.braincase_height)
    front, middle, back = (float(lay.floor_at(f * bl)) for f in (0.3, 0.0, -0.6))
    assert front - middle == pytest.approx(0.7 * p.base_drop * bh)
    assert middle - back == pytest.approx(0.3 * p.base_drop * bh)
    # the slope is the floor's derivative (a finite difference), steepest on the sphenoid's ridge
    y = torch.linspace(-0.9 * bl, 0.9 * bl, 721, dtype=torch.float64)
    numeric = (lay.floor_at(y + 1e-6) - lay.floor_at(y - 1e-6)) / 2e-6
    assert torch.allclose(lay.floor_slope(y), numeric, atol=1e-4 * p.base_drop * bh / bl)
    assert float(lay.floor_slope(torch.tensor(0.2 * bl))) > 2 * float(lay.floor_slope(torch.tensor(-0.3 * bl)))
    ellipsoid_bottom = -bh * math.sqrt(1 - 0.5**2)
    assert back < ellipsoid_bottom and lay.bottom_at(0.0, -0.5 * bl) == pytest.approx(ellipsoid_bottom)
    assert lay.bottom_at(0.0, 0.3 * bl) == pytest.approx(front)
    (fy, fz), _ = lay.foramen()
    assert fz == pytest.approx(lay.bottom_at(0.0, fy))


def test_a_jawless_individual_lacks_its_mandible_and_lower_teeth_only():
    """The first individual of a species always has its mandible; of the others about ``JAWLESS`` do not.
    Without it the bone under the upper teeth (the jaw and the lower teeth) is gone, and the skull above
    the jaw's reach, drawn from the same proportions, is unchanged."""
    species = crania.catalog(40)
    assert all(crania.individual(s).mandible for s in species)
    share = sum(not crania.individual(s, k).mandible for s in species for k in range(1, 11)) / 400
    assert abs(share - crania.JAWLESS) < 0.08
    human = crania.family_template("Hominidae")
    whole = dataclasses.replace(crania.individual(human, 1), mandible=True)
    cut = dataclasses.replace(whole, mandible=False)
    grid = torch.linspace(-0.6, 0.6, 72)
    x = torch.meshgrid(grid, grid, grid, indexing="ij")[::-1]   # (x, y, z) of a (z, y, x) grid
    a, b = (crania.cranium(q, x, voxel=1.2 / 72, texture=False) for q in (whole, cut))
    lay = skull_layout(whole)
    below = x[2] < lay.occlusal(lay.snout_tip[0]) - whole.molar_height   # under the upper teeth's crowns
    assert float(a[below].sum()) > 20 * float(b[below].sum()) + 1.0   # what is left: the occipital condyles
    above = x[2] > lay.orbit[2]   # above the orbits' centres, higher than the jaw's joints reach
    assert torch.allclose(a[above], b[above], atol=1e-5)
