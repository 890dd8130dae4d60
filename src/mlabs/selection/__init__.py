"""Batch selection for multi-label training: probabilities, imbalance weights, samplers.

Implements *Multi-Label Adaptive Batch Selection by Highlighting Hard and Imbalanced Samples*
(Zhou, Liu, Wang, Tsoumakas, ECML PKDD 2024, arXiv 2403.18192) as specified in
``docs/method.md``; the chain variant (section 5) is a reconstruction. See ``docs/selection.md``.

Public API
----------
selection_probabilities
    Quantized rank-based probabilities p ~ s_e^(Q/N) (or exact ranks).
imbalance_weights, label_correlation, k_nearest_neighbors, knn_chunk_size
    Static per-fold quantities: the MLABS imbalance weight and the label co-occurrence matrix.
label_imbalance_ratios, mean_imbalance_ratio, minority_labels
    IRLbl, MeanIR and the minority labels.
RandomBatchSampler, AdaptiveBatchSampler, ChainBatchSampler
    ``torch.utils.data.Sampler`` objects yielding one batch (list of ints) at a time; use them as
    ``DataLoader(dataset, batch_sampler=sampler)`` or iterate directly.
OnlineBatchSampler, ActiveBiasSampler, RecencyBiasSampler, BalancedBatchSampler,
UncertaintyBatchSampler, D2ACEBatchSampler
    The other batch-selection methods, with the same interface (``docs/selection.md``).
ReweightSampler, InfoBatchSampler
    Random batches with per-sample loss weights (``loss_weights``): selection's reweighting
    control and InfoBatch (Qin et al. 2024).
SAMPLERS, make_sampler, needs_predictions
    Samplers by name, as ``params.yaml`` names them.
"""

from .imbalance import (
    imbalance_weights,
    k_nearest_neighbors,
    knn_chunk_size,
    label_correlation,
    label_imbalance_ratios,
    mean_imbalance_ratio,
    minority_labels,
)
from .probabilities import selection_probabilities
from .active_bias import ActiveBiasSampler
from .adaptive import AdaptiveBatchSampler
from .balanced import BalancedBatchSampler
from .chain import ChainBatchSampler
from .d2ace import D2ACEBatchSampler
from .online_batch import OnlineBatchSampler
from .random import RandomBatchSampler
from .recency_bias import RecencyBiasSampler
from .reweight import ReweightSampler
from .infobatch import InfoBatchSampler
from .registry import SAMPLERS, make_sampler, needs_predictions
from .uncertainty import UncertaintyBatchSampler

__all__ = [
    "selection_probabilities",
    "imbalance_weights",
    "label_correlation",
    "k_nearest_neighbors",
    "knn_chunk_size",
    "label_imbalance_ratios",
    "mean_imbalance_ratio",
    "minority_labels",
    "RandomBatchSampler",
    "AdaptiveBatchSampler",
    "ChainBatchSampler",
    "OnlineBatchSampler",
    "ActiveBiasSampler",
    "RecencyBiasSampler",
    "BalancedBatchSampler",
    "UncertaintyBatchSampler",
    "D2ACEBatchSampler",
    "ReweightSampler",
    "InfoBatchSampler",
    "SAMPLERS",
    "make_sampler",
    "needs_predictions",
]
