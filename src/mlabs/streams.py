"""Independent random streams of one training run, one per purpose.

A cell has one seed, but its randomness serves several purposes that must not share a stream:
if evaluation drew from the stream that also draws dropout masks, a setting that changes how
much evaluation draws (MPVAE's ``n_test_sample``) would change every later training step. Each
purpose therefore gets its own seed, spawned from the cell seed with numpy's
:class:`~numpy.random.SeedSequence` (``SeedSequence(seed, spawn_key=(purpose index,))``, the
construction behind ``SeedSequence.spawn``), so the streams are statistically independent and
each depends only on the cell seed and its purpose (see docs/protocol.md, "Random streams").

>>> streams = Streams(seed=0)
>>> g = streams.generator("model")       # dropout, reparameterisation, probit draws in training
>>> streams.seed("batches") != streams.seed("warmup_batches")
True
"""

from __future__ import annotations

import numbers

import numpy as np
import torch

__all__ = ["PURPOSES", "Streams", "stream_seed"]

#: every purpose, in the order that fixes its spawn key (append new ones, never reorder):
#: ``init`` model initialisation; ``model`` the model's own draws while training (dropout,
#: reparameterisation noise, Gumbel gates, probit draws); ``warmup_batches`` the warm-up's
#: shuffled batches; ``batches`` the batch selection after the warm-up (the same seed for every
#: method, so methods differ only by their rule); ``eval`` the model's draws at prediction
PURPOSES = ("init", "model", "warmup_batches", "batches", "eval")


def stream_seed(seed: int, purpose: str) -> int:
    """The 63-bit seed of ``purpose``'s stream for a run seeded ``seed``.

    Parameters
    ----------
    seed : int
        The run's seed (>= 0).
    purpose : str
        One of :data:`PURPOSES`.
    """
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    if purpose not in PURPOSES:
        raise ValueError(f"unknown random stream {purpose!r}; choose one of {PURPOSES}")
    state = np.random.SeedSequence(int(seed), spawn_key=(PURPOSES.index(purpose),)).generate_state(1, np.uint64)
    return int(state[0]) >> 1  # 63 bits: a valid seed of torch, numpy and every sampler


class Streams:
    """The named random streams of one run, on one device.

    Seeds are derived on demand (:meth:`seed`); torch generators are created on the run's device
    the first time they are asked for (:meth:`generator`) and always returned as the same object,
    so a model can hold them and a checkpoint restore (:meth:`load_state_dict`) moves them in place.

    Parameters
    ----------
    seed : int
        The run's seed.
    device : str or torch.device
        Where the generators live (a CUDA tensor needs a CUDA generator).
    """

    def __init__(self, seed: int, device: str | torch.device = "cpu"):
        stream_seed(seed, PURPOSES[0])  # validates the seed once, here
        self.seed_value = int(seed)
        self.device = torch.device(device)
        self._generators: dict[str, torch.Generator] = {}

    def seed(self, purpose: str) -> int:
        """The seed of ``purpose``'s stream (for consumers with their own generator, e.g. samplers)."""
        return stream_seed(self.seed_value, purpose)

    def generator(self, purpose: str) -> torch.Generator:
        """The torch generator of ``purpose`` on :attr:`device`, seeded with :meth:`seed`."""
        if purpose not in self._generators:
            g = torch.Generator(device=self.device)
            g.manual_seed(self.seed(purpose))
            self._generators[purpose] = g
        return self._generators[purpose]

    def state_dict(self) -> dict:
        """The state of every generator created so far (CPU byte tensors, checkpoint-safe)."""
        return {"device_type": self.device.type,
                "generators": {name: g.get_state() for name, g in self._generators.items()}}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` output into the same generator objects."""
        if state.get("device_type") != self.device.type:
            raise ValueError(f"random stream states were saved on {state.get('device_type')!r} and cannot be "
                             f"restored on {self.device.type!r} (the generators differ); use the device that "
                             f"wrote the checkpoint or delete the checkpoint to retrain")
        for name, value in state["generators"].items():
            self.generator(name).set_state(value)
