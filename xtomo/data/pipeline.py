"""Training samples made a whole batch at a time on the device that trains, from specimen volumes
that live there.

``XrayDataset`` makes one sample per call on CPU workers; at the paper's scale (256^2 x-rays of
128^3 volumes) that bounds a GPU's training at a few dozen samples per second. Here the canonical
volumes of the dataset's specimens are stacked once on the device (at the paper's scale, 175
volumes of 128^3 in float16: 0.7 GB), and each step gathers its batch of (specimen, view, mirror),
aligns and composites it in one batched call (``xray.align`` is torch), and hands it to the network
without a trip to the CPU. The samples are the dataset's own (same index, same tensors, up to
float rounding: ``tests/test_pipeline.py``), because the dataset says which views an index means
(``views``) and both paths share ``datasets.make_sample``'s steps.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from xtomo import _checks as checks
from xtomo.data.augment import augmented
from xtomo.data.datasets import lateral
from xtomo.imaging import xray
from xtomo.profiles import PIPELINES

__all__ = ["PIPELINES", "DevicePipeline", "use_device_pipeline"]


def use_device_pipeline(choice: str, device: torch.device | str) -> bool:
    """Whether training makes its samples with ``DevicePipeline``: ``"device"`` yes, ``"loader"`` no
    (a ``DataLoader`` over the dataset), ``"auto"`` on a GPU only: on a CPU the batch would be made on
    the cores that train, where a ``DataLoader`` worker at least overlaps (``benchmarks/gpu.py``: at
    ``quick`` on 2 cores, 58 samples/s alone against the worker's 56, and slower together)."""
    checks.choice(choice, "pipeline", PIPELINES, "use_device_pipeline")
    return choice == "device" or (choice == "auto" and torch.device(device).type == "cuda")



class DevicePipeline:
    """Batches of a dataset's samples (``XrayDataset`` or ``ViewDataset``), made on ``device``.

    ``storage`` is the dtype the specimen volumes are kept in (default float16 on a GPU, float32
    on a CPU); each batch is aligned in float32. ``batch(indices)`` returns what a ``DataLoader``
    over the dataset would: ``{"xray": [B, 1, S, S], "volume": [B, D, V, V]}``, on the device.
    """

    def __init__(self, dataset, device: torch.device | str = "cpu", storage: torch.dtype | None = None):
        if not hasattr(dataset, "bank"):
            raise ValueError(f"DevicePipeline makes batches of an XrayDataset or ViewDataset, not of a "
                             f"{type(dataset).__name__}; make them with a DataLoader (pipeline='loader')")
        self.dataset, self.profile, self.device = dataset, dataset.profile, torch.device(device)
        storage = storage or (torch.float16 if self.device.type == "cuda" else torch.float32)
        specimens = sorted(set(dataset.specimens))
        self._row = {k: i for i, k in enumerate(specimens)}  # specimen -> its row of the stack
        first = dataset.bank.volume(specimens[0])
        self.volumes = torch.empty((len(specimens), *first.shape), dtype=storage, device=self.device)
        for i, k in enumerate(specimens):  # one at a time: the bank may be generating them
            self.volumes[i] = dataset.bank.volume(k).to(self.device, storage)

    def __len__(self) -> int:
        return len(self.dataset)

    @property
    def nbytes(self) -> int:
        """Bytes the specimen volumes take on the device."""
        return self.volumes.numel() * self.volumes.element_size()

    @torch.no_grad()
    def batch(self, indices: Sequence[int]) -> dict:
        """The samples at ``indices`` of the dataset, stacked, on the device."""
        p = self.profile
        specimens, directions, mirrored, given = self.dataset.views(list(indices))
        rows = torch.tensor([self._row[k] for k in specimens], device=self.device)
        volumes = augmented(self.volumes.index_select(0, rows).float(), *self.dataset.augmentation(list(indices)))
        aligned = xray.align(volumes, directions.to(self.device), n_steps=p.n_steps, size=p.xray_size)
        alpha = xray.composite(aligned, chi=p.chi) if given is None else given.to(self.device)
        aligned = lateral(aligned, p)  # the targets averaged down laterally, as make_sample does
        flip = mirrored.to(self.device)
        alpha = torch.where(flip[:, None, None], xray.mirror(alpha), alpha)
        target = torch.where(flip[:, None, None, None], xray.mirror(aligned), aligned)
        return dict(xray=alpha[:, None], volume=target)

    def batches(self, sampler):
        """The batches over a batch sampler (lists of indices), in its order, like a ``DataLoader``'s."""
        for indices in sampler:
            yield self.batch(indices)
