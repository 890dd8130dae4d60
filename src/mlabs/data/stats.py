"""Cardinality, density, MeanIR, ... of raw and preprocessed data."""

from __future__ import annotations

import math
import os
from typing import Sequence

import numpy as np

from .arff import MultiLabelData
from .preprocess import filter_labels, select_features
from .registry import dataset_info, dataset_names
from .sources import load_dataset


def label_imbalance_ratios(Y) -> np.ndarray:
    """IRLbl_j = max_k n_k / n_j of a 0/1 label matrix (``inf`` for a label without positives).

    The measure the samplers use (:func:`mlabs.selection.label_imbalance_ratios`), in numpy: the
    data statistics need neither torch nor the samplers (tests/test_code_digest.py checks that
    the two agree).
    """
    counts = (np.asarray(Y) != 0).sum(axis=0, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return counts.max() / counts


def dataset_statistics(data) -> dict:
    """Size and label statistics of a :class:`MultiLabelData` or :class:`PreparedData`.

    Returns
    -------
    dict
        ``instances, features, labels, cardinality`` (mean labels per instance), ``density``
        (cardinality / labels), ``mean_ir`` (MeanIR), ``max_ir`` (largest IRLbl), ``distinct_labelsets``
        and ``labelless`` (instances without any label).
    """
    if not hasattr(data, "X") or not hasattr(data, "Y"):
        raise TypeError(f"expected MultiLabelData or PreparedData, got {type(data).__name__}")
    Y = (np.asarray(data.Y) != 0).astype(np.uint8)
    n, q = Y.shape
    ir = label_imbalance_ratios(Y)
    card = float(Y.sum()) / n if n else 0.0
    return {
        "instances": n,
        "features": int(data.X.shape[1]),
        "labels": q,
        "cardinality": card,
        "density": card / q if q else 0.0,
        # exactly rounded, so that no summation order (machine, library) shows in the last digit
        "mean_ir": math.fsum(ir) / q if q else 0.0,
        "max_ir": float(ir.max()),
        "distinct_labelsets": int(np.unique(Y, axis=0).shape[0]),
        "labelless": int((Y.sum(axis=1) == 0).sum()),
    }


def statistics_row(raw: MultiLabelData, prepared) -> dict:
    """One row of the data-set statistics table: the raw data and what preprocessing kept.

    Primed keys (``d'``, ``q'``, ``cardinality'``, ``MeanIR'``, ``label-less'``) describe
    ``prepared`` (a :class:`PreparedData`, or anything with ``X`` and ``Y``); ``labels dropped``
    counts the labels removed by the ``min_label_positives`` rule.
    """
    r, a = dataset_statistics(raw), dataset_statistics(prepared)
    return {
        "name": raw.name, "instances": r["instances"], "features": r["features"], "labels": r["labels"],
        "cardinality": r["cardinality"], "density": r["density"], "MeanIR": r["mean_ir"],
        "max IRLbl": r["max_ir"], "distinct label sets": r["distinct_labelsets"],
        "label-less": r["labelless"], "d'": a["features"], "q'": a["labels"],
        "labels dropped": r["labels"] - a["labels"],
        "cardinality'": a["cardinality"], "MeanIR'": a["mean_ir"], "label-less'": a["labelless"],
    }


def statistics_table(names: Sequence[str] | None = None, data_dir: str | os.PathLike | None = None):
    """Raw and after-preprocessing statistics for registered data sets, as a ``pandas.DataFrame``.

    Columns as :func:`statistics_row`, after feature selection (registry ratio) and removal of
    labels with <= 20 positives. Index: data set name. Defaults to all 14.
    """
    import pandas as pd

    names = dataset_names() if names is None else [dataset_info(n).name for n in names]
    records = []
    for name in names:
        data = load_dataset(name, data_dir=data_dir)
        X, _ = select_features(data.X, dataset_info(name).feature_ratio)
        Y, _ = filter_labels(data.Y)
        kept = MultiLabelData(X=X, Y=Y, feature_names=[], label_names=[], name=name)
        records.append(statistics_row(data, kept))
    return pd.DataFrame.from_records(records).set_index("name")
