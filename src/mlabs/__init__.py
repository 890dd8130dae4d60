"""mlabs: multi-label adaptive batch selection.

Subpackages
-----------
mlabs.selection
    Selection probabilities, imbalance weights, label correlations and the
    PyTorch batch samplers (random, adaptive, chain, six other methods and two
    controls; ``mlabs.selection.SAMPLERS``).
mlabs.models
    The five deep multi-label models (C2AE, MPVAE, PACA, CLIF, DELA) behind
    one training interface.
mlabs.data
    Loading, preprocessing and splitting of MULAN-style data sets.
mlabs.metrics
    The evaluation metrics of the study.
"""

__version__ = "0.1.0"
