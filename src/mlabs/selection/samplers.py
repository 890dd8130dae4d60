"""Batch samplers: random, adaptive (MLABS) and chain-based (label correlations).

Each sampler is a :class:`torch.utils.data.Sampler` that yields one batch at a time as a list of
Python ints, so it plugs into ``DataLoader(dataset, batch_sampler=sampler)`` or a plain loop.
One epoch is ``len(sampler) == ceil(N / B)`` batches.

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

Example
-------
Training any multi-label model (``model(x)`` returns logits) with adaptive selection::

    import torch
    import torch.nn.functional as F
    from mlabs.selection import AdaptiveBatchSampler

    sampler = AdaptiveBatchSampler(Y_train, batch_size=128, selection_pressure=2.0, features=X_train)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    for epoch in range(100):
        sampler.set_epoch(epoch)
        for idx in sampler:
            logits = model(X_train[idx])
            per_sample = F.binary_cross_entropy_with_logits(logits, Y_train[idx], reduction="none").mean(1)
            opt.zero_grad()
            per_sample.mean().backward()
            opt.step()
            sampler.update(idx, per_sample.detach())
"""

from __future__ import annotations

import math
import numbers

import torch
from torch.utils.data import Sampler

from ._validation import (
    _list_indices,
    as_label_matrix,
    check_finite_nonnegative,
    check_positive_int,
    check_selection_pressure,
)
from .imbalance import imbalance_weights, label_correlation
from .probabilities import _levels, _levels_to_log_weights, _log_weights

__all__ = ["RandomBatchSampler", "AdaptiveBatchSampler", "ChainBatchSampler"]

#: Below ``N < _MULTINOMIAL_RATIO * B`` the adaptive sampler draws each batch with one
#: ``torch.multinomial(p, B, replacement=False)`` call (few batches, cheap); above it, all batches
#: of an epoch are drawn at once with replacement and de-duplicated.
_MULTINOMIAL_RATIO = 20
#: Rejection attempts of the chain sampler's restricted draws before the exact fallback.
_CHAIN_RETRIES = 4
#: Bound on the (row, candidate) pairs the chain sampler's exact fallback builds at once.
_FALLBACK_PAIRS = 1 << 22
#: Largest number of slots of the chain sampler's per-batch membership bitmap (one byte each;
#: false-hit rate of a candidate ~ t / slots at step t).
_BITMAP_SLOTS = 4096
#: Bound on the bytes of all per-batch bitmaps of one refresh together (fewer slots beyond).
_BITMAP_BYTES = 1 << 26
#: Resolution of the adaptive sampler's acceptance test (bits of the uniform).
_ACCEPT_BITS = 24
_ACCEPT_SCALE = 1 << _ACCEPT_BITS
#: Bound on the bytes of the adaptive sampler's per-row hashed occurrence counts (repeat detection).
_REPEAT_TABLE_BYTES = 1 << 26
#: The adaptive sampler gives the positions rejected by its first round a second proposal in place
#: when there are more than this many; fewer take accepted fresh proposals in order at once.
_COMPACT_BELOW = 1 << 14

_SCORES = ("weighted_loss", "loss")
_LABEL_CHOICES = ("argmax", "sample")


def _scratch(workspace: dict, name: str, numel: int, dtype: torch.dtype, device) -> torch.Tensor:
    """A reused 1-D scratch tensor of ``numel`` elements from ``workspace`` (contents undefined)."""
    buf = workspace.get(name)
    if buf is None or buf.numel() < numel or buf.dtype != dtype:
        buf = workspace[name] = torch.empty(numel, dtype=dtype, device=device)
    return buf[:numel]


# ------------------------------------------------------------------------------------------------
# common machinery
# ------------------------------------------------------------------------------------------------
class _EpochBatchSampler(Sampler):
    """Epoch bookkeeping, private generator, resumable batch plans (see the module docstring)."""

    def __init__(self, n_samples: int, batch_size: int, seed: int, device):
        super().__init__()
        self.n_samples = check_positive_int(n_samples, "n_samples")
        self.batch_size = check_positive_int(batch_size, "batch_size")
        if self.batch_size > self.n_samples:
            raise ValueError(f"batch_size = {batch_size} is larger than the {self.n_samples} samples; "
                             "use a batch size between 1 and the number of samples")
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        self.seed = int(seed)
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
        return self._epoch < self._warmup_epochs()

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

    def probabilities(self) -> torch.Tensor:
        """The selection distribution in force (length N, sums to 1); uniform for this sampler."""
        return torch.full((self.n_samples,), 1.0 / self.n_samples, dtype=torch.float64, device=self.device)

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
    def _warmup_epochs(self) -> int:
        return 0

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
                raise ValueError(f"indices out of range [0, {self.n_samples}): {_list_indices(idx[bad])}; pass "
                                 "the dataset indices of the batch as yielded by the sampler")
            check_finite_nonnegative(loss, "per_sample_loss", sample_ids=idx)
        return idx, loss


# ------------------------------------------------------------------------------------------------
# random
# ------------------------------------------------------------------------------------------------
class RandomBatchSampler(_EpochBatchSampler):
    """Shuffled batches: a fresh permutation every epoch (the "random" baseline).

    Parameters
    ----------
    n_samples : int
        Number of training samples N.
    batch_size : int
        Batch size B, ``1 <= B <= N``; the last batch holds ``N - (ceil(N/B) - 1) * B`` samples
        (like ``DataLoader(shuffle=True, drop_last=False)``).
    seed : int, default 0
        Seed of the sampler's private generator.
    device : torch.device or str, default "cpu"
        Where the permutation is drawn.

    Notes
    -----
    :meth:`update` validates its arguments and otherwise ignores them, so a training loop can
    treat every sampler alike; :meth:`probabilities` is uniform.
    """

    def __init__(self, n_samples: int, batch_size: int, seed: int = 0, device="cpu"):
        super().__init__(n_samples, batch_size, seed, device)

    def __repr__(self) -> str:
        return f"RandomBatchSampler(n_samples={self.n_samples}, batch_size={self.batch_size}, seed={self.seed})"


# ------------------------------------------------------------------------------------------------
# adaptive
# ------------------------------------------------------------------------------------------------
class AdaptiveBatchSampler(_EpochBatchSampler):
    """Multi-label adaptive batch selection (MLABS): hard and imbalanced samples more often.

    After ``warmup_epochs`` shuffled epochs, every epoch consists of ``ceil(N/B)`` independent
    batches of exactly B distinct samples, each drawn by successive sampling without replacement
    from ``p = selection_probabilities(w * L, selection_pressure, quantize)``, with L the loss table
    (latest per-sample loss, initially 0) and w the static imbalance weights. ``p`` is recomputed
    from the whole loss table at the start of every epoch (or every ``refresh_every`` batches);
    :meth:`update` writes the losses of each batch into the table, warm-up batches included.

    Parameters
    ----------
    labels : array-like, torch.Tensor or scipy.sparse matrix, shape (N, q)
        0/1 training labels.
    batch_size : int
        B, ``1 <= B <= N``.
    selection_pressure : float, default 2.0
        s_e > 1, the largest-to-smallest probability ratio.
    warmup_epochs : int, default 3
        Epochs of shuffled batches before selection starts.
    features : array-like, torch.Tensor or scipy.sparse matrix, shape (N, d), optional
        Scaled training features for the imbalance weights; ``None`` means w = 1.
    score : {"weighted_loss", "loss"}, default "weighted_loss"
        ``"loss"`` ignores the imbalance weights (ablation).
    quantize : bool, default True
        Quantized levels (MLABS) or exact ranks (ablation), see :func:`selection_probabilities`.
    refresh_every : int, optional
        Recompute ``p`` every this many batches within an epoch (and at every epoch start);
        default once per epoch.
    k_neighbors : int, default 5
        Neighbours of the imbalance weights.
    seed : int, default 0
        Seed of the private generator.
    device : torch.device or str, default "cpu"
        Device of all state (labels, loss table, probabilities, draws).

    Notes
    -----
    :meth:`probabilities` is uniform during warm-up epochs; after warm-up it returns the
    distribution of the current refresh during an epoch, and between epochs the one the next
    refresh would compute from the current loss table.

    Differences from the authors' code (``CquptZA/MLAdaBatch``): probabilities are recomputed from
    the whole loss table (no stale per-batch normalisation), warm-up batches are shuffled, and
    the imbalance weighting is on by default (when ``features`` are given).

    Examples
    --------
    A plain PyTorch loop for any multi-label model returning logits::

        sampler = AdaptiveBatchSampler(Y_train, batch_size=128, features=X_train, selection_pressure=2.0)
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)
        for epoch in range(100):
            sampler.set_epoch(epoch)
            for idx in sampler:
                logits = model(X_train[idx])
                per_sample = torch.nn.functional.binary_cross_entropy_with_logits(
                    logits, Y_train[idx], reduction="none").mean(dim=1)
                opt.zero_grad()
                per_sample.mean().backward()
                opt.step()
                sampler.update(idx, per_sample.detach())

    The same sampler works as ``DataLoader(dataset, batch_sampler=sampler)``.
    """

    def __init__(self, labels, batch_size: int, *, selection_pressure: float = 2.0, warmup_epochs: int = 3,
                 features=None, score: str = "weighted_loss", quantize: bool = True,
                 refresh_every: int | None = None, k_neighbors: int = 5, seed: int = 0, device="cpu"):
        device = torch.device(device)
        y = as_label_matrix(labels, device)
        super().__init__(y.shape[0], batch_size, seed, device)
        self.labels = y
        self.n_labels = y.shape[1]
        self.selection_pressure = check_selection_pressure(selection_pressure)
        self.warmup_epochs = check_positive_int(warmup_epochs, "warmup_epochs", minimum=0)
        if score not in _SCORES:
            raise ValueError(f"score must be one of {_SCORES}, got {score!r}")
        self.score = score
        if not isinstance(quantize, bool):
            raise ValueError(f"quantize must be True or False, got {quantize!r}")
        self.quantize = quantize
        self.refresh_every = None if refresh_every is None else check_positive_int(refresh_every, "refresh_every")
        self.k_neighbors = check_positive_int(k_neighbors, "k_neighbors")
        if features is not None:
            n_rows = features.shape[0] if hasattr(features, "shape") else len(features)
            if n_rows != self.n_samples:
                raise ValueError(f"features have {n_rows} rows but labels have {self.n_samples}; pass the "
                                 "features and labels of the same training samples")
        if features is not None and score == "weighted_loss":
            self._weights = imbalance_weights(features, y, k=self.k_neighbors, device=device)
        else:
            self._weights = None
        self._loss = torch.zeros(self.n_samples, dtype=torch.float64, device=device)
        self._logw = None   # log-weights of the refresh in force (resets the cached p and levels)
        self._workspace: dict = {}   # scratch tensors kept between draws (no state)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(n_samples={self.n_samples}, batch_size={self.batch_size}, "
                f"selection_pressure={self.selection_pressure:g}, warmup_epochs={self.warmup_epochs}, "
                f"score={self.score!r}, weighted={self._weights is not None}, quantize={self.quantize}, "
                f"refresh_every={self.refresh_every}, seed={self.seed})")

    # -- public ----------------------------------------------------------------------------------
    @property
    def loss_table(self) -> torch.Tensor:
        """Latest per-sample loss (float64, length N; do not modify in place)."""
        return self._loss

    @property
    def weights(self) -> torch.Tensor:
        """Imbalance weights w (ones when unweighted)."""
        return torch.ones_like(self._loss) if self._weights is None else self._weights

    def scores(self) -> torch.Tensor:
        """Selection scores ``w * L`` (``L`` alone for ``score="loss"``)."""
        return self._loss if self._weights is None else self._weights * self._loss

    def update(self, indices, per_sample_loss, probabilities=None) -> None:
        """Record the losses of the samples just trained on.

        Parameters
        ----------
        indices : sequence of int or LongTensor, shape (n,)
            Sample indices (e.g. the batch as yielded); any n, e.g. all N at once to seed the table.
        per_sample_loss : array-like or torch.Tensor, shape (n,)
            Finite, non-negative per-sample losses (detached), e.g. mean BCE over labels.
        probabilities : torch.Tensor, shape (n, q), optional
            Predicted label probabilities; ignored by this sampler (accepted for samplers that
            score uncertainty).

        Notes
        -----
        The new values take effect at the next refresh of the probabilities. If an index repeats
        within one call, which of its values is kept is unspecified.
        """
        idx, loss = self._check_update(indices, per_sample_loss)
        self._loss[idx] = loss

    def probabilities(self) -> torch.Tensor:
        """The selection distribution (length N, float64, sums to 1); see the class notes."""
        if self.in_warmup:
            return super().probabilities()
        logw = self._logw if self._logw is not None else self._log_weights()
        p = torch.exp(logw)
        return p.div_(p.sum())

    def state_dict(self) -> dict:
        state = super().state_dict()
        state.update(loss_table=self._loss.cpu().clone(),
                     weights=None if self._weights is None else self._weights.cpu().clone(),
                     log_weights=None if self._logw is None else self._logw.cpu().clone(),
                     selection_pressure=self.selection_pressure, quantize=self.quantize, score=self.score)
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self._loss = state["loss_table"].to(device=self.device, dtype=torch.float64).clone()
        if state.get("weights") is not None and self._weights is not None:
            self._weights = state["weights"].to(device=self.device, dtype=torch.float64).clone()
        logw = state.get("log_weights")
        self._logw = None if logw is None else logw.to(device=self.device, dtype=torch.float64).clone()

    # -- internals -------------------------------------------------------------------------------
    def _warmup_epochs(self) -> int:
        return self.warmup_epochs

    def _end_epoch(self) -> None:
        super()._end_epoch()
        self._logw = None

    def _log_weights(self) -> torch.Tensor:
        # scores are finite and non-negative by construction (validated in update)
        return _log_weights(self.scores(), math.log(self.selection_pressure), self.quantize)

    def _draw_scores(self) -> torch.Tensor:
        """:meth:`scores` for a refresh, in a reused scratch buffer when weighted."""
        if self._weights is None:
            return self._loss
        return torch.mul(self._weights, self._loss, out=self._scratch("scores", self.n_samples, torch.float64))

    def _draw_log_weights(self) -> torch.Tensor:
        """:meth:`_log_weights` for a refresh, computed in reused scratch buffers (the previous
        refresh's log-weights held there are replaced at the same time); subclasses with their
        own :meth:`_log_weights` override this too."""
        return _log_weights(self._draw_scores(), math.log(self.selection_pressure), self.quantize,
                            out=self._scratch("logw", self.n_samples, torch.float64))

    @property
    def _logw(self) -> torch.Tensor | None:
        """Unnormalised log-probabilities of the refresh in force (None between refreshes)."""
        if self._logw_value is None and self._levels is not None:
            # a refresh from quantization levels computes the log-weights only when asked
            self._logw_value = _levels_to_log_weights(self._levels.clone(), math.log(self.selection_pressure))
        return self._logw_value

    @_logw.setter
    def _logw(self, value: torch.Tensor | None) -> None:
        self._logw_value = value
        self._levels = None
        self._p_value = None          # normalised p, computed on demand from these log-weights

    @property
    def _p(self) -> torch.Tensor:
        """Normalised p of the refresh in force, computed once per refresh (slow paths only)."""
        if self._p_value is None:
            p = torch.exp(self._logw)
            self._p_value = p.div_(p.sum())
        return self._p_value

    def _draw_plan(self, remaining: int) -> tuple[torch.Tensor, list[int]]:
        if self.in_warmup:
            return self._shuffled_epoch()
        n_batches = remaining if self.refresh_every is None else min(remaining, self.refresh_every)
        self._refresh_draw()
        batches = self._draw_batches(n_batches)
        return batches.reshape(-1), [self.batch_size] * n_batches

    def _refresh_draw(self) -> None:
        """Recompute p from the loss table and build the tables the draws use.

        With quantized scores the float32 ratios p_i / p_max come straight from the levels
        Q_i (float64 exact integers): exp(log(s_e) (Q_i - N) / N) with Q_i - N exact in float32 up
        to N = 2^24; the float64 log-weights are computed only if asked for (the passes over
        N float64 values are a good part of a refresh's cost).
        """
        n = self.n_samples
        levels = None
        if self.quantize and n <= 1 << 24:
            levels = _levels(self._draw_scores(), out=self._scratch("logw", n, torch.float64))
        if levels is None:                       # exact ranks, all-zero scores, N > 2^24
            self._refresh_from_log_weights()
            return
        self._logw = None
        self._levels = levels
        ratio = self._scratch("ratio", n, torch.float32).copy_(levels).sub_(n)
        self._build_slot_table(ratio.mul_(math.log(self.selection_pressure) / n).exp_())

    def _refresh_from_log_weights(self) -> None:
        """:meth:`_refresh_draw` from the float64 log-weights of :meth:`_draw_log_weights`."""
        self._logw = self._draw_log_weights()
        self._refresh(self._logw)

    def _refresh(self, logw: torch.Tensor) -> None:
        """The draw tables from the refresh's log-weights ``logw`` (the ratios exp(logw) in float32:
        logw lies in [-log s_e, 0], so float32 keeps them to ~1e-7 relative, below the 24-bit
        resolution of the acceptance test, and is several times cheaper than float64)."""
        self._build_slot_table(self._scratch("ratio", logw.numel(), torch.float32).copy_(logw).exp_())

    def _build_slot_table(self, ratio: torch.Tensor) -> None:
        # Proposals for the vectorised draws: uniform slots of a table, accepted with a probability
        # proportional to p_i / (slots holding i). Rejection needs one random memory access per
        # proposal, while inverse-CDF search needs ~log2(N); the CDF is used only when the
        # acceptance rate is low (exact-rank ablation with a large s_e).
        # ``ratio``: p_i / p_max (float32) of the refresh in force, in the "ratio" scratch buffer
        # (overwritten here); the CDF path takes the refresh's float64 log-weights instead.
        n, dev = self.n_samples, self.device
        # the rate only sizes the draws (a float32 sum is accurate enough for that)
        self._accept_rate = float(ratio.sum()) / n
        self._cdf = self._accept = self._accept_lo = None
        if self._accept_rate < 0.25:
            self._cdf = torch.cumsum(torch.exp(self._logw), 0)
            return
        index_bits = max((n - 1).bit_length(), 1)
        shift = 31 - index_bits
        if shift < 1:                                             # N > 2^30: 64-bit proposals
            self._accept = ratio.mul_(_ACCEPT_SCALE).round_().to(torch.int32).clamp_(min=1)
            self._index_shift, self._proposal_rate = None, self._accept_rate
            return
        # Slot table: one slot per sample and, in the spare slots up to the next power of two,
        # second slots of the samples with the largest p (tighter envelope, fewer rejections).
        # A slot of sample i is accepted with probability p_i / (bound * p_max * copies_i), bound
        # covering every sample, so a proposal is accepted as i with probability proportional to
        # p_i: exact. Each entry packs (sample << shift) | high bits of the 24-bit threshold.
        slots = 1 << index_bits
        spare = slots - n
        r_max = float(ratio.max())
        bound, doubled = r_max, None
        if spare:
            # cut c with at most `spare` ratios above it, from a strided sample of the ratios
            sample = ratio[:: max(n // 4096, 1)]
            k = min(int(sample.numel() * (1.0 - 0.9 * spare / n)), sample.numel() - 1)
            cut = float(torch.kthvalue(sample, k + 1).values)
            doubled = (ratio > cut).nonzero().view(-1)
            if doubled.numel() > spare:                           # unrepresentative sample: no copies
                doubled = None
            else:
                bound = max(cut, r_max / 2)
        thr = ratio.mul_(_ACCEPT_SCALE / bound)
        if doubled is not None:
            thr.index_copy_(0, doubled, thr.index_select(0, doubled).mul_(0.5))
        accept = self._scratch("slot_accept", slots, torch.int32)
        accept[n:].zero_()                                        # spare slots 0: rejected
        accept[:n] = thr.round_().clamp_(1, _ACCEPT_SCALE - 1)
        if getattr(self, "_slot_base", None) is None or self._slot_base.numel() != slots:
            self._slot_base = torch.arange(slots, dtype=torch.int32, device=dev) << shift
        if doubled is not None and doubled.numel():
            d = doubled.numel()
            accept[n:n + d] = accept.index_select(0, doubled)
        # sizing only: expected acceptance per proposal (the copies of a sample share its weight)
        self._proposal_rate = self._accept_rate * n / (bound * slots)
        if shift >= _ACCEPT_BITS:
            self._tie_bits = 0
            table = accept.bitwise_left_shift_(shift - _ACCEPT_BITS)
        else:
            self._tie_bits = _ACCEPT_BITS - shift
            table = torch.bitwise_right_shift(accept, self._tie_bits,
                                              out=self._scratch("slot_table", slots, torch.int32))
            self._accept_lo = accept.bitwise_and_((1 << self._tie_bits) - 1)
        table.bitwise_or_(self._slot_base)
        if doubled is not None and doubled.numel():
            # spare slots hold their sample, not their own index
            table[n:n + d] = table[n:n + d].bitwise_and_((1 << shift) - 1).bitwise_or_(doubled.to(torch.int32) << shift)
        if spare:
            table[n + (0 if doubled is None else doubled.numel()):] = 0   # sample 0 with threshold 0
        self._accept, self._index_shift = table, shift

    def _iid_draws(self, count: int) -> torch.Tensor:
        """``count`` independent draws from p (with replacement): int32 below N = 2^30, else int64."""
        g, n, dev = self._generator, self.n_samples, self.device
        if self._cdf is not None:
            u = torch.rand(count, generator=g, dtype=torch.float64, device=dev).mul_(self._cdf[-1])
            return torch.searchsorted(self._cdf, u, right=True).clamp_(max=n - 1)
        if self._index_shift is None:
            # N > 2^30: one 64-bit integer per proposal, the high part a uniform index, the low
            # 24 bits an independent uniform for the acceptance test
            out = torch.empty(count, dtype=torch.int64, device=dev)
            have = 0
            while have < count:
                k = int((count - have) / self._proposal_rate * 1.03) + 64
                r = torch.randint(0, n * _ACCEPT_SCALE, (k,), generator=g, device=dev)
                cand = r >> _ACCEPT_BITS
                ok = (r & (_ACCEPT_SCALE - 1)) < self._accept.index_select(0, cand)
                acc = cand.index_select(0, ok.nonzero().view(-1)[: count - have])
                out[have:have + acc.numel()] = acc
                have += acc.numel()
            return out
        out = torch.empty(count, dtype=torch.int32, device=dev)
        # Every position gets a proposal, its sample written in place whatever the outcome; the
        # rejected positions (~1 - acceptance rate) get a second one the same way, and the few
        # still rejected then take, in order, the accepted ones among fresh proposals. Each
        # position thus ends with the first accepted value of its own i.i.d. proposals: exact.
        # (Writing every proposal and listing the rejected ones avoids listing the accepted ones:
        # nonzero's cost grows with the number of indices it returns.)
        pending, tie_wins = self._propose_in_place(out)
        if pending.numel() > _COMPACT_BELOW:
            pending, later_wins = self._propose_in_place(out, pending)
            tie_wins = later_wins + tie_wins
        while pending.numel():
            m = pending.numel()
            acc = self._accepted_proposals(int(m / self._proposal_rate * 1.05) + 64)
            take = min(m, acc.numel())
            out.index_copy_(0, pending[:take], acc[:take])
            pending = pending[take:]
        # proposals accepted on a tie were left listed as rejected and overwritten since: write
        # them back, the first round's last (a position keeps its first accepted value)
        for positions, samples in tie_wins:
            out.index_copy_(0, positions, samples)
        return out

    def _random31(self, count: int, name: str) -> torch.Tensor:
        """``count`` independent uniform int32 in [0, 2^31), in a reused scratch buffer.

        Drawn as 64-bit integers split in two: torch's per-element overhead dominates the cost of
        its generator, and a 64-bit draw costs little more than a 32-bit one.
        """
        r64 = self._scratch(name, (count + 1) // 2, torch.int64).random_(generator=self._generator)
        return r64.view(torch.int32)[:count].bitwise_and_(0x7FFFFFFF)

    def _proposal_fields(self, count: int, prefix: str) -> tuple[torch.Tensor, ...]:
        """``count`` proposals: (slot, 24-bit uniform's high part, slot-table entry).

        One 31-bit integer per proposal: its high bits are a uniform slot, its low ``shift`` bits
        the high part of the acceptance uniform, compared with the high part of the slot's 24-bit
        threshold; the low parts are drawn only on a tie (:meth:`_tie_accepted`). The large
        temporaries live in reused scratch buffers: fresh multi-MB tensors cost page faults.
        """
        shift = self._index_shift
        mask = (1 << shift) - 1
        r = self._random31(count, prefix + "r")
        slot = torch.bitwise_right_shift(r, shift, out=self._scratch(prefix + "slot", count, torch.int32))
        u = r.bitwise_and_(mask)
        entry = torch.index_select(self._accept, 0, slot, out=self._scratch(prefix + "entry", count, torch.int32))
        return slot, u, entry

    def _tie_accepted(self, slot: torch.Tensor, tie: torch.Tensor) -> torch.Tensor:
        """Mask of the ties (indices ``tie`` into ``slot``) accepted by the threshold's low bits.

        A tie, equal high parts of the uniform and the threshold (probability 2^-shift per
        proposal), is decided by ``tie_bits`` more random bits: the test is exact to 24 bits.
        """
        low = torch.empty(tie.numel(), dtype=torch.int32, device=slot.device).random_(generator=self._generator)
        low.bitwise_and_((1 << self._tie_bits) - 1)
        return low < self._accept_lo.index_select(0, slot.index_select(0, tie))

    def _propose_in_place(self, out: torch.Tensor, positions: torch.Tensor | None = None):
        """One proposal for each of ``positions`` of ``out`` (all when None), its sample written there.

        Returns the positions whose proposal was rejected and a list with the (positions,
        samples) of proposals accepted on a tie, which are still listed as rejected: removing
        them from the long list would cost more than writing them back at the end.
        """
        count = out.numel() if positions is None else positions.numel()
        prefix = "" if positions is None else "retry_"
        slot, u, entry = self._proposal_fields(count, prefix)
        if positions is None:
            torch.bitwise_right_shift(entry, self._index_shift, out=out)
        else:
            out.index_copy_(0, positions, torch.bitwise_right_shift(entry, self._index_shift))
        # u - threshold (the entry's low bits), in place: >= 0 rejected, == 0 a tie
        diff = u.sub_(entry.bitwise_and_((1 << self._index_shift) - 1))
        rejected = torch.ge(diff, 0, out=self._scratch(prefix + "reject", count, torch.bool)).nonzero().view(-1)
        rejected_at = rejected if positions is None else positions.index_select(0, rejected)
        tie_wins = []
        if self._tie_bits and rejected.numel():
            tie = (diff.index_select(0, rejected) == 0).nonzero().view(-1)
            if tie.numel():
                won = tie.masked_select(self._tie_accepted(slot, rejected.index_select(0, tie)))
                at = rejected_at.index_select(0, won)
                tie_wins.append((at, out.index_select(0, at)))
        return rejected_at, tie_wins

    def _accepted_proposals(self, count: int) -> torch.Tensor:
        """The samples of the accepted ones among ``count`` proposals, in proposal order (i.i.d. from p)."""
        slot, u, entry = self._proposal_fields(count, "fresh_")
        threshold = entry & ((1 << self._index_shift) - 1)
        accept = torch.lt(u, threshold)
        if self._tie_bits:
            tie = torch.eq(u, threshold).nonzero().view(-1)
            if tie.numel():
                accept.index_put_((tie,), self._tie_accepted(slot, tie))
        keep = accept.nonzero().view(-1)
        return entry.index_select(0, keep).bitwise_right_shift_(self._index_shift)

    def _scratch(self, name: str, numel: int, dtype: torch.dtype) -> torch.Tensor:
        """A reused 1-D scratch tensor of ``numel`` elements (contents undefined)."""
        return _scratch(self._workspace, name, numel, dtype, self.device)

    def _draw_batches(self, n_batches: int) -> torch.Tensor:
        """``n_batches`` independent rows of B distinct indices, successive sampling from p."""
        n, b, g = self.n_samples, self.batch_size, self._generator
        if n < _MULTINOMIAL_RATIO * b:
            return torch.multinomial(self._p.expand(n_batches, n).contiguous(), b, replacement=False, generator=g)
        # Draw with replacement and keep the first B distinct values of each row: rejecting
        # repeats is exactly successive sampling without replacement. Extra draws per row cover
        # the expected repeats, lam ~ B^2/2 * sum p^2 <= B^2/2 * p_max, with a wide margin
        # (p_max = 1 / (N * acceptance rate) needs no pass over p).
        p_max = 1.0 / (n * self._accept_rate) if self._accept is not None else float(self._p.max())
        lam = 0.5 * b * b * p_max
        extra = int(math.ceil(2.0 * lam + 6.0 * math.sqrt(lam) + 8.0))
        # Most rows have no repeat among their B draws (probability ~ 1 - lam); only the others
        # continue their own stream of i.i.d. draws (drawn after all rows: the draws are
        # independent, so the order in which they are generated does not matter).
        out = self._iid_draws(n_batches * b).view(n_batches, b)
        bad = _rows_with_repeat(out, n, self._workspace)
        if bad.numel() == 0:
            return out
        more = self._iid_draws(bad.numel() * extra).view(bad.numel(), extra)
        rows = torch.cat([out.index_select(0, bad), more.to(out.dtype)], dim=1).to(torch.int64)
        first = _first_occurrence(rows)
        rank = torch.cumsum(first, dim=1)
        complete = rank[:, -1] >= b
        keep = first & (rank <= b)
        done = complete.nonzero().reshape(-1)
        if done.numel():
            out.index_copy_(0, bad.index_select(0, done),
                            rows.index_select(0, done).masked_select(keep.index_select(0, done)).view(-1, b)
                            .to(out.dtype))
        for j in (~complete).nonzero().reshape(-1).tolist():
            # Fewer than B distinct values among B + extra draws (very rare rows, not samples): continue
            # the same successive sampling exactly, from p restricted to the samples not drawn yet.
            got = rows[j].masked_select(first[j])
            rest_p = self._p.clone()
            rest_p[got] = 0.0
            got = torch.cat([got, torch.multinomial(rest_p, b - got.numel(), replacement=False, generator=g)])
            out[bad[j]] = got
        return out


def _sort_keys(draws: torch.Tensor) -> torch.Tensor:
    """Row-wise sorted composite keys value * m + column (unique, so an unstable sort suffices)."""
    m = draws.shape[1]
    keys = draws * m + torch.arange(m, device=draws.device)
    return torch.sort(keys, dim=1).values


def _rows_with_repeat(draws: torch.Tensor, n: int, workspace: dict | None = None) -> torch.Tensor:
    """Sorted indices of the rows of ``draws`` (values in [0, n)) that contain a value more than once.

    Exact, without sorting every row: each row counts its values in a small hashed table of its
    own, keyed by the values' low bits; only the values whose slot was hit more than once (a
    repeat or a hash collision) are compared exactly, after one sort by value. ``workspace`` (a
    dict) keeps the count table between calls.
    """
    rows, b = draws.shape
    dev = draws.device
    if b < 2 or rows == 0:
        return torch.zeros(0, dtype=torch.int64, device=dev)
    slots = 1 << max(8 * b - 1, 1).bit_length()          # power of two >= 8 B: ~12% flagged (uniform draws)
    while slots > 2 * b and rows * slots > _REPEAT_TABLE_BYTES:
        slots //= 2
    ws = {} if workspace is None else workspace

    def scratch(name, numel, dtype):
        return _scratch(ws, name, numel, dtype, dev)

    flat = draws.reshape(-1)
    # Counts start at -1 (255 in uint8, which wraps), so a slot hit exactly once ends at 0 and the
    # values of slots hit more than once are the nonzero ones (a row adds at most b < 256 to a
    # uint8 count). Row-wise scatter/gather (dim 1 of a rows x slots table) are several times
    # cheaper than the same work as 1-D index_add_/index_select over the flat table.
    ctype = torch.uint8 if (b < 256 and dev.type == "cpu") else torch.int32
    table = scratch("repeat_counts", rows * slots, ctype).fill_(255 if ctype == torch.uint8 else -1).view(rows, slots)
    # int64 keys (scatter/gather indices); widening first and masking in place is cheaper than a
    # mixed-type bitwise op
    key = scratch("repeat_key", rows * b, torch.int64).view(rows, b).copy_(draws).bitwise_and_(slots - 1)
    # (a materialised source: an expanded scalar is copied by scatter_add_ on every call)
    table.scatter_add_(1, key, scratch("repeat_ones", rows * b, ctype).fill_(1).view(rows, b))
    hits = torch.gather(table, 1, key, out=scratch("repeat_hits", rows * b, ctype).view(rows, b))
    cand = hits.view(-1).nonzero().view(-1)                  # ~12 % of the values (uniform draws)
    if cand.numel() == 0:
        return cand
    # Exact check of the candidates: a stable sort by value keeps each value's entries in flat
    # (row-major) order, so two entries of one row with the same value end up side by side.
    values = flat.index_select(0, cand)
    order = torch.argsort(values, stable=True)
    values, cand = values.index_select(0, order), cand.index_select(0, order)
    row = torch.div(cand, b, rounding_mode="floor")
    same = (values[1:] == values[:-1]) & (row[1:] == row[:-1])
    return torch.unique(row[1:][same])


def _fill_accepted(out: torch.Tensor, pending: torch.Tensor, accepted: torch.Tensor,
                   values: torch.Tensor) -> torch.Tensor:
    """Write the accepted ``values`` of a retry round into ``out[pending]``; return the still pending.

    ``pending`` lists the positions of ``out`` drawn in this round, aligned with ``accepted`` and
    ``values``.
    """
    keep = accepted.nonzero().view(-1)
    out.index_copy_(0, pending.index_select(0, keep), values.index_select(0, keep))
    return pending.index_select(0, (~accepted).nonzero().view(-1))


def _first_occurrence(draws: torch.Tensor) -> torch.Tensor:
    """Mask of the first occurrence (lowest column) of each value within every row."""
    m = draws.shape[1]
    keys = _sort_keys(draws)
    values = torch.div(keys, m, rounding_mode="floor")
    cols = keys - values * m
    new = torch.ones_like(keys, dtype=torch.bool)
    new[:, 1:] = values[:, 1:] != values[:, :-1]
    first = torch.empty_like(new)
    first.scatter_(1, cols, new)
    return first


# ------------------------------------------------------------------------------------------------
# chain
# ------------------------------------------------------------------------------------------------
class ChainBatchSampler(AdaptiveBatchSampler):
    """Chain-based adaptive selection with label correlations (``method.md`` section 5, a reconstruction).

    Each post-warm-up batch of exactly B distinct samples is built from chains of up to
    ``chain_length`` samples:

    1. seed: a sample drawn from p among those not yet in the batch;
    2. seed label: its positive label with the largest IRLbl (ties: the smaller label index);
       a seed without labels ends the chain;
    3. walk: the next label is the label not yet visited in this chain with the largest
       correlation ``A[l, k]`` (:func:`label_correlation`; ties: the smaller label index), or one
       drawn proportionally to ``A[l, k]`` over the unvisited labels with
       ``label_choice="sample"``; the chain stops when that correlation is 0. The next sample is
       drawn from p restricted to the samples carrying that label and not yet in the batch (the
       chain stops when there is none). Repeat until the chain has ``chain_length`` samples or the
       batch is full, then start a new chain with a new seed.

    Warm-up, loss table, refreshes and every other parameter are as in :class:`AdaptiveBatchSampler`.

    Parameters
    ----------
    chain_length : int, default 4
        m, the maximum number of samples per chain (1 makes every pick a seed, i.e. plain adaptive
        selection).
    label_choice : {"argmax", "sample"}, default "argmax"
        How the walk picks the next label.

    Notes
    -----
    With ``label_choice="argmax"`` and rejection draws (s_e <= 4), all batches of a refresh are
    drawn optimistically in bulk (every draw ignoring "not yet in the batch"), and the few batches
    with a repeated sample are redrawn from their first repeat on; this is exactly the step-by-step
    process (see :meth:`_draw_batches_optimistic`). Otherwise all batches are built in parallel,
    one chain step at a time (B vectorised steps). "Not yet in the batch" is enforced by rejection
    (exactly equivalent to drawing from the restricted distribution) with an exact vectorised
    fallback after a few rejections.
    """

    def __init__(self, labels, batch_size: int, *, chain_length: int = 4, label_choice: str = "argmax", **options):
        super().__init__(labels, batch_size, **options)
        self.chain_length = check_positive_int(chain_length, "chain_length")
        if label_choice not in _LABEL_CHOICES:
            raise ValueError(f"label_choice must be one of {_LABEL_CHOICES}, got {label_choice!r}")
        self.label_choice = label_choice
        y, q, n = self.labels, self.n_labels, self.n_samples
        counts = y.sum(dim=0).to(torch.float64)
        ir = counts.max() / counts.clamp(min=1.0)
        # most-minority positive label per sample, -1 for samples without labels; torch.argmax
        # returns the first maximum, so ties go to the smaller label index
        masked = torch.where(y, ir[None, :], torch.full((), -1.0, dtype=torch.float64, device=self.device))
        self._seed_label = torch.where(y.any(dim=1), masked.argmax(dim=1),
                                       torch.full((), -1, dtype=torch.int64, device=self.device))
        self.correlation = label_correlation(y, device=self.device)
        self._walk = _label_walk_table(self.correlation, self.chain_length)
        # Segments: the positives of each label (CSR by label, ascending sample index), then one
        # segment q with every sample, used for seeds.
        lab, smp = y.T.nonzero(as_tuple=True)
        self._seg_members = torch.cat([smp, torch.arange(n, device=self.device)])
        sizes = torch.cat([y.sum(dim=0).to(torch.int64), torch.tensor([n], device=self.device)])
        self._seg_start = torch.zeros(q + 2, dtype=torch.int64, device=self.device)
        self._seg_start[1:] = torch.cumsum(sizes, 0)
        self._seg_len = sizes.to(torch.float64)
        # int32 copies for the rejection draws (half the memory traffic of the random accesses)
        self._small = n < 2**31 and self._seg_members.numel() < 2**31
        if self._small:
            self._seg_members32 = self._seg_members.to(torch.int32)
            self._seg_start32 = self._seg_start.to(torch.int32)
        self._chain_tables()

    def _chain_tables(self) -> None:
        """Chain states of the argmax walk and, for ``label_choice="sample"``, the flat CDF of A.

        State ``l * steps + k`` (steps = m - 1): the chain started at seed label l and made k walk
        steps; state ``q * steps`` (the last one): the next draw is a seed.
        """
        q, dev = self.n_labels, self.device
        steps = max(self.chain_length - 1, 0)
        idle = q * steps
        self._idle_state = idle
        walk = self._walk[:, :steps].reshape(-1)
        # segment drawn from in each state (q: a seed draw)
        self._state_segment = torch.cat([torch.where(walk >= 0, walk, torch.full_like(walk, q)),
                                         torch.tensor([q], device=dev)])
        # state after a successful walk draw
        k = torch.arange(idle, device=dev)
        self._state_next = torch.cat([torch.where((k % max(steps, 1)) + 1 < steps, k + 1, torch.full_like(k, idle)),
                                      torch.tensor([idle], device=dev)])
        # state after a seed draw, per sample
        lab = self._seed_label
        self._seed_state = (torch.where(lab >= 0, lab * steps, torch.full_like(lab, idle)) if steps
                            else torch.full_like(lab, idle))
        # optimistic bulk path: walk steps after each seed label (entry q: a seed without label),
        # samples per chain started by each sample (1 + its walk steps, int32; their mean and
        # variance under uniform draws size the seed blocks), and per state the segment start
        # (int32) and size (float64) of its draw
        self._walk_len = torch.cat([(self._walk[:, :steps] >= 0).sum(dim=1),
                                    torch.zeros(1, dtype=torch.int64, device=dev)])
        self._seed_len = (1 + self._walk_len.index_select(0, torch.where(lab >= 0, lab, q))).to(torch.int32)
        chain_len = self._seed_len.to(torch.float64)
        self._chain_len_mean = float(chain_len.mean())
        self._chain_len_var = float(chain_len.var()) if chain_len.numel() > 1 else 0.0
        self._seed_state32 = self._seed_state.to(torch.int32)
        if self._small:
            self._state_lo32 = self._seg_start32.index_select(0, self._state_segment)
            self._state_size = self._seg_len.index_select(0, self._state_segment)
        # flat CDF of the rows of A: row l occupies [l * q, (l + 1) * q)
        a = self.correlation.to(torch.float64)
        self._corr_flat = a.reshape(-1).contiguous()
        self._corr_cum = torch.cumsum(self._corr_flat, 0)
        before = torch.cat([torch.zeros(1, dtype=torch.float64, device=dev), self._corr_cum])
        self._corr_base = before[torch.arange(q, device=dev) * q]
        self._corr_total = before[torch.arange(1, q + 1, device=dev) * q] - self._corr_base

    def _refresh_draw(self) -> None:
        self._refresh_from_log_weights()   # the segment tables below start from the log-weights

    def _refresh(self, logw: torch.Tensor) -> None:
        # the base class passes unnormalised log-weights; segment draws only need relative weights
        # Rejection proposals: a uniform member of the segment, accepted with probability
        # w / max(w) (exact for p restricted to the segment); used when min(w) / max(w) >=
        # _CHAIN_MIN_RATE (s_e <= 1 / _CHAIN_MIN_RATE), which bounds every segment's acceptance
        # rate, else inverse CDF. float32 keeps the acceptance probabilities to ~1e-7 relative.
        n = logw.numel()
        w32 = self._scratch("chain_accept", n, torch.float32).copy_(logw).exp_()
        lo, hi = torch.aminmax(w32)
        self._use_rejection = self._small and bool(lo >= _CHAIN_MIN_RATE * hi)
        if self._use_rejection:
            self._chain_accept = w32.div_(hi)
            if self.label_choice == "argmax":
                # the optimistic bulk path draws its seeds (i.i.d. from p over all samples) with
                # the adaptive sampler's slot table: several times cheaper than segment draws
                # (it takes a copy of the ratios p_i / p_max instead of recomputing them)
                self._build_slot_table(self._scratch("ratio", n, torch.float32).copy_(w32))
            return
        self._chain_accept = None
        w = torch.exp(logw).index_select(0, self._seg_members)
        self._seg_cum = torch.cumsum(w, 0)
        before = torch.cat([torch.zeros(1, dtype=torch.float64, device=self.device), self._seg_cum])
        self._seg_base = before[self._seg_start[:-1]]
        self._seg_total = before[self._seg_start[1:]] - self._seg_base

    def _draw_batches(self, n_batches: int) -> torch.Tensor:
        if self._use_rejection and self.label_choice == "argmax":
            return self._draw_batches_optimistic(n_batches)
        return self._draw_batches_stepwise(n_batches)

    def _draw_batches_optimistic(self, n_batches: int) -> torch.Tensor:
        """The argmax chain batches, drawn optimistically in bulk and repaired where needed.

        :meth:`_optimistic_fill` builds every batch's chain skeleton chain by chain (seeds are
        i.i.d. draws from p, the walk's segments follow from the seed label) and draws every walk
        sample at once from p restricted to its segment, ignoring "not in the batch yet". Each
        draw is the first accepted proposal of its own stream: exactly what the step-by-step
        rejection process draws as long as that is not already in the batch. So a batch without a
        repeated sample is exactly the step-by-step result, and in a batch with a repeat
        everything before the first repeated position t* is exact (t* depends only on the draws
        up to t*). Such batches are redrawn from t* on (fresh randomness, state at t* kept), a few
        times in bulk, then step by step (:meth:`_repair_stepwise`, which also handles a walk
        label whose samples are all in the batch; such a position repeats at every redraw).
        """
        nb, b, dev = n_batches, self.batch_size, self.device
        # batch-major (nb x B) with one extra entry that absorbs the writes of unused positions
        flat = torch.empty(nb * b + 1, dtype=torch.int32, device=dev)
        out = flat[: nb * b].view(nb, b)
        rows = start = current = None
        for _ in range(_OPTIMISTIC_ROUNDS):
            if rows is None:
                self._optimistic_fill(flat, nb)
                vals = out
            else:
                # the batches being redrawn, compacted (their prefix before `start` is kept)
                k = rows.numel()
                buf = torch.empty(k * b + 1, dtype=torch.int32, device=dev)
                vals = buf[: k * b].view(k, b)
                torch.index_select(out, 0, rows, out=vals)
                self._optimistic_fill(buf, k, start, current)
                out.index_copy_(0, rows, vals)
            bad = _rows_with_repeat(vals, self.n_samples, self._workspace)
            if bad.numel() == 0:
                return out
            redo = vals.index_select(0, bad)
            first = _first_occurrence(redo.to(torch.int64))
            start = (~first).to(torch.uint8).argmax(dim=1)
            current = self._chain_state_at(redo, start)
            rows = bad if rows is None else rows.index_select(0, bad)
        sub = out.index_select(0, rows).T.contiguous()            # B x k, as the step-by-step draws
        self._repair_stepwise(sub, torch.arange(rows.numel(), device=dev), start, current)
        out.index_copy_(0, rows, sub.T)
        return out

    def _chain_state_at(self, vals: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Chain state (see :meth:`_chain_tables`) of the draw at position ``t[i]`` of each complete
        optimistic batch ``vals[i]`` (int64).

        The chains tile the batch: the seeds are the positions reached from 0 by jumps of the
        chain length of each seed (``_seed_len``, cut at B), found by pointer doubling.
        """
        k, b = vals.shape
        dev, idle = self.device, self._idle_state
        steps = max(self.chain_length - 1, 0)
        if steps == 0 or k == 0:
            return torch.full((k,), idle, dtype=torch.int64, device=dev)
        at = torch.arange(b, device=dev)
        jump = torch.full((k, b + 1), b, dtype=torch.int64, device=dev)       # column b: past the end
        jump[:, :b] = self._seed_len.index_select(0, vals.reshape(-1)).view(k, b).add(at).clamp_(max=b)
        seed = torch.zeros((k, b + 1), dtype=torch.bool, device=dev)
        seed[:, 0] = True
        for _ in range(max(b - 1, 1).bit_length()):
            # the seeds found so far (the first 2^i) also mark those 2^i chains further on
            seed.scatter_(1, torch.where(seed, jump, b), True)
            jump = jump.gather(1, jump)
        u = torch.where(seed[:, :b] & (at[None, :] <= t[:, None]), at, -1).amax(dim=1)   # the chain's seed
        d = t - u
        base = self._seed_state.index_select(0, vals.gather(1, u[:, None]).reshape(-1))
        return torch.where(d == 0, idle, base + d - 1)

    def _optimistic_fill(self, val_flat: torch.Tensor, k: int, start: torch.Tensor | None = None,
                         current: torch.Tensor | None = None) -> None:
        """Fill positions ``start[i]`` .. B-1 (default 0) of the k batch-major batches in
        ``val_flat`` (k * B entries and a last one absorbing unused writes), state ``current``
        (default idle) at the start, ignoring "not in the batch yet"."""
        b, dev = self.batch_size, self.device
        steps = max(self.chain_length - 1, 0)
        idle, q, dump = self._idle_state, self.n_labels, k * b
        off = torch.arange(steps, dtype=torch.int32, device=dev)
        walk_at, walk_state = [], []      # flat position and state of every walk draw
        if start is None:
            pos = torch.zeros(k, dtype=torch.int32, device=dev)
        else:
            pos = start.to(torch.int32)
            if steps:
                # the chain in progress at the start: its remaining walk steps
                walking = current != idle
                label = torch.where(walking, torch.div(current, steps, rounding_mode="floor"), q)
                j0 = torch.where(walking, current - label * steps, 0)
                remaining = torch.minimum((self._walk_len.index_select(0, label) - j0).clamp_(min=0),
                                          b - start).to(torch.int32)
                cont = off[None, :] < remaining[:, None]
                walk_at.append(torch.where(cont, (torch.arange(k, device=dev) * b + start)[:, None] + off,
                                           dump).view(-1))
                walk_state.append(torch.where(cont, current[:, None] + off, idle).to(torch.int32).view(-1))
                pos = pos + remaining
        # new chains: a block of i.i.d. seeds per open batch at a time (the unused ones are
        # discarded); a chain starts at the batch's position plus the lengths of the chains
        # before it in the block, and is cut at B
        open_rows = (pos < b).nonzero().view(-1)
        pos = pos.index_select(0, open_rows)
        mean, var = self._chain_len_mean, self._chain_len_var
        while open_rows.numel():
            r = open_rows.numel()
            need = int(b - pos.min())
            width = int(math.ceil(need / mean + 1.5 * math.sqrt(need * var / mean ** 3))) + 2
            seed = self._iid_draws(r * width).to(torch.int32).view(r, width)
            length = torch.index_select(self._seed_len, 0, seed.view(-1),
                                        out=self._scratch("chain_len", r * width, torch.int32)).view(r, width)
            end = torch.cumsum(length, dim=1, dtype=torch.int32).add_(pos[:, None])
            first = end - length
            at = first + (open_rows * b)[:, None]                          # flat position (int64)
            val_flat.scatter_(0, at.masked_fill_(first >= b, dump).view(-1), seed.view(-1))
            if steps:
                chains = ((length > 1) & (first < b - 1)).view(-1).nonzero().view(-1)
                size = (end.clamp_(max=b) - first).view(-1).index_select(0, chains)   # within the batch
                p = at.view(-1).index_select(0, chains)[:, None] + 1 + off
                walk_at.append(p.masked_fill_(off[None, :] + 1 >= size[:, None], dump).view(-1))
                state = self._seed_state32.index_select(0, seed.view(-1).index_select(0, chains))
                walk_state.append((state[:, None] + off).view(-1))
            last = end[:, -1]
            keep = (last < b).nonzero().view(-1)
            open_rows, pos = open_rows.index_select(0, keep), last.index_select(0, keep)
        if walk_at:
            at = walk_at[0] if len(walk_at) == 1 else torch.cat(walk_at)
            state = walk_state[0] if len(walk_state) == 1 else torch.cat(walk_state)
            val_flat.scatter_(0, at, self._bulk_draws(state))

    def _repair_stepwise(self, out, rows, start, current) -> None:
        """Redraw positions ``start[i]`` .. B-1 of batches ``rows`` step by step (state ``current``)."""
        b, q, dev = self.batch_size, self.n_labels, self.device
        nb = out.shape[1]
        start, order = torch.sort(start)
        rows, current = rows.index_select(0, order), current.index_select(0, order)
        self._init_bitmap(nb)
        before = torch.arange(b, device=dev)[:, None] < start[None, :]
        prefix = out.index_select(1, rows)
        base = self._row_base.index_select(0, rows)[None, :].expand(b, -1)
        self._bitmap.index_fill_(0, self._slots(prefix[before], base[before]), True)
        starts = start.tolist()
        active = 0
        for t in range(starts[0], b):
            while active < len(starts) and starts[active] <= t:
                active += 1
            rws, st = rows[:active], current[:active]
            segment = self._state_segment.index_select(0, st)
            picked, found = self._draw_rejection(segment, rws, out, t)
            if found is not None:
                failed = (~found).nonzero().reshape(-1)
                seeds, _ = self._draw_rejection(torch.full_like(failed, q), rws.index_select(0, failed), out, t)
                picked.index_copy_(0, failed, seeds)
                segment.index_fill_(0, failed, q)
            out[t].index_copy_(0, rws, picked)
            self._bitmap.index_fill_(0, self._slots(picked, self._row_base.index_select(0, rws)), True)
            current[:active] = torch.where(segment == q, self._seed_state.index_select(0, picked),
                                           self._state_next.index_select(0, st))
        del self._bitmap, self._row_base, self._hash_bits

    def _bulk_draws(self, state: torch.Tensor) -> torch.Tensor:
        """One draw from p restricted to the segment of chain state ``state[i]`` per entry,
        independently (rejection mode), int32.

        One proposal per pending entry and round (a uniform member, accepted with probability
        w / max(w), rate >= _CHAIN_MIN_RATE): rounds shrink geometrically. One float64 uniform
        per proposal gives the member (integer part of u * size) and the acceptance test (the
        fraction). (Several proposals per pending entry in the later rounds, fewer but larger
        rounds, measured slower: the float64 uniforms dominate.) The large temporaries live in
        reused scratch buffers.
        """
        g, dev = self._generator, self.device
        e = state.numel()
        out = torch.empty(e, dtype=torch.int32, device=dev)
        lo_all = torch.index_select(self._state_lo32, 0, state, out=self._scratch("bulk_lo", e, torch.int32))
        size_all = torch.index_select(self._state_size, 0, state, out=self._scratch("bulk_size", e, torch.float64))
        lo, size = lo_all, size_all
        pending = None                          # entries of `out` drawn in this round (None: all)
        while True:
            c = lo.numel()
            x = self._scratch("bulk_x", c, torch.float64).uniform_(generator=g).mul_(size)
            pos = self._scratch("bulk_pos", c, torch.int32).copy_(x)          # floor (x >= 0)
            frac = x.sub_(pos)
            cand = out if pending is None else self._scratch("bulk_cand", c, torch.int32)
            torch.index_select(self._seg_members32, 0, pos.add_(lo), out=cand)
            accept = torch.index_select(self._chain_accept, 0, cand, out=self._scratch("bulk_acc", c, torch.float32))
            rejected = torch.ge(frac, accept, out=self._scratch("bulk_rej", c, torch.bool)).nonzero().view(-1)
            if pending is None:
                pending = rejected
            else:
                # every entry drawn is written; a rejected value is overwritten in a later round
                out.scatter_(0, pending, cand)
                pending = pending.index_select(0, rejected)
            if pending.numel() == 0:
                return out
            lo, size = lo_all.index_select(0, pending), size_all.index_select(0, pending)

    def _draw_batches_stepwise(self, n_batches: int) -> torch.Tensor:
        """All batches built in parallel one chain step at a time (B vectorised steps)."""
        nb, b, m, q, dev = n_batches, self.batch_size, self.chain_length, self.n_labels, self.device
        # batch-major transposed (B x nb): step t writes the contiguous row out[t]
        rejection = self._use_rejection
        out = torch.empty((b, nb), dtype=torch.int32 if rejection else torch.int64, device=dev)
        sample_labels = self.label_choice == "sample"
        draw = self._draw_rejection if rejection else self._draw_restricted
        if sample_labels:
            current = torch.full((nb,), -1, dtype=torch.int64, device=dev)   # label to walk from, -1: seed
            length = torch.zeros(nb, dtype=torch.int64, device=dev)          # samples in the chain
            visited = torch.full((nb, m), -1, dtype=torch.int64, device=dev)  # labels of the chain
            one = torch.ones((), dtype=torch.int64, device=dev)
        else:
            state = torch.full((nb,), self._idle_state, dtype=torch.int64, device=dev)
        # Per-batch hashed bitmap of the members so far: a clear slot proves a candidate is not in
        # the batch, so the exact O(t) comparison runs only for the few hash hits.
        self._init_bitmap(nb)
        all_rows = torch.arange(nb, device=dev)
        seed_segment = torch.full((nb,), q, dtype=torch.int64, device=dev)
        for t in range(b):
            # segment of this step's draw per batch: the walk's next label, or q (all samples) for
            # a new seed (chain finished, seed without label, or correlation 0)
            if sample_labels:
                segment = self._sample_next_labels(current, visited)
            else:
                segment = self._state_segment.index_select(0, state)
            picked, found = draw(segment, all_rows, out, t)
            if found is not None:
                # the walk's label has no sample left outside the batch: the chain stops and a new
                # seed takes this position
                failed = (~found).nonzero().reshape(-1)
                seeds, _ = draw(seed_segment[: failed.numel()], failed, out, t)
                picked.index_copy_(0, failed, seeds)
                segment.index_fill_(0, failed, q)
            out[t] = picked
            self._bitmap.index_fill_(0, self._slots(picked, self._row_base), True)
            is_seed = segment == q
            if sample_labels:
                label = self._seed_label.index_select(0, picked)
                length = torch.where(is_seed, one, length + 1)
                current = torch.where(is_seed, label, segment)
                visited.masked_fill_(is_seed[:, None], -1)
                visited.scatter_(1, (length - 1)[:, None], current[:, None])
                current.masked_fill_(length >= m, -1)
            else:
                state = torch.where(is_seed, self._seed_state.index_select(0, picked),
                                    self._state_next.index_select(0, state))
        del self._bitmap, self._row_base, self._hash_bits
        return out.T.to(torch.int64)

    def _init_bitmap(self, nb: int) -> None:
        """Zeroed per-batch membership bitmaps (``_BITMAP_SLOTS`` one-byte slots per batch at most)."""
        slots = _BITMAP_SLOTS
        while slots > 256 and nb * slots > _BITMAP_BYTES:
            slots //= 2
        dev = self.device
        self._hash_bits = slots.bit_length() - 1
        self._bitmap = torch.zeros(nb * slots, dtype=torch.bool, device=dev)
        self._row_base = torch.arange(nb, dtype=torch.int64, device=dev) * slots

    def _slots(self, samples: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
        """Bitmap positions ``base + hash(sample)``: the top bits of a 32-bit multiplicative hash."""
        bits = self._hash_bits
        if samples.dtype == torch.int32:
            h = (samples * -1640531535).bitwise_right_shift_(32 - bits).bitwise_and_((1 << bits) - 1)
        else:
            h = ((samples * 2654435761) & 0xFFFFFFFF) >> (32 - bits)
        return base + h

    def _sample_next_labels(self, current: torch.Tensor, visited: torch.Tensor) -> torch.Tensor:
        """Next segment per row: a label drawn proportionally to A[current, k] over the labels k
        not in ``visited``; q (a seed) where ``current`` is -1 or all those correlations are 0.

        Rejection of visited labels (exact) from the flat CDF of A, exact fallback after a few tries.
        """
        q, dev = self.n_labels, self.device
        segment = torch.full_like(current, q)
        rows = (current >= 0).nonzero().reshape(-1)
        if rows.numel() == 0:
            return segment
        cur = current.index_select(0, rows)
        vis = visited.index_select(0, rows)
        base, total = self._corr_base.index_select(0, cur), self._corr_total.index_select(0, cur)
        lo = cur * q
        pending = torch.arange(rows.numel(), device=dev)
        for _ in range(_CHAIN_RETRIES):
            u = torch.rand((pending.numel(), _CHAIN_PROPOSALS), generator=self._generator, dtype=torch.float64,
                           device=dev)
            val = u.mul_(total.index_select(0, pending)[:, None]).add_(base.index_select(0, pending)[:, None])
            pos = torch.searchsorted(self._corr_cum, val, right=True)
            lo_p = lo.index_select(0, pending)[:, None]
            pos = torch.minimum(torch.maximum(pos, lo_p), lo_p + (q - 1))
            lab = pos - lo_p
            # zero-weight labels (reached only by rounding) and visited labels are rejected
            ok = (self._corr_flat.index_select(0, pos.reshape(-1)).reshape(pos.shape) > 0)
            ok &= ~(vis.index_select(0, pending)[:, :, None] == lab[:, None, :]).any(dim=1)
            got = ok.any(dim=1)
            first = ok.to(torch.uint8).argmax(dim=1, keepdim=True)   # the first accepted proposal
            accept = got.nonzero().reshape(-1)
            segment.index_copy_(0, rows.index_select(0, pending.index_select(0, accept)),
                                lab.gather(1, first).reshape(-1).index_select(0, accept))
            pending = pending.index_select(0, (~got).nonzero().reshape(-1))
            if pending.numel() == 0:
                return segment
        # exact fallback: the full row of A over the unvisited labels
        vis = vis.index_select(0, pending)
        mask = torch.zeros((pending.numel(), q + 1), dtype=torch.bool, device=dev)
        mask.scatter_(1, torch.where(vis >= 0, vis, q), True)
        nxt = self._sample_next_labels_exact(cur.index_select(0, pending), mask[:, :q])
        segment.index_copy_(0, rows.index_select(0, pending), torch.where(nxt >= 0, nxt, q))
        return segment

    def _sample_next_labels_exact(self, current: torch.Tensor, visited: torch.Tensor) -> torch.Tensor:
        """Next label drawn proportionally to A[current, k] over unvisited k; -1 when all are 0."""
        w = self.correlation.index_select(0, current).masked_fill_(visited, 0.0)
        cum = torch.cumsum(w, dim=1)
        total = cum[:, -1]
        u = torch.rand(current.numel(), generator=self._generator, dtype=torch.float64, device=self.device)
        pick = torch.searchsorted(cum, (u * total)[:, None], right=True).clamp_(max=w.shape[1] - 1)
        # rounding can land on a zero-weight label at the end of the row: take the last positive one
        positive = w > 0
        last_pos = torch.where(positive, torch.arange(w.shape[1], device=self.device), -1).cummax(dim=1).values
        pick = last_pos.gather(1, pick).reshape(-1)
        return torch.where(total > 0, pick, torch.full_like(pick, -1))

    def _draw_rejection(self, segment: torch.Tensor, rows: torch.Tensor, out: torch.Tensor, t: int):
        """As :meth:`_draw_restricted`, by rejection from uniform members of the segment.

        A proposal (uniform member i of the segment) is accepted with probability
        ``w_i / max(w)`` and rejected when already in the batch: exactly p restricted to the
        segment minus the batch. ``_CHAIN_PROPOSALS << 2r`` proposals per row in round r, the first
        accepted one is kept; rows without one after ``_CHAIN_ROUNDS`` rounds (42 proposals, all
        rejected with probability ~ (1 - rate)^62 unless the segment is nearly all in the batch)
        use the exact fallback. Returns (picked, found) with ``found`` None when every row found one.
        """
        k, dev, g = rows.numel(), self.device, self._generator
        picked = torch.empty(k, dtype=torch.int32, device=dev)
        if k == 0:
            return picked, None
        lo = self._seg_start32.index_select(0, segment)
        size = self._seg_len.index_select(0, segment)
        base = self._row_base.index_select(0, rows) if t > 0 else None
        pending = None                                               # positions still to draw
        for r in range(_CHAIN_ROUNDS):
            if pending is None:
                lo_p, size_p, rows_p, base_p = lo, size, rows, base
            else:
                lo_p, size_p, rows_p = lo.index_select(0, pending), size.index_select(0, pending), \
                    rows.index_select(0, pending)
                base_p = None if base is None else base.index_select(0, pending)
            n_prop = _CHAIN_PROPOSALS << (2 * r)
            # one uniform gives the member (integer part) and the acceptance test (fraction)
            x = torch.rand((lo_p.numel(), n_prop), generator=g, dtype=torch.float64, device=dev).mul_(size_p[:, None])
            pos = x.to(torch.int32)
            frac = x.sub_(pos)
            cand = self._seg_members32.index_select(0, pos.add_(lo_p[:, None]).view(-1))
            ok = frac < self._chain_accept.index_select(0, cand).view(x.shape)
            cand = cand.view(x.shape)
            if t > 0:
                slot = self._slots(cand, base_p[:, None])
                hits = self._bitmap.index_select(0, slot.view(-1)).view(x.shape).logical_and_(ok).nonzero()
                if hits.numel():
                    # exact check of the hash hits against the batch so far
                    hr, hc = hits[:, 0], hits[:, 1]
                    value = cand[hr, hc]
                    taken = (out[:t].index_select(1, rows_p.index_select(0, hr)) == value[None, :]).any(dim=0)
                    ok[hr, hc] = ~taken
            if n_prop == 2:
                got = ok[:, 0] | ok[:, 1]
                value = torch.where(ok[:, 0], cand[:, 0], cand[:, 1])
            else:
                got = ok.any(dim=1)
                value = cand.gather(1, ok.to(torch.uint8).argmax(dim=1, keepdim=True)).view(-1)
            if pending is None:
                picked.copy_(value)
                pending = (~got).nonzero().view(-1)
            else:
                pending = _fill_accepted(picked, pending, got, value)
            if pending.numel() == 0:
                return picked, None
        values, ok = self._draw_restricted_exact(segment.index_select(0, pending), rows.index_select(0, pending),
                                                 out, t)
        picked.index_copy_(0, pending, values.to(torch.int32))
        found = torch.ones(k, dtype=torch.bool, device=dev)
        found.index_copy_(0, pending, ok)
        return picked, None if bool(ok.all()) else found

    def _draw_restricted(self, segment: torch.Tensor, rows: torch.Tensor, out: torch.Tensor, t: int):
        """One draw per row from p restricted to ``segment`` minus the batch so far, ``out[:t, row]``.

        Returns (picked, found); ``found`` is False where the restricted set is empty, None when
        every row found a sample.
        """
        k = rows.numel()
        dev = self.device
        picked = torch.full((k,), -1, dtype=torch.int64, device=dev)
        found = torch.ones(k, dtype=torch.bool, device=dev)
        if k == 0:
            return picked, None
        lo = self._seg_start.index_select(0, segment)
        hi = self._seg_start.index_select(0, segment + 1) - 1
        base, total = self._seg_base.index_select(0, segment), self._seg_total.index_select(0, segment)
        pending = None                                               # positions still to draw
        # Inverse-CDF proposals within the segment; a proposal already in the batch is rejected
        # (exactly sampling p restricted to the segment minus the batch).
        for _ in range(_CHAIN_RETRIES):
            if pending is None:
                lo_p, hi_p, base_p, total_p, rows_p = lo, hi, base, total, rows
            else:
                rows_p = rows.index_select(0, pending)
                lo_p, hi_p = lo.index_select(0, pending), hi.index_select(0, pending)
                base_p, total_p = base.index_select(0, pending), total.index_select(0, pending)
            u = torch.rand(lo_p.numel(), generator=self._generator, dtype=torch.float64, device=dev)
            pos = torch.searchsorted(self._seg_cum, u.mul_(total_p).add_(base_p), right=True)
            cand = self._seg_members.index_select(0, torch.minimum(torch.maximum(pos, lo_p), hi_p))
            taken = torch.zeros(cand.numel(), dtype=torch.bool, device=dev)
            if t > 0:
                slot = self._slots(cand, self._row_base.index_select(0, rows_p))
                hits = self._bitmap.index_select(0, slot).nonzero().reshape(-1)
                if hits.numel():
                    # exact check of the hash hits against the batch so far
                    batch = out[:t].index_select(1, rows_p.index_select(0, hits))
                    taken[hits] = (batch == cand.index_select(0, hits)[None, :]).any(dim=0)
            if pending is None:
                picked.copy_(cand)
                pending = taken.nonzero().reshape(-1)
            else:
                pending = _fill_accepted(picked, pending, ~taken, cand)
            if pending.numel() == 0:
                return picked, None
        if pending is None:
            pending = torch.arange(k, device=dev)
        values, ok = self._draw_restricted_exact(segment.index_select(0, pending), rows.index_select(0, pending),
                                                 out, t)
        picked.index_copy_(0, pending, values)
        found.index_copy_(0, pending, ok)
        return picked, None if bool(ok.all()) else found

    def _draw_restricted_exact(self, segment: torch.Tensor, rows: torch.Tensor, out: torch.Tensor, t: int):
        """Exact restricted draw by enumerating the segment's members, in groups of bounded size."""
        dev = self.device
        lengths = self._seg_start.index_select(0, segment + 1) - self._seg_start.index_select(0, segment)
        picked = torch.full((rows.numel(),), -1, dtype=torch.int64, device=dev)
        found = torch.zeros(rows.numel(), dtype=torch.bool, device=dev)
        ends = torch.cumsum(lengths, 0)
        start_row = 0
        while start_row < rows.numel():
            # rows start_row .. stop_row - 1 with at most _FALLBACK_PAIRS pairs (at least one row)
            offset = int(ends[start_row - 1]) if start_row else 0
            stop_row = int(torch.searchsorted(ends, torch.tensor(offset + _FALLBACK_PAIRS, device=dev), right=True))
            stop_row = max(stop_row, start_row + 1)
            seg, rws, lens = segment[start_row:stop_row], rows[start_row:stop_row], lengths[start_row:stop_row]
            r = rws.numel()
            pair_row = torch.repeat_interleave(torch.arange(r, device=dev), lens)
            row_first = torch.cumsum(lens, 0) - lens
            pos = (self._seg_start.index_select(0, seg).index_select(0, pair_row)
                   + torch.arange(pair_row.numel(), device=dev) - row_first.index_select(0, pair_row))
            cand = self._seg_members.index_select(0, pos)
            n = self.n_samples
            if t > 0:
                in_batch = (torch.arange(r, device=dev)[None, :] * n + out[:t].index_select(1, rws)).reshape(-1)
                taken = torch.isin(pair_row * n + cand, in_batch)
            else:
                taken = torch.zeros_like(cand, dtype=torch.bool)
            w = self._p.index_select(0, cand).masked_fill_(taken, 0.0)
            cum = torch.cumsum(w, 0)
            before = torch.cat([torch.zeros(1, dtype=torch.float64, device=dev), cum])
            row_base = before.index_select(0, row_first)
            row_total = before.index_select(0, row_first + lens) - row_base
            ok = row_total > 0
            u = torch.rand(r, generator=self._generator, dtype=torch.float64, device=dev)
            choice = torch.searchsorted(cum, row_base + u * row_total, right=True)
            choice = torch.minimum(torch.maximum(choice, row_first), row_first + lens - 1)
            # rounding past a row's end can land on a taken (zero-weight) member: step back to the
            # last member with positive weight, which lies in the same row when the row total > 0
            last_pos = torch.where(w > 0, torch.arange(w.numel(), device=dev), -1).cummax(dim=0).values
            choice = last_pos.index_select(0, choice).clamp_(min=0)
            picked[start_row:stop_row] = torch.where(ok, cand.index_select(0, choice), torch.full_like(choice, -1))
            found[start_row:stop_row] = ok
            start_row = stop_row
        return picked, found


#: Proposals per row and round of the chain sampler's rejection draws.
_CHAIN_PROPOSALS = 2
#: Bulk redraws of the chain batches with a repeated sample before the step-by-step repair.
_OPTIMISTIC_ROUNDS = 6
#: Rounds of the chain sampler's rejection draws before the exact fallback (proposals x4 per round).
_CHAIN_ROUNDS = 3
#: Smallest per-segment acceptance rate for the chain sampler's rejection draws (else inverse CDF).
_CHAIN_MIN_RATE = 0.25


def _label_walk_table(correlation: torch.Tensor, chain_length: int) -> torch.Tensor:
    """Deterministic argmax walks: row l lists the labels visited after seed label l (-1: stopped).

    Step s picks the unvisited label with the largest correlation to the previous one (the first
    such label on ties); the walk stops at a correlation of 0.
    """
    q = correlation.shape[0]
    dev = correlation.device
    steps = max(chain_length - 1, 0)
    table = torch.full((q, max(steps, 1)), -1, dtype=torch.int64, device=dev)
    if steps == 0:
        return table
    visited = torch.eye(q, dtype=torch.bool, device=dev)
    current = torch.arange(q, device=dev)
    alive = torch.ones(q, dtype=torch.bool, device=dev)
    for s in range(steps):
        a = correlation[current.clamp(min=0)].masked_fill(visited, -1.0)
        nxt = a.argmax(dim=1)  # first maximum: ties go to the smaller label index
        best = a.gather(1, nxt[:, None]).reshape(-1)
        alive &= best > 0
        nxt = torch.where(alive, nxt, torch.full_like(nxt, -1))
        table[:, s] = nxt
        visited[alive.nonzero().reshape(-1), nxt[alive]] = True
        current = nxt
    return table
