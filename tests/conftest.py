"""Shared fixtures: every test writes its artifacts into a temporary folder."""
import pytest
import torch

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


@pytest.fixture(autouse=True)
def _artifacts(tmp_path, monkeypatch):
    """Keep chapter artifacts of a test out of the repository."""
    monkeypatch.setenv("XTOMO_ARTIFACTS", str(tmp_path / "artifacts"))
