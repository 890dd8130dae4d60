"""The study's preprocessing (``docs/method.md`` section 6), folds and per-fold splits."""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import scipy.sparse as sp

from .arff import MatrixShape, MultiLabelData
from .registry import DataError, dataset_info



def _check_2d(name, A):
    if A.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {A.shape}")


def select_features(X, ratio: float) -> tuple[np.ndarray | sp.csr_matrix, np.ndarray]:
    """Keep the ``int(d * ratio)`` columns of ``X`` with the largest column sums.

    Ties are broken by column position (stable sort), and the kept columns stay in their original
    order. Sparse input stays sparse (CSR) and is never densified.

    Parameters
    ----------
    X : array-like or sparse matrix, ``(n_samples, d)``
    ratio : float in (0, 1]
        1.0 keeps every column.

    Returns
    -------
    X_selected : same kind as ``X``
    kept : numpy.ndarray of int64
        Sorted indices of the kept columns of ``X``.
    """
    if not sp.issparse(X):
        X = np.asarray(X)
    _check_2d("X", X)
    ratio = float(ratio)
    if not 0.0 < ratio <= 1.0:
        raise ValueError(f"ratio must be in (0, 1], got {ratio}")
    d = X.shape[1]
    k = int(d * ratio)
    if k < 1:
        raise ValueError(f"ratio {ratio} keeps no column of {d}")
    if k == d:
        kept = np.arange(d, dtype=np.int64)
    else:
        # Missing values ('?', NaN) count as 0 in the ranking.
        if sp.issparse(X):
            X = sp.csr_matrix(X)
            sums = np.bincount(X.indices, weights=np.nan_to_num(X.data, nan=0.0), minlength=d)
        else:
            sums = np.nansum(np.asarray(X, dtype=np.float64), axis=0)
        # Stable descending order: ties keep the lower column index first.
        order = np.argsort(-sums, kind="stable")
        kept = np.sort(order[:k]).astype(np.int64)
    if sp.issparse(X):
        return sp.csr_matrix(X)[:, kept], kept
    return X[:, kept], kept


def filter_labels(Y, min_positives: int = 21) -> tuple[np.ndarray, np.ndarray]:
    """Drop labels with fewer than ``min_positives`` positive instances.

    The default 21 reproduces the authors' rule "drop every label with <= 20 positives in the whole data
    set" (before any split). Instances left without labels are kept.

    Returns
    -------
    Y_kept : numpy.ndarray
    kept : numpy.ndarray of int64
        Indices of the kept label columns.

    Raises
    ------
    DataError
        If no label has ``min_positives`` positives.
    """
    Y = np.asarray(Y)
    _check_2d("Y", Y)
    if int(min_positives) != min_positives or min_positives < 0:
        raise ValueError(f"min_positives must be a non-negative integer, got {min_positives!r}")
    counts = (Y != 0).sum(axis=0)
    kept = np.flatnonzero(counts >= min_positives).astype(np.int64)
    if kept.size == 0:
        raise DataError(f"no label has at least {min_positives} positives (largest count {int(counts.max(initial=0))}); "
                        "lower data.min_label_positives in params.yaml")
    return Y[:, kept], kept


@contextlib.contextmanager
def _global_numpy_seed(seed: int) -> Iterator[None]:
    """Seed NumPy's global RNG for the block and restore the caller's state afterwards.

    scikit-multilearn's IterativeStratification ignores (and, with current scikit-learn, rejects)
    ``random_state`` and draws from ``np.random``; this makes its folds reproducible without leaking
    the seeding into the rest of the program.
    """
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def check_fold_count(n: int, n_folds) -> None:
    """Refuse an ``n_folds`` that is not an integer >= 2, or too few samples to give every fold a
    validation and a test half."""
    if int(n_folds) != n_folds or n_folds < 2:
        raise ValueError(f"n_folds must be an integer >= 2, got {n_folds!r}")
    if n < 2 * n_folds:
        raise DataError(f"{n} samples are too few for {n_folds} folds with validation and test halves")


def make_folds(Y, n_folds: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Iterative stratification (order 1) into ``n_folds`` folds, each halved into validation/test.

    Returns
    -------
    fold : numpy.ndarray of int64, ``(n_samples,)``
        Fold id in ``0..n_folds-1``.
    part : numpy.ndarray of int64, ``(n_samples,)``
        0 = validation, 1 = test, for the run in which the sample's fold is held out. Each held-out
        fold is split by a seeded random permutation (not stratified): ``floor(m/2)`` validation,
        ``ceil(m/2)`` test samples.
    """
    from skmultilearn.model_selection import IterativeStratification

    Y = np.asarray(Y)
    _check_2d("Y", Y)
    n = Y.shape[0]
    check_fold_count(n, n_folds)
    if int(seed) != seed or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}")
    fold = np.full(n, -1, dtype=np.int64)
    splitter = IterativeStratification(n_splits=int(n_folds), order=1)
    with _global_numpy_seed(int(seed)):
        for f, (_, test) in enumerate(splitter.split(np.zeros((n, 1)), (Y != 0).astype(np.int8))):
            fold[test] = f
    if (fold < 0).any():
        raise DataError("iterative stratification left samples unassigned")
    rng = np.random.default_rng(int(seed))
    part = np.ones(n, dtype=np.int64)
    for f in range(int(n_folds)):
        members = rng.permutation(np.flatnonzero(fold == f))
        part[members[: members.size // 2]] = 0
    return fold, part


@dataclass
class PreparedData(MatrixShape):
    """A preprocessed data set with its fold assignment (see :func:`prepare`).

    ``feature_indices`` / ``label_indices`` index the kept columns of the raw data;
    ``original_shape`` is (instances, features, labels) of the raw data.
    """

    X: np.ndarray | sp.csr_matrix
    Y: np.ndarray
    fold: np.ndarray
    part: np.ndarray
    feature_names: list[str]
    label_names: list[str]
    name: str | None
    seed: int
    feature_ratio: float
    min_label_positives: int
    n_folds: int
    feature_indices: np.ndarray
    label_indices: np.ndarray
    original_shape: tuple[int, int, int]

    def __repr__(self) -> str:
        return (f"PreparedData(name={self.name!r}, n_samples={self.n_samples}, n_features={self.n_features}, "
                f"n_labels={self.n_labels}, n_folds={self.n_folds}, seed={self.seed})")


def _registry_ratio(name) -> float:
    if name is None:
        return 1.0
    try:
        return dataset_info(name).feature_ratio
    except DataError:
        return 1.0


def prepare(data: MultiLabelData, feature_ratio: float | None = None, min_label_positives: int = 21,
            n_folds: int = 5, seed: int = 0, batch_size: int | None = None) -> PreparedData:
    """Feature selection, label filtering and fold assignment (``docs/method.md`` section 6).

    Parameters
    ----------
    data : MultiLabelData
    feature_ratio : float, optional
        Fraction of features kept by column sum; default: the registry ratio for ``data.name``
        (1.0 for unregistered data).
    min_label_positives : int, default 21
        Labels with fewer positives in the whole data set are dropped (21 = "drop <= 20").
    n_folds, seed : int
        Passed to :func:`make_folds`; the same seed gives the same folds.
    batch_size : int, optional
        The training batch size: the training part of every fold (the other ``n_folds - 1`` folds)
        must hold at least one full batch.

    Raises
    ------
    DataError
        Too few instances for the folds and the batch size; no label left after filtering (the
        messages name the data set, its files and the setting to change).

    Notes
    -----
    Scaling is *not* done here: it is fitted per fold on the training part by :func:`fold_split`,
    which also imputes missing values (NaN). A sparse ``X`` stays sparse.
    """
    if not isinstance(data, MultiLabelData):
        raise TypeError(f"data must be a MultiLabelData, got {type(data).__name__}")
    where = f"data set {data.name!r}" + (f" ({', '.join(data.files)})" if data.files else "")
    n = data.n_samples
    try:                        # first: the label filter's and batch's errors would hide it
        check_fold_count(n, n_folds)
    except DataError as exc:
        raise DataError(f"{where}: {exc}; check that the file has its data rows, or lower data.n_folds in "
                        "params.yaml") from None
    if batch_size is not None:
        # the smallest training part: all folds but the largest one (ceil(n / n_folds) instances)
        n_train = n - -(-n // int(n_folds))
        if n_train < int(batch_size):
            raise DataError(f"{where}: {n} instances leave {n_train} for training in a fold of {n_folds}-fold "
                            f"cross-validation, fewer than one batch of {batch_size}; lower train.batch_size or "
                            "data.n_folds in params.yaml, or use a larger data set")
    ratio = _registry_ratio(data.name) if feature_ratio is None else float(feature_ratio)
    X, fkept = select_features(data.X, ratio)
    try:
        Y, lkept = filter_labels(data.Y, min_label_positives)
        fold, part = make_folds(Y, n_folds=n_folds, seed=seed)
    except DataError as exc:
        raise DataError(f"{where}: {exc}") from None
    return PreparedData(
        X=X, Y=np.ascontiguousarray(Y, dtype=np.uint8), fold=fold, part=part,
        feature_names=[data.feature_names[j] for j in fkept], label_names=[data.label_names[j] for j in lkept],
        name=data.name, seed=int(seed), feature_ratio=ratio, min_label_positives=int(min_label_positives),
        n_folds=int(n_folds), feature_indices=fkept, label_indices=lkept,
        original_shape=(data.n_samples, data.n_features, data.n_labels),
    )


@dataclass
class Split:
    """Dense float32 matrices of one fold; features min-max scaled with training statistics.

    ``scale_min`` and ``scale_range`` are the fitted per-feature minimum and range (0 for constant
    training columns, which are set to 0 in every part).
    """

    X_train: np.ndarray
    Y_train: np.ndarray
    X_val: np.ndarray
    Y_val: np.ndarray
    X_test: np.ndarray
    Y_test: np.ndarray
    train_idx: np.ndarray
    val_idx: np.ndarray
    test_idx: np.ndarray
    fold: int
    label_names: list[str] = field(default_factory=list)
    feature_names: list[str] = field(default_factory=list)
    scale_min: np.ndarray | None = None
    scale_range: np.ndarray | None = None

    def digest(self) -> str:
        """A hash of this fold's matrices and indices, the data's part of a cell's fingerprint.

        Prepared data that changes (another ``min_label_positives``, feature ratio, seed, or an
        edited file) changes it, so finished cells and warm-ups trained on the old data are
        retrained instead of being reported as current.
        """
        h = hashlib.sha256()
        for a in (self.X_train, self.Y_train, self.X_val, self.Y_val, self.X_test, self.Y_test,
                  self.train_idx, self.val_idx, self.test_idx):
            a = np.ascontiguousarray(a)
            h.update(f"{a.dtype.str}{a.shape}".encode())
            h.update(a.tobytes())
        return h.hexdigest()[:16]

    def __repr__(self) -> str:
        return (f"Split(fold={self.fold}, train={self.train_idx.size}, val={self.val_idx.size}, "
                f"test={self.test_idx.size}, features={self.X_train.shape[1]}, labels={self.Y_train.shape[1]})")


def _dense_rows(X, idx) -> np.ndarray:
    rows = X[idx]
    return rows.toarray().astype(np.float64) if sp.issparse(rows) else np.asarray(rows, dtype=np.float64)


def fold_split(prepared: PreparedData, fold: int) -> Split:
    """Training (the other folds), validation and test (the two halves of ``fold``) matrices.

    Missing values (NaN, from ``?`` in the ARFF file) are replaced by the mean of their column over
    the training part (0 where the whole training column is missing), so no validation or test
    value is used. Min-max scaling is then fitted on the training part only:
    ``(x - min_train) / (max_train - min_train)``.
    Validation and test values are not clipped and may fall outside [0, 1]. Columns constant on the
    training part carry no learnable information and become 0 in every part.

    Raises
    ------
    DataError
        If some label has no positive instance in the training part.
    """
    if not isinstance(prepared, PreparedData):
        raise TypeError(f"prepared must be a PreparedData, got {type(prepared).__name__}")
    if int(fold) != fold or not 0 <= fold < prepared.n_folds:
        raise ValueError(f"fold must be an integer in 0..{prepared.n_folds - 1}, got {fold!r}")
    fold = int(fold)
    held = prepared.fold == fold
    train_idx = np.flatnonzero(~held)
    val_idx = np.flatnonzero(held & (prepared.part == 0))
    test_idx = np.flatnonzero(held & (prepared.part == 1))
    Y = prepared.Y
    missing = np.flatnonzero(Y[train_idx].sum(axis=0) == 0)
    if missing.size:
        names = [prepared.label_names[j] for j in missing[:5]]
        raise DataError(f"data set {prepared.name!r}, fold {fold}: label(s) {names} have no positive instance in "
                        "the training part; raise min_label_positives or use fewer folds")
    X_train = _dense_rows(prepared.X, train_idx)
    X_val, X_test = _dense_rows(prepared.X, val_idx), _dense_rows(prepared.X, test_idx)
    if np.isnan(X_train).any() or np.isnan(X_val).any() or np.isnan(X_test).any():
        with np.errstate(invalid="ignore"):
            counts = (~np.isnan(X_train)).sum(axis=0)
            fill = np.where(counts > 0, np.nansum(X_train, axis=0) / np.maximum(counts, 1), 0.0)
        for A in (X_train, X_val, X_test):
            rows, cols = np.nonzero(np.isnan(A))
            A[rows, cols] = fill[cols]
    lo = X_train.min(axis=0)
    rng = X_train.max(axis=0) - lo
    constant = rng == 0
    # Dividing by 1 for constant columns avoids 0/0; multiplying by 0 then sets them to 0 everywhere.
    denom = np.where(constant, 1.0, rng)
    keep = (~constant).astype(np.float64)

    def scale(A):
        return ((A - lo) / denom * keep).astype(np.float32)

    def labels(idx):
        return Y[idx].astype(np.float32)

    return Split(
        X_train=scale(X_train), Y_train=labels(train_idx),
        X_val=scale(X_val), Y_val=labels(val_idx),
        X_test=scale(X_test), Y_test=labels(test_idx),
        train_idx=train_idx, val_idx=val_idx, test_idx=test_idx, fold=fold,
        label_names=list(prepared.label_names), feature_names=list(prepared.feature_names),
        scale_min=lo, scale_range=np.where(constant, 0.0, rng),
    )
