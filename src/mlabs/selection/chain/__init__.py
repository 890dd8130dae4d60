"""Chain-based adaptive selection: the sampler and its drawing engine."""

from .engine import label_walk_table
from .sampler import ChainBatchSampler

__all__ = ["ChainBatchSampler", "label_walk_table"]
