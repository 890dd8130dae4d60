"""The epoch machinery every batch sampler shares: epochs, warm-up, a private generator, plans, resume.

Each sampler is a :class:`torch.utils.data.Sampler` that yields one batch at a time as a list of
Python ints, so it plugs into ``DataLoader(dataset, batch_sampler=sampler)`` or a plain loop.
One epoch is ``len(sampler) == ceil(N / B)`` batches (fewer for a sampler that leaves samples out of
an epoch, e.g. InfoBatch while it prunes). A sampler may also weight each sample's loss:
:meth:`EpochBatchSampler.loss_weights` gives a batch's weights (None, uniform, by default).

Epochs
------
``set_epoch(e)`` fixes the epoch of the next iteration explicitly (the study calls it before every
epoch). A sampler whose ``set_epoch`` is not called advances its epoch by one at every new
``iter()`` after the first (the first iteration is epoch 0). Epochs ``0 .. warmup_epochs - 1`` are
warm-up epochs: a fresh shuffle covering every sample exactly once (last batch smaller when B does
not divide N). Only one iteration of a sampler may be active at a time.

State
-----
All state lives in the sampler (loss table, epoch, a private ``torch.Generator``, the batches of
the epoch in progress), so ``state_dict()`` / ``load_state_dict()`` resume exactly: a sampler
restored from a state taken between epochs or in the middle of one yields the same future batches
as the original would have, given the same ``update`` calls. A state taken mid-epoch makes the next
``iter()`` continue that epoch.
"""

from __future__ import annotations

import numbers

import torch
from torch.utils.data import Sampler

from ._validation import check_batch_size, check_finite_nonnegative, check_positive_int, list_indices

__all__ = ["EpochBatchSampler"]


class EpochBatchSampler(Sampler):
    """Epoch bookkeeping, private generator, resumable batch plans (see the module docstring).

    The base of every sampler: ``warmup_epochs`` shuffled epochs, then the batches of
    :meth:`_selection_plan` (shuffled here; a selecting sampler overrides it).

    Parameters
    ----------
    n_samples : int
        N.
    batch_size : int
        B, ``1 <= B <= N``.
    seed : int
        Seed of the private generator.
    device : torch.device or str
        Device of the draws.
    warmup_epochs : int, default 0
        Epochs of shuffled batches before :meth:`_selection_plan` takes over.
    """

    # What the training protocol gives a sampler (:func:`mlabs.selection.make_sampler`): every
    # registered class declares its own ``options`` and the flags that differ from these defaults.
    #: the options of ``selection.<method>`` in ``params.yaml`` the class takes
    options: tuple[str, ...] = ()
    #: the first argument is the label matrix (else the number of samples)
    takes_labels = True
    #: takes ``warmup_epochs``
    has_warmup = True
    #: takes the cell's selection pressure s_e
    uses_selection_pressure = False
    #: takes the scaled training features
    needs_features = False
    #: takes the total ``epochs`` (a schedule over the run)
    needs_epochs = False
    #: ``update`` needs ``probabilities`` (predicted label probabilities)
    needs_predictions = False
    #: gives non-uniform per-sample loss weights through :meth:`loss_weights`, so the model's objective
    #: must decompose per sample (``MultiLabelModel.per_sample_objective_supported``)
    gives_loss_weights = False

    def __init__(self, n_samples: int, batch_size: int, seed: int, device, warmup_epochs: int = 0):
        super().__init__()
        self.n_samples = check_positive_int(n_samples, "n_samples")
        self.batch_size = check_batch_size(batch_size, self.n_samples)
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        self.seed = int(seed)
        self.warmup_epochs = check_positive_int(warmup_epochs, "warmup_epochs", minimum=0)
        self.device = torch.device(device)
        self._generator = torch.Generator(device=self.device)
        self._generator.manual_seed(self.seed)
        self._epoch = 0
        self._epoch_explicit = False   # set_epoch called since the last iter()
        self._iterated = False         # any iter() so far (auto-advance applies after the first)
        self._resume = False           # next iter() continues an epoch restored mid-way
        self._reset_plan()

    # -- public ----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return -(-self.n_samples // self.batch_size)

    @property
    def epoch(self) -> int:
        """The epoch of the iteration in progress (or of the next one, after ``set_epoch``)."""
        return self._epoch

    @property
    def in_warmup(self) -> bool:
        """Whether :attr:`epoch` is a warm-up epoch (shuffled batches covering every sample)."""
        return self._epoch < self.warmup_epochs

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration epoch ``epoch`` (disables the auto-advance for that iteration)."""
        if isinstance(epoch, bool) or not isinstance(epoch, numbers.Integral) or epoch < 0:
            raise ValueError(f"epoch must be an integer >= 0, got {epoch!r}")
        self._epoch = int(epoch)
        self._epoch_explicit = True
        self._resume = False

    def __iter__(self):
        if self._resume:
            self._resume = False
        else:
            if self._epoch_explicit:
                self._epoch_explicit = False
            elif self._iterated:
                self._epoch += 1
            self._iterated = True
            self._reset_plan()
            self._active = True
        return self._batches()

    def update(self, indices, per_sample_loss, probabilities=None) -> None:
        """Record the per-sample losses of the samples just trained on (see subclasses)."""
        self._check_update(indices, per_sample_loss)

    def recompute_due(self, epoch: int) -> bool:
        """Whether the trainer should pass the losses of all N samples to ``update`` before epoch
        ``epoch`` (a full pass over the training set); never for this sampler."""
        return False

    def probabilities(self) -> torch.Tensor:
        """The selection distribution in force (length N, sums to 1); uniform for this sampler."""
        return torch.full((self.n_samples,), 1.0 / self.n_samples, dtype=torch.float64, device=self.device)

    def loss_weights(self, indices) -> torch.Tensor | None:
        """Per-sample loss weights of a batch this sampler yielded, or None for uniform weights.

        The side channel of the samplers that reweight the objective (``DataLoader(batch_sampler=
        ...)`` carries only indices): train on ``mean(w * per_sample_objective)`` plus the batch
        terms when it returns weights, on the plain mean when it returns None (this sampler).
        """
        return None

    def state_dict(self) -> dict:
        """Everything needed to reproduce the future batches exactly (tensors on CPU)."""
        return {
            "kind": type(self).__name__,
            "n_samples": self.n_samples,
            "batch_size": self.batch_size,
            "epoch": self._epoch,
            "epoch_explicit": self._epoch_explicit,
            "iterated": self._iterated,
            "generator": self._generator.get_state().clone(),
            "active": self._active and self._pos < len(self),
            "pos": self._pos,
            "plan": None if self._plan is None else self._plan.clone(),
            "plan_sizes": list(self._plan_sizes),
            "plan_pos": self._plan_pos,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict`; a state taken mid-epoch makes the next ``iter()`` continue it."""
        for key, mine in (("kind", type(self).__name__), ("n_samples", self.n_samples),
                          ("batch_size", self.batch_size)):
            if state.get(key) != mine:
                raise ValueError(f"state_dict does not match this sampler: {key} is {state.get(key)!r} in the "
                                 f"state but {mine!r} here; build the sampler with the same data and options")
        self._epoch = int(state["epoch"])
        self._epoch_explicit = bool(state["epoch_explicit"])
        self._iterated = bool(state["iterated"])
        self._generator.set_state(state["generator"].clone())
        self._reset_plan()
        if state["active"]:
            self._active = True
            self._pos = int(state["pos"])
            if state["plan"] is not None:
                self._set_plan(state["plan"].clone(), list(state["plan_sizes"]), int(state["plan_pos"]))
            self._resume = True
        else:
            self._resume = False

    # -- internals -------------------------------------------------------------------------------
    def _reset_plan(self) -> None:
        self._active = False
        self._pos = 0                 # batches yielded in the current epoch
        self._plan = None             # flat CPU LongTensor of the batches drawn but not all yielded
        self._plan_sizes: list[int] = []
        self._plan_pos = 0            # next batch within the plan
        self._plan_list: list[int] = []
        self._plan_starts: list[int] = []

    def _set_plan(self, flat: torch.Tensor, sizes: list[int], pos: int = 0) -> None:
        self._plan = flat
        self._plan_sizes = sizes
        self._plan_pos = pos
        self._plan_list = flat.tolist()  # one conversion per plan, not per batch
        starts = [0]
        for s in sizes:
            starts.append(starts[-1] + s)
        self._plan_starts = starts

    def _batches(self):
        n_batches = len(self)
        while self._pos < n_batches:
            if self._plan is None or self._plan_pos >= len(self._plan_sizes):
                flat, sizes = self._draw_plan(n_batches - self._pos)
                self._set_plan(flat.cpu(), sizes)
            i = self._plan_pos
            batch = self._plan_list[self._plan_starts[i]:self._plan_starts[i + 1]]
            self._plan_pos += 1
            self._pos += 1
            yield batch
        self._end_epoch()

    def _end_epoch(self) -> None:
        self._reset_plan()

    def _draw_plan(self, remaining: int) -> tuple[torch.Tensor, list[int]]:
        """The next batches of the epoch as (flat indices, batch sizes)."""
        if self.in_warmup:
            return self._shuffled_epoch()
        return self._selection_plan(remaining)

    def _selection_plan(self, remaining: int) -> tuple[torch.Tensor, list[int]]:
        """The next of the ``remaining`` batches of a selection epoch (shuffled in this class)."""
        return self._shuffled_epoch()

    def _shuffled_epoch(self) -> tuple[torch.Tensor, list[int]]:
        perm = torch.randperm(self.n_samples, generator=self._generator, device=self.device)
        nb, b = len(self), self.batch_size
        return perm, [b] * (nb - 1) + [self.n_samples - (nb - 1) * b]

    def _check_update(self, indices, per_sample_loss) -> tuple[torch.Tensor, torch.Tensor]:
        idx = indices.detach() if isinstance(indices, torch.Tensor) else torch.as_tensor(indices)
        if idx.ndim != 1 or not (idx.dtype in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)
                                 or idx.numel() == 0):
            raise ValueError(f"indices must be a 1-D sequence of integer sample indices, got shape "
                             f"{tuple(idx.shape)} and dtype {idx.dtype}")
        loss = per_sample_loss.detach() if isinstance(per_sample_loss, torch.Tensor) else torch.as_tensor(
            per_sample_loss)
        if loss.ndim != 1 or loss.numel() != idx.numel():
            raise ValueError(f"per_sample_loss must be 1-D with one value per index: got shape "
                             f"{tuple(loss.shape)} for {idx.numel()} indices; average the element-wise loss "
                             "over labels, e.g. bce(reduction='none').mean(dim=1)")
        idx = idx.to(device=self.device, dtype=torch.int64)
        loss = loss.to(device=self.device, dtype=torch.float64)
        if idx.numel() == 0:
            return idx, loss
        # one host synchronisation on the common, valid path
        ok = (idx.min() >= 0) & (idx.max() < self.n_samples) & torch.isfinite(loss).all() & (loss >= 0).all()
        if not bool(ok):
            bad = (idx < 0) | (idx >= self.n_samples)
            if bool(bad.any()):
                raise ValueError(f"indices out of range [0, {self.n_samples}): {list_indices(idx[bad])}; pass "
                                 "the dataset indices of the batch as yielded by the sampler")
            check_finite_nonnegative(loss, "per_sample_loss", sample_ids=idx)
        return idx, loss
