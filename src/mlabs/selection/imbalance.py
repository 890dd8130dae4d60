"""Label-imbalance measures (Charte et al.), the MLABS imbalance weights and label correlations.

See ``docs/method.md`` sections 2 (imbalance weight) and 5 (label correlation matrix).

Public API
----------
label_imbalance_ratios, mean_imbalance_ratio, minority_labels
    IRLbl, MeanIR and the minority-label mask.
k_nearest_neighbors
    Exact Euclidean k-nearest-neighbour search in row blocks of bounded memory (dense or sparse
    features), excluding each sample itself by index; deterministic tie-breaking.
knn_chunk_size
    The number of query rows per block that :func:`k_nearest_neighbors` uses.
imbalance_weights
    w_i = 1 + sum over minority labels of the normalised local imbalance (``docs/method.md`` section 2).
label_correlation
    The symmetric conditional co-occurrence matrix A of the chain variant (``docs/method.md`` section 5).
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import torch

from ._validation import as_label_matrix, check_positive_int, check_same_rows, list_indices, resolve_device

__all__ = [
    "label_imbalance_ratios",
    "mean_imbalance_ratio",
    "minority_labels",
    "k_nearest_neighbors",
    "knn_chunk_size",
    "imbalance_weights",
    "label_correlation",
]

#: Default memory budget of one block of the neighbour search (bytes of the distance-related
#: temporaries; the feature matrix itself is not counted).
KNN_MEMORY_BYTES = 256 * 2**20
# bytes per (query row, reference row) pair held at once: Gram entry, float64 distance and its
# temporaries, int64 sort key
_BYTES_PER_PAIR = 40


def _label_counts(labels) -> torch.Tensor:
    if sp.issparse(labels):
        labels = labels.toarray()
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


# --------------------------------------------------------------------------------------------
# nearest neighbours
# --------------------------------------------------------------------------------------------
def knn_chunk_size(n_samples: int, memory_bytes: int | None = None) -> int:
    """Query rows per block of :func:`k_nearest_neighbors` for ``n_samples`` reference rows.

    A block holds ``rows x n_samples`` distances and their temporaries (about 40 bytes per pair),
    so the block size is ``memory_bytes // (40 * n_samples)`` (at least 1).
    """
    budget = KNN_MEMORY_BYTES if memory_bytes is None else int(memory_bytes)
    return max(1, min(int(n_samples), budget // (_BYTES_PER_PAIR * max(int(n_samples), 1))))


class _Features:
    """Features as a row-sliceable matrix plus what the blocked Gram products need."""

    def __init__(self, features, device: torch.device):
        self.device = device
        if isinstance(features, torch.Tensor) and features.layout != torch.strided:
            features = features.detach().to_sparse_coo().coalesce().cpu()
            idx, val = features.indices().numpy(), features.values().numpy()
            features = sp.csr_matrix((val, (idx[0], idx[1])), shape=tuple(features.shape))
        if sp.issparse(features):
            x = sp.csr_matrix(features, dtype=np.float64)
            x.sum_duplicates()
            if x.ndim != 2:
                raise ValueError(f"features must be 2-D (samples x features), got shape {x.shape}")
            data = x.data
            self.sparse = True
            self.scipy = x
            self.shape = x.shape
            sq = np.asarray(x.multiply(x).sum(axis=1), dtype=np.float64).reshape(-1)
        else:
            t = features.detach() if isinstance(features, torch.Tensor) else torch.as_tensor(np.asarray(features))
            if t.ndim != 2:
                raise ValueError(f"features must be 2-D (samples x features), got shape {tuple(t.shape)}")
            t = t.to(device=device, dtype=torch.float64)
            data = t
            self.sparse = False
            self.shape = tuple(t.shape)
            sq = None
        finite = np.isfinite(data).all() if self.sparse else bool(torch.isfinite(data).all())
        if not finite:
            bad = (np.unique(x.nonzero()[0][~np.isfinite(x.data)]) if self.sparse
                   else (~torch.isfinite(data)).any(dim=1).nonzero().reshape(-1))
            raise ValueError(f"features contain NaN or infinite values in sample rows {list_indices(bad)}; "
                             "impute or drop them before computing imbalance weights")
        # Integer-valued features with small norms (binary bag-of-words, counts) have exactly
        # representable Gram products in float32: use it, twice as fast and bit-exact.
        if self.sparse:
            integral = bool(np.all(data == np.round(data)))
            max_sq = float(sq.max()) if sq.size else 0.0
        else:
            integral = bool((data == data.round()).all())
            max_sq = float((data * data).sum(dim=1).max()) if data.numel() else 0.0
        self.dtype = torch.float32 if integral and max_sq <= 2.0**24 else torch.float64
        if self.sparse:
            self.sq = torch.as_tensor(sq, device=device)
            csr = x.astype(np.float32 if self.dtype == torch.float32 else np.float64)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
                self.torch_csr = torch.sparse_csr_tensor(
                    torch.as_tensor(csr.indptr, dtype=torch.int64), torch.as_tensor(csr.indices, dtype=torch.int64),
                    torch.as_tensor(csr.data), size=csr.shape, check_invariants=False).to(device)
            self.csr = csr
        else:
            self.dense = data.to(self.dtype)
            self.sq = (data * data).sum(dim=1)

    def gram_rows(self, start: int, stop: int) -> torch.Tensor:
        """X[start:stop] @ X.T as a dense (stop - start) x N tensor."""
        if self.sparse:
            block = torch.as_tensor(self.csr[start:stop].toarray(), device=self.device)
            return torch.sparse.mm(self.torch_csr, block.T).T
        return self.dense[start:stop] @ self.dense.T


def k_nearest_neighbors(features, k: int = 5, *, chunk_size: int | None = None, device=None) -> torch.Tensor:
    """Exact Euclidean k nearest neighbours of every sample among the other samples.

    Parameters
    ----------
    features : array-like, torch.Tensor or scipy.sparse matrix, shape (N, d)
        Dense or sparse features (on the scale the distances should use).
    k : int, default 5
        Number of neighbours, ``1 <= k <= N - 1``.
    chunk_size : int, optional
        Query rows per block; default :func:`knn_chunk_size` (a block of about 256 MiB).
    device : torch.device or str, optional
        Where to compute; default the features' device (CPU for numpy / scipy input).

    Returns
    -------
    torch.Tensor of int64, shape (N, k)
        Neighbour indices, nearest first.

    Notes
    -----
    Squared distances come from ``||a||^2 + ||b||^2 - 2 a.b`` with a blocked (dense or sparse)
    matrix product, so memory is ``O(chunk_size * N)`` besides the features. Each sample is
    excluded from its own neighbours **by index**, not by distance: duplicate rows (common in
    bag-of-words data) are legitimate neighbours at distance 0.

    Ties: distances are compared as float32 values and equal values are ordered by the smaller
    sample index, so the result is deterministic and does not depend on the block size. For
    integer-valued features (binary, counts) with squared norms up to 2^24 the products are
    computed exactly in float32, and distances up to 2^24 are exact; for real-valued features,
    distances closer than float32 resolution (relative 6e-8) count as ties, and distances within
    1e-12 relative of zero (the rounding error of the expansion for duplicate rows) are set to 0.
    """
    feats = _Features(features, resolve_device(device, features))
    n = feats.shape[0]
    k = check_positive_int(k, "k (number of neighbours)")
    if n < 2 or k > n - 1:
        raise ValueError(f"k = {k} neighbours need at least k + 1 = {k + 1} samples, got {n}; lower k")
    if n >= 2**31:
        raise ValueError(f"k_nearest_neighbors supports up to 2^31 - 1 samples, got {n}")
    chunk = knn_chunk_size(n) if chunk_size is None else check_positive_int(chunk_size, "chunk_size")
    out = torch.empty((n, k), dtype=torch.int64, device=feats.device)
    for start, stop, nbr in _knn_blocks(feats, k, chunk):
        out[start:stop] = nbr
    return out


def _knn_blocks(feats: _Features, k: int, chunk: int):
    """Yield ``(start, stop, neighbours)`` per block of query rows."""
    n = feats.shape[0]
    cols = torch.arange(n, device=feats.device, dtype=torch.int64)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        rows = torch.arange(start, stop, device=feats.device)
        d = feats.gram_rows(start, stop).to(torch.float64).mul_(-2.0)
        d.add_(feats.sq[start:stop, None]).add_(feats.sq[None, :])
        if feats.dtype == torch.float64:
            # the expansion leaves rounding noise ~1e-16 * (|a|^2 + |b|^2) for identical rows
            tol = (feats.sq[start:stop, None] + feats.sq[None, :]).mul_(1e-12)
            d.masked_fill_(d <= tol, 0.0)
            del tol
        d.clamp_(min=0.0)
        d[rows - start, rows] = float("inf")  # exclude self by index
        # Sort key: non-negative float32 bit patterns order like the values; the low 32 bits
        # carry the column index, so equal distances order by index, deterministically.
        key = d.to(torch.float32).view(torch.int32).to(torch.int64)
        del d
        key.bitwise_left_shift_(32).bitwise_or_(cols)
        best = torch.topk(key, k, dim=1, largest=False, sorted=True).values
        yield start, stop, best.bitwise_and_(0xFFFFFFFF)


# --------------------------------------------------------------------------------------------
# imbalance weights
# --------------------------------------------------------------------------------------------
def imbalance_weights(features, labels, k: int = 5, *, chunk_size: int | None = None, device=None,
                      normalise: bool = True) -> torch.Tensor:
    """The static MLABS imbalance weight of every training sample (``docs/method.md`` section 2).

    Minority labels are those with IRLbl_j > MeanIR. For a sample i carrying a minority label j,
    ``B_ij`` is the fraction of its ``k`` nearest neighbours (Euclidean, excluding i itself) that
    do not carry j; otherwise ``B_ij = 0``. Per label, the informative entries ``0 < B_ij < 1``
    are normalised to sum to one (safe positives, B = 0, and isolated ones, B = 1, get nothing),
    and ``w_i = 1 + sum_j Bn_ij``.

    Parameters
    ----------
    features : array-like, torch.Tensor or scipy.sparse matrix, shape (N, d)
        Training features, already scaled (the study min-max scales on the training fold).
    labels : array-like, torch.Tensor or scipy.sparse matrix, shape (N, q)
        0/1 training labels; every label needs at least one positive.
    k : int, default 5
        Number of neighbours.
    chunk_size, device
        As in :func:`k_nearest_neighbors` (the neighbour search is blocked, memory ``O(chunk * N)``).
    normalise : bool, default True
        The published per-label normalisation; ``False`` gives ``w_i = 1 + sum_j B_ij`` over the same
        informative entries (an ablation with much larger weights, not the published method).

    Returns
    -------
    torch.Tensor of float64, shape (N,)
        Weights ``>= 1``; exactly 1 for samples without minority labels.

    Raises
    ------
    ValueError
        Non-2-D or non-0/1 labels, a label without positives, a row-count mismatch, NaN/inf
        features, or ``k`` not in ``[1, N - 1]``.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0], [0.1], [0.2], [5.0], [5.1], [5.2]])
    >>> Y = np.array([[1, 0], [1, 1], [1, 1], [1, 0], [1, 0], [1, 0]])
    >>> imbalance_weights(X, Y, k=2).tolist()  # label 1 is the minority; half of the neighbours lack it
    [1.0, 1.5, 1.5, 1.0, 1.0, 1.0]
    """
    device = resolve_device(device, features, labels)
    y = as_label_matrix(labels, device)
    n, q = y.shape
    check_same_rows(features, n)
    counts = y.sum(dim=0)
    empty = (counts == 0).nonzero().reshape(-1)
    if empty.numel():
        raise ValueError(f"labels {list_indices(empty)} have no positive sample, so their imbalance ratio is "
                         "undefined; drop these label columns (e.g. with mlabs.data.filter_labels) first")
    ir = counts.max().to(torch.float64) / counts.to(torch.float64)
    minority = (ir > ir.mean()).nonzero().reshape(-1)
    w = torch.ones(n, dtype=torch.float64, device=device)
    if minority.numel() == 0:
        # no minority label (e.g. balanced labels): every weight is 1, no neighbour search needed
        k = check_positive_int(k, "k (number of neighbours)")
        if k > n - 1:
            raise ValueError(f"k = {k} neighbours need at least k + 1 = {k + 1} samples, got {n}; lower k")
        return w
    feats = _Features(features, device)
    k = check_positive_int(k, "k (number of neighbours)")
    if k > n - 1:
        raise ValueError(f"k = {k} neighbours need at least k + 1 = {k + 1} samples, got {n}; lower k")
    chunk = knn_chunk_size(n) if chunk_size is None else check_positive_int(chunk_size, "chunk_size")
    ym = y[:, minority]                                     # N x m (bool)
    ym_f = ym.to(torch.float32)
    missing = torch.empty(ym.shape, dtype=torch.int64, device=device)  # neighbours without label j
    for start, stop, nbr in _knn_blocks(feats, k, chunk):
        with_label = ym_f[nbr].sum(dim=1).round().to(torch.int64)     # block x m
        missing[start:stop] = k - with_label
    informative = ym & (missing > 0) & (missing < k)
    b = torch.where(informative, missing.to(torch.float64) / k, torch.zeros((), dtype=torch.float64, device=device))
    if not normalise:
        return w + b.sum(dim=1)
    total = b.sum(dim=0)
    bn = b / torch.where(total > 0, total, torch.ones_like(total))
    return w + bn.sum(dim=1)


# --------------------------------------------------------------------------------------------
# label correlation
# --------------------------------------------------------------------------------------------
def label_correlation(labels, device=None) -> torch.Tensor:
    """Symmetric conditional co-occurrence matrix of the chain variant (``docs/method.md`` section 5).

    ``A_jk = (C_jk / n_k + C_jk / n_j) / 2`` with ``C_jk`` the number of samples carrying both
    labels and ``n_j`` the positives of label j; ``A_jj = 0``. Entries involving a label without
    positives are 0.

    Parameters
    ----------
    labels : array-like, torch.Tensor or scipy.sparse matrix, shape (N, q)
        0/1 labels (sparse input is densified).
    device : optional
        Device of the result; default the labels' device.

    Returns
    -------
    torch.Tensor of float64, shape (q, q)
        Symmetric, entries in [0, 1], zero diagonal.

    Examples
    --------
    >>> A = label_correlation([[1, 1], [1, 0], [1, 0], [0, 1]])  # C_01 = 1, n = (3, 2)
    >>> [[round(v, 4) for v in row] for row in A.tolist()]    # (1/2 + 1/3) / 2
    [[0.0, 0.4167], [0.4167, 0.0]]
    """
    y = as_label_matrix(labels, device).to(torch.float64)
    c = y.T @ y                                   # exact integer counts in float64
    n = torch.diagonal(c).clone()
    safe = torch.where(n > 0, n, torch.ones_like(n))
    cond = c / safe[None, :]                      # C_jk / n_k
    a = 0.5 * (cond + cond.T)
    a.fill_diagonal_(0.0)
    return a.clamp_(0.0, 1.0)
