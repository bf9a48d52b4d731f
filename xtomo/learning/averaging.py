"""An exponential moving average of a network's weights, kept beside them while it trains.

With batches of eight, the weights at a run's end wander about the minimum they are near, each step
pulled by its own few samples; an average of the weights over the last steps sits nearer its centre
(Polyak and Juditsky, 1992), so it is the average that a run with ``Profile.ema`` validates and that
its checkpoint's readers evaluate, fine-tune from and export (``evaluated_weights``). The raw weights
stay in the checkpoint: a resumed run goes on from them. The decay ramps up as ``(1 + n) / (10 + n)``
over the first updates, so that the average soon forgets the weights a fine-tune started from, then
holds at ``decay``: the average spans about ``1 / (1 - decay)`` steps. Batch-norm statistics are
averaged alike; integer buffers are copied.
"""
from __future__ import annotations

import copy

import torch

import xtomo._checks as checks

__all__ = ["WeightAverage", "evaluated_weights"]


class WeightAverage:
    """The moving average of ``model``'s weights (``update`` after each optimiser step), held in a
    copy of the network (``.model``, in eval mode) that can be validated as it is."""

    def __init__(self, model: torch.nn.Module, decay: float):
        if not (isinstance(decay, (int, float)) and 0 < decay < 1):
            raise ValueError(f"WeightAverage: decay must be in (0, 1), got {decay!r}")
        self.decay, self.updates = float(decay), 0
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self._floats, self._others = _split(self.model)

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        """Move the average towards ``model``'s weights now (the same network)."""
        weight = 1 - min(self.decay, (1 + self.updates) / (10 + self.updates))
        floats, others = _split(model)
        torch._foreach_lerp_(self._floats, [t.to(mine.dtype) for mine, t in zip(self._floats, floats)], weight)
        for mine, theirs in zip(self._others, others):
            mine.copy_(theirs)
        self.updates += 1

    def state_dict(self) -> dict:
        """The decay, the updates made and the averaged weights, for a checkpoint."""
        return dict(decay=self.decay, updates=self.updates, weights=self.model.state_dict())

    def load_state_dict(self, state: dict) -> None:
        """Continue from a ``state_dict`` of the same network and decay."""
        if state["decay"] != self.decay:
            raise ValueError(f"WeightAverage: the saved average decays by {state['decay']}, this one by {self.decay}")
        self.model.load_state_dict(state["weights"])
        self.updates = checks.integer(state["updates"], "updates", minimum=0, what="WeightAverage")


def _split(model: torch.nn.Module) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """A network's floating-point weights and buffers, and its other buffers, in a fixed order."""
    state = model.state_dict(keep_vars=False)
    return ([t for t in state.values() if t.is_floating_point()],
            [t for t in state.values() if not t.is_floating_point()])


def evaluated_weights(ck: dict) -> dict:
    """The weights a checkpoint's network is evaluated, exported and fine-tuned with: the moving
    average where the run kept one, else the weights it trained."""
    average = ck.get("ema")
    return average["weights"] if average else ck["model"]
