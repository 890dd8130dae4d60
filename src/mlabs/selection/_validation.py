"""Input conversion and validation shared by the selection module (scikit-learn style messages)."""

from __future__ import annotations

import numbers

import numpy as np
import scipy.sparse as sp
import torch

#: How many offending indices an error message lists before abbreviating.
_MAX_LISTED = 5


def list_indices(idx) -> str:
    idx = [int(i) for i in torch.as_tensor(idx).reshape(-1)[: _MAX_LISTED + 1].tolist()]
    head = ", ".join(str(i) for i in idx[:_MAX_LISTED])
    return f"[{head}{', ...' if len(idx) > _MAX_LISTED else ''}]"


def check_same_rows(features, n_samples: int) -> None:
    """Raise unless ``features`` (array-like or tensor) has one row per labelled sample."""
    n_rows = features.shape[0] if hasattr(features, "shape") else len(features)
    if n_rows != n_samples:
        raise ValueError(f"features have {n_rows} rows but labels have {n_samples}; pass the features and "
                         "labels of the same training samples")


def resolve_device(device, *inputs) -> torch.device:
    """``device`` if given, else the device of the first torch tensor among ``inputs``, else CPU."""
    if device is not None:
        return torch.device(device)
    for x in inputs:
        if isinstance(x, torch.Tensor):
            return x.device
    return torch.device("cpu")


def as_label_matrix(labels, device=None, name: str = "labels") -> torch.Tensor:
    """A 2-D 0/1 label matrix (numpy, torch, scipy-sparse or nested lists) as a bool tensor."""
    device = resolve_device(device, labels)
    if sp.issparse(labels):
        labels = labels.toarray()  # label matrices are small (N x q); densifying is fine
    if isinstance(labels, torch.Tensor):
        y = labels.detach()
        if y.layout != torch.strided:
            y = y.to_dense()
    else:
        y = torch.as_tensor(np.asarray(labels))
    if y.ndim != 2:
        raise ValueError(f"{name} must be a 2-D 0/1 matrix (samples x labels), got shape {tuple(y.shape)}; "
                         "reshape a single label column with labels.reshape(-1, 1)")
    if y.shape[0] < 1 or y.shape[1] < 1:
        raise ValueError(f"{name} must have at least one sample and one label, got shape {tuple(y.shape)}")
    if y.dtype != torch.bool:
        ok = (y == 0) | (y == 1)
        if not bool(ok.all()):
            bad = (~ok).nonzero()[0].tolist()
            raise ValueError(f"{name} must contain only 0 and 1, found {y[bad[0], bad[1]].item()!r} at "
                             f"(sample {bad[0]}, label {bad[1]}); binarise the label matrix first")
        y = y != 0
    return y.to(device)


def check_positive_int(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def check_batch_size(batch_size, n_samples: int) -> int:
    """B as an int with ``1 <= B <= N``."""
    b = check_positive_int(batch_size, "batch_size")
    if b > n_samples:
        raise ValueError(f"batch_size = {batch_size} is larger than the {n_samples} samples; "
                         "use a batch size between 1 and the number of samples")
    return b


def check_selection_pressure(selection_pressure) -> float:
    try:
        s = float(selection_pressure)
    except (TypeError, ValueError):
        raise ValueError(f"selection_pressure must be a number > 1, got {selection_pressure!r}") from None
    if not np.isfinite(s) or s <= 1.0:
        raise ValueError(f"selection_pressure must be a finite number > 1 (the ratio of the largest to the "
                         f"smallest selection probability; the authors' grid is 2, 4, 16, 64), got {s}")
    return s


def check_finite_nonnegative(values: torch.Tensor, name: str, sample_ids: torch.Tensor | None = None) -> None:
    """Raise naming the samples whose value is NaN/inf or negative (``sample_ids`` maps positions to samples)."""
    finite = torch.isfinite(values)
    if not bool(finite.all()):
        pos = (~finite).nonzero().reshape(-1)
        ids = pos if sample_ids is None else sample_ids[pos]
        raise ValueError(f"{name} contains NaN or infinite values at sample indices {list_indices(ids)} "
                         f"({pos.numel()} in total); check the model output / loss for these samples")
    negative = values < 0
    if bool(negative.any()):
        pos = negative.nonzero().reshape(-1)
        ids = pos if sample_ids is None else sample_ids[pos]
        raise ValueError(f"{name} must be non-negative, found negative values at sample indices "
                         f"{list_indices(ids)} ({pos.numel()} in total); pass a per-sample loss such as "
                         "BCE with reduction='none' averaged over labels")
