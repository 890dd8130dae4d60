"""Loading, preprocessing and splitting of MULAN multi-label data sets.

Public API
----------
dataset_names, dataset_info, data_dir
    The registry of the 14 shipped benchmarks and where their files live.
load_mulan, load_dataset
    Read any MULAN data set (ARFF + XML label file) / one by name: a shipped one, verified against
    the registry, or your own (``docs/data.md``, "Add your own data set").
dataset_spec, user_files, is_shipped, USER_CHECKSUMS
    User data sets: their description in ``params.yaml`` (``data.custom``), their files, and the
    checksum record that reports a later change of a file.
select_features, filter_labels, make_folds, prepare
    The study's preprocessing (``docs/method.md`` section 6) and its fold assignment.
fold_split
    Train / validation / test matrices of one fold, min-max scaled on the training part.
save_prepared, load_prepared
    One ``.npz`` per prepared data set, written atomically.
dataset_statistics, statistics_table
    Cardinality, density, MeanIR, ... of raw and preprocessed data.

Label order
-----------
Labels are always in the order of the MULAN XML file, never in ARFF column order. For yeast and enron
the two orders differ; the XML is the file that *defines* which attributes are labels, so its order is
the one every metric, report and saved file of the project uses.
"""

from __future__ import annotations

from .arff import MultiLabelData, load_mulan
from .preprocess import PreparedData, Split, filter_labels, fold_split, make_folds, prepare, select_features
from .registry import DataError, DatasetInfo, data_dir, dataset_info, dataset_names
from .sources import USER_CHECKSUMS, UserDataset, dataset_spec, is_shipped, load_dataset, user_files
from .stats import dataset_statistics, statistics_row, statistics_table
from .store import load_prepared, save_prepared

__all__ = [
    "DataError",
    "DatasetInfo",
    "MultiLabelData",
    "PreparedData",
    "Split",
    "dataset_names",
    "dataset_info",
    "statistics_row",
    "data_dir",
    "load_mulan",
    "load_dataset",
    "USER_CHECKSUMS",
    "UserDataset",
    "dataset_spec",
    "is_shipped",
    "user_files",
    "select_features",
    "filter_labels",
    "make_folds",
    "prepare",
    "fold_split",
    "save_prepared",
    "load_prepared",
    "dataset_statistics",
    "statistics_table",
]
