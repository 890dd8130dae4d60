"""The registry of the 14 shipped benchmarks, the data directory, and the package's error type."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

MULAN_NS = "http://mulan.sourceforge.net/labels"
#: the fix named by every "file missing or corrupt" error
FIX_MISSING_FILES = "run `dvc pull` (or `dvc checkout data.dvc`) in the project root, or set MLABS_DATA_DIR"
#: the fix for a missing or corrupt file of the user's own (DVC does not restore those)
FIX_OWN_FILE = "check the path, or copy the file again from its source (docs/data.md, 'Add your own data set')"


class DataError(ValueError):
    """A data file is missing, corrupt or inconsistent, or the data cannot be split as requested."""




@dataclass(frozen=True)
class DatasetInfo:
    """What is known about one shipped data set (values from ``data/README.md``).

    The ``*_prepared`` fields describe the data after feature selection with ``feature_ratio`` and
    removal of labels with <= 20 positives (``data/README.md`` section 5). Statistics are rounded as there.
    """

    name: str
    sha256_arff: str
    sha256_xml: str
    n_instances: int
    n_features: int
    n_labels: int
    sparse: bool
    feature_ratio: float
    n_features_prepared: int
    n_labels_prepared: int
    cardinality: float
    density: float
    mean_ir: float
    max_ir: float
    distinct_labelsets: int
    cardinality_prepared: float
    mean_ir_prepared: float
    labelless_prepared: int

    @property
    def arff_file(self) -> str:
        return f"{self.name}.arff.gz"

    @property
    def xml_file(self) -> str:
        return f"{self.name}.xml"


_RCV1_XML = "e1028f4f10b8974d8881c30eb6e7f231ba248154999c85b8d7d95e18e10b2480"
# Order = the authors' order (data/README.md section 5).
_REGISTRY: tuple[DatasetInfo, ...] = (
    DatasetInfo(name="emotions", sha256_arff="f4216883c0b51fda9c84640e776f83d7a56e9c0ddde6bb026276f4836511bdf9",
                sha256_xml="dbce8e6ccbbb2fcbfd9e9edbb230d7ed12692c6e13f59fdbc0161fa9b6cf2dc0",
                n_instances=593, n_features=72, n_labels=6, sparse=False,
                feature_ratio=1.0, n_features_prepared=72, n_labels_prepared=6,
                cardinality=1.868, density=0.311, mean_ir=1.5, max_ir=1.8,
                distinct_labelsets=27, cardinality_prepared=1.868,
                mean_ir_prepared=1.5, labelless_prepared=0),
    DatasetInfo(name="scene", sha256_arff="0ac52c0bfbc186508b8fe33af8644d02980ed697f11c2af4f6f82dc0b9ba09a2",
                sha256_xml="55d8b247b949ad5c52e5a73d8c6775ec6e5469ce9682465b45b333b68ee4bcc5",
                n_instances=2407, n_features=294, n_labels=6, sparse=False,
                feature_ratio=1.0, n_features_prepared=294, n_labels_prepared=6,
                cardinality=1.074, density=0.179, mean_ir=1.3, max_ir=1.5,
                distinct_labelsets=15, cardinality_prepared=1.074,
                mean_ir_prepared=1.3, labelless_prepared=0),
    DatasetInfo(name="yeast", sha256_arff="ba075a1a003a5a77c37663b9efd40f5f2d5997d4ba22ae78a71b85616e087e4a",
                sha256_xml="c3056cc26444b5158b1588d1b73bec9c45429e10f0957ad085903423cb81f247",
                n_instances=2417, n_features=103, n_labels=14, sparse=False,
                feature_ratio=1.0, n_features_prepared=103, n_labels_prepared=14,
                cardinality=4.237, density=0.303, mean_ir=7.2, max_ir=53.4,
                distinct_labelsets=198, cardinality_prepared=4.237,
                mean_ir_prepared=7.2, labelless_prepared=0),
    DatasetInfo(name="Corel5k", sha256_arff="69fd007fbdb34f51e4220a26c56713004538f2d8588d8d888143527d7163e9c8",
                sha256_xml="54ef6a6ccb7ca9b77524052b34b306d5d501661a5609b9d1cc7085b2b597679d",
                n_instances=5000, n_features=499, n_labels=374, sparse=False,
                feature_ratio=1.0, n_features_prepared=499, n_labels_prepared=149,
                cardinality=3.522, density=0.009, mean_ir=189.6, max_ir=1120.0,
                distinct_labelsets=3175, cardinality_prepared=3.158,
                mean_ir_prepared=23.4, labelless_prepared=17),
    DatasetInfo(name="rcv1subset1", sha256_arff="6506ab15778ac2d879a3e72aef1d3777d3f96fad77ca175875f71a1322b61f52",
                sha256_xml=_RCV1_XML,
                n_instances=6000, n_features=47236, n_labels=101, sparse=True,
                feature_ratio=0.02, n_features_prepared=944, n_labels_prepared=80,
                cardinality=2.880, density=0.029, mean_ir=54.5, max_ir=691.0,
                distinct_labelsets=1028, cardinality_prepared=2.840,
                mean_ir_prepared=16.8, labelless_prepared=0),
    DatasetInfo(name="rcv1subset2", sha256_arff="d9c5f0d93adc619104b0bdc14ad1a4f38d51a3b18ec8c5f33bb78e54f27e0b0c",
                sha256_xml=_RCV1_XML,
                n_instances=6000, n_features=47236, n_labels=101, sparse=True,
                feature_ratio=0.02, n_features_prepared=944, n_labels_prepared=81,
                cardinality=2.634, density=0.026, mean_ir=45.5, max_ir=474.3,
                distinct_labelsets=954, cardinality_prepared=2.591,
                mean_ir_prepared=18.2, labelless_prepared=0),
    DatasetInfo(name="rcv1subset3", sha256_arff="4afdc59fbcdc410d549066b9c0f977e68a8966137e7d466e14eb1f6c9d826a5f",
                sha256_xml=_RCV1_XML,
                n_instances=6000, n_features=47236, n_labels=101, sparse=True,
                feature_ratio=0.02, n_features_prepared=944, n_labels_prepared=82,
                cardinality=2.614, density=0.026, mean_ir=68.3, max_ir=1427.0,
                distinct_labelsets=939, cardinality_prepared=2.579,
                mean_ir_prepared=18.9, labelless_prepared=0),
    DatasetInfo(name="yahoo-Business1", sha256_arff="a5b78af98bf3d5836a0db7d64ddc8a0739702ec04909f967f08b85777d4b417f",
                sha256_xml="fb857beb00dc77278adbd35d7dd65ac615696706a364b66e48f9f7eeae494c26",
                n_instances=11214, n_features=21924, n_labels=30, sparse=True,
                feature_ratio=0.05, n_features_prepared=1096, n_labels_prepared=25,
                cardinality=1.599, density=0.053, mean_ir=880.2, max_ir=9723.0,
                distinct_labelsets=233, cardinality_prepared=1.595,
                mean_ir_prepared=105.5, labelless_prepared=10),
    DatasetInfo(name="yahoo-Arts1", sha256_arff="9c52d01ec13001148350986b7652e2988b319888b61346ead10c4bf042f323a4",
                sha256_xml="2b8d4a31b2240852e1422deabe90a1d7298c8f6bb94aca4b89dd0c6f8fd9493a",
                n_instances=7484, n_features=23146, n_labels=26, sparse=True,
                feature_ratio=0.05, n_features_prepared=1157, n_labels_prepared=24,
                cardinality=1.654, density=0.064, mean_ir=94.7, max_ir=1838.0,
                distinct_labelsets=599, cardinality_prepared=1.653,
                mean_ir_prepared=13.3, labelless_prepared=0),
    DatasetInfo(name="bibtex", sha256_arff="0e9478ac0f235cea868480feac092f6f618b2518faf90975212e29ef6b72c7ec",
                sha256_xml="08fe20013c1e75dcf1888c185f5187c95e76495b8518ce289b4d3afce38d1232",
                n_instances=7395, n_features=1836, n_labels=159, sparse=True,
                feature_ratio=1.0, n_features_prepared=1836, n_labels_prepared=159,
                cardinality=2.402, density=0.015, mean_ir=12.5, max_ir=20.4,
                distinct_labelsets=2856, cardinality_prepared=2.402,
                mean_ir_prepared=12.5, labelless_prepared=0),
    # tmc2007-500 replaces the authors' full tmc2007 (ratio 0.01 of 49,060); all 500 features are kept.
    DatasetInfo(name="tmc2007-500", sha256_arff="32b08902100cefef05fa536c143ead22580819685edcf8d98ca1078e66ac7c34",
                sha256_xml="cb6a67c8ae72fd9b47d89f77aa5b7f6cafb4ba9c20b1124c65a95a3f2caec38d",
                n_instances=28596, n_features=500, n_labels=22, sparse=True,
                feature_ratio=1.0, n_features_prepared=500, n_labels_prepared=22,
                cardinality=2.158, density=0.098, mean_ir=15.2, max_ir=36.7,
                distinct_labelsets=1341, cardinality_prepared=2.158,
                mean_ir_prepared=15.2, labelless_prepared=0),
    DatasetInfo(name="enron", sha256_arff="4800f89adbac63d891c128a137ab81ff178f00208777a46306b00e3d15cc924f",
                sha256_xml="ed40c92d7f613eed51714912cab10dddc4ce456262137d8fef230d44c7f4457b",
                n_instances=1702, n_features=1001, n_labels=53, sparse=True,
                feature_ratio=1.0, n_features_prepared=1001, n_labels_prepared=33,
                cardinality=3.378, density=0.064, mean_ir=74.0, max_ir=913.0,
                distinct_labelsets=753, cardinality_prepared=3.258,
                mean_ir_prepared=16.7, labelless_prepared=0),
    DatasetInfo(name="cal500", sha256_arff="40628cf6f1ad912c67791481a184e2746e1310bca4eded7d4d81ba4fa107ff68",
                sha256_xml="877e128531268d7661faa3e44f7bb43cbcda829c0895e49879168775b192728c",
                n_instances=502, n_features=68, n_labels=174, sparse=False,
                feature_ratio=1.0, n_features_prepared=68, n_labels_prepared=119,
                cardinality=26.044, density=0.150, mean_ir=20.6, max_ir=88.8,
                distinct_labelsets=502, cardinality_prepared=24.859,
                mean_ir_prepared=7.7, labelless_prepared=0),
    DatasetInfo(name="LLOG-F", sha256_arff="98e7f6db8e903210c1a2f51b0c9c8d7c1cec5793cfc049976be946c7288577e2",
                sha256_xml="2c327480417930b697743278a8dc294eecec9dace8fb2dfa114531768aec6055",
                n_instances=1460, n_features=1004, n_labels=75, sparse=True,
                feature_ratio=1.0, n_features_prepared=1004, n_labels_prepared=22,
                cardinality=1.180, density=0.016, mean_ir=39.3, max_ir=171.0,
                distinct_labelsets=304, cardinality_prepared=0.911,
                mean_ir_prepared=3.9, labelless_prepared=393),
)
_BY_NAME = {info.name: info for info in _REGISTRY}
#: the shipped data sets by case-folded name
BY_FOLDED_NAME = {info.name.casefold(): info for info in _REGISTRY}


_SHIPPED_FILES = frozenset(f for info in _REGISTRY for f in (info.arff_file, info.xml_file))


def fix_for_file(path) -> str:
    """What to do about a missing or corrupt ``path``: DVC restores a shipped file, not one of the user's."""
    return FIX_MISSING_FILES if Path(path).name in _SHIPPED_FILES else FIX_OWN_FILE


def dataset_names() -> list[str]:
    """Names of the 14 shipped data sets, in the order of the authors' code."""
    return [info.name for info in _REGISTRY]


def dataset_info(name: str) -> DatasetInfo:
    """Registry entry of a shipped data set; exact name or case-insensitive match.

    Raises
    ------
    ValueError (DataError)
        For an unknown name; the message lists the known names.
    """
    if not isinstance(name, str):
        raise TypeError(f"data set name must be a str, got {type(name).__name__}")
    info = _BY_NAME.get(name) or BY_FOLDED_NAME.get(name.casefold())
    if info is None:
        raise DataError(f"unknown data set {name!r}; known data sets: {', '.join(dataset_names())}")
    return info


def _find_project_data(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        if (folder / "data.dvc").is_file() or ((folder / "pyproject.toml").is_file() and (folder / "data").is_dir()):
            return folder / "data"
    return None


def data_dir() -> Path:
    """Directory holding the shipped data files.

    Resolution order: the environment variable ``MLABS_DATA_DIR``; the ``data/`` folder of the project
    root found by walking up from the current working directory (a folder with ``data.dvc``, or with
    ``pyproject.toml`` and a ``data/`` folder); the same search starting at this source file (useful
    for an editable install used from elsewhere).
    """
    env = os.environ.get("MLABS_DATA_DIR")
    if env:
        path = Path(env).expanduser()
        if not path.is_dir():
            raise DataError(f"MLABS_DATA_DIR={env!r} is not a directory")
        return path
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        found = _find_project_data(start)
        if found is not None:
            return found
    raise DataError("cannot locate the data directory: no project root (a folder with data.dvc) above "
                    f"{Path.cwd()}; {FIX_MISSING_FILES}")


def resolve_data_dir(directory) -> Path:
    """``directory``, or the project's data folder when None (:func:`data_dir`)."""
    return data_dir() if directory is None else Path(directory)
