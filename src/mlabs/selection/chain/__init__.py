"""Chain-based adaptive selection: the sampler, its static tables, its restricted draws and its
two drawing strategies (optimistic bulk draws, stepwise draws)."""

from .sampler import ChainBatchSampler
from .tables import label_walk_table

__all__ = ["ChainBatchSampler", "label_walk_table"]
