"""Label-imbalance measures (Charte et al.) and the MLABS imbalance weights.

See ``method.md`` section 2.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["label_imbalance_ratios", "mean_imbalance_ratio", "minority_labels"]


def _label_counts(labels) -> torch.Tensor:
    y = torch.as_tensor(np.asarray(labels) if not isinstance(labels, torch.Tensor) else labels)
    if y.ndim != 2:
        raise ValueError(f"labels must be a 2-D 0/1 matrix (samples x labels), got shape {tuple(y.shape)}")
    return y.to(torch.float64).sum(dim=0)


def label_imbalance_ratios(labels) -> torch.Tensor:
    """IRLbl_j = max_k n_k / n_j for every label (``inf`` for a label without positives)."""
    n = _label_counts(labels)
    return n.max() / n


def mean_imbalance_ratio(labels) -> float:
    """MeanIR: the mean of IRLbl over labels."""
    return float(label_imbalance_ratios(labels).mean())


def minority_labels(labels) -> torch.Tensor:
    """Boolean mask of the minority labels, IRLbl_j > MeanIR."""
    ir = label_imbalance_ratios(labels)
    return ir > ir.mean()
