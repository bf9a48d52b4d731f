"""Shared fixtures: every test writes its artifacts into a temporary folder."""
import pytest
import torch

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


@pytest.fixture(autouse=True)
def _artifacts(tmp_path, monkeypatch):
    """Keep chapter artifacts of a test out of the repository."""
    monkeypatch.setenv("XTOMO_ARTIFACTS", str(tmp_path / "artifacts"))


def ball(size: int, radius: float, centre=(0.0, 0.0, 0.0), supersample: int = 4) -> torch.Tensor:
    """A uniform ball of density 1 with exact partial-volume voxels along z.

    Each voxel holds the fraction of it inside the ball: exact along z (the chord's overlap with
    the voxel), averaged over ``supersample``^2 sub-columns across x and y.
    """
    n, h = size * supersample, 1.0 / size
    t = (torch.arange(n, dtype=torch.float64) + 0.5) / n - 0.5
    y, x = torch.meshgrid(t - centre[1], t - centre[0], indexing="ij")
    half = (radius**2 - x**2 - y**2).clamp_min(0).sqrt()  # half-chord of every sub-column
    lo, hi = centre[2] - half, centre[2] + half
    out = torch.empty(size, size, size, dtype=torch.float64)
    for k in range(size):
        z0 = k * h - 0.5
        overlap = (torch.minimum(hi, torch.tensor(z0 + h)) - torch.maximum(lo, torch.tensor(z0))).clamp_min(0)
        out[k] = torch.nn.functional.avg_pool2d((overlap / h)[None], supersample)[0]
    return out.float()
