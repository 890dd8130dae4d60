"""What a cell is and the settings it trains under: :class:`Cell`, :class:`TrainConfig`.

Every stage of the study reads these (through :mod:`mlabs.config`), the data preparation
included, so this module imports neither torch nor the models and samplers: a method name is
checked against :data:`METHODS`, a plain list, and the option names of a method against its
sampler class where the samplers are built (:func:`mlabs.training.check_selection_options`).
:mod:`mlabs.training` re-exports both classes.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from .code_digest import cell_code_roots, code_digest, library_versions, warmup_code_roots

__all__ = ["METHODS", "Cell", "TrainConfig", "resolve_method", "closest"]

#: every batch-selection method a cell can use, the keys of ``mlabs.selection.SAMPLERS`` in their
#: order (a test checks that the two agree)
METHODS = ("random", "adaptive", "chain", "online_batch", "active_bias", "recency_bias", "balanced",
           "uncertainty", "d2ace", "reweight", "infobatch")


#: a variant's name (an entry of ``selection`` with a ``method`` key): it names a cell folder
_VARIANT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def closest(name: str, choices) -> str:
    """`` (did you mean 'x'?)`` for the valid name closest to ``name``, or ``""``."""
    match = difflib.get_close_matches(str(name), list(choices), n=1, cutoff=0.0)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _is_variant(entry) -> bool:
    return isinstance(entry, Mapping) and "method" in entry


def resolve_method(name: str, selection: Mapping | None = None) -> tuple[str, dict]:
    """The base method and resolved sampler options of a method or variant name.

    A *variant* is an entry of ``selection`` (``params.yaml``) with a ``method`` key: a name for a
    base method of :data:`METHODS` plus options, e.g. ``hard_only: {method: adaptive, score: loss}``.
    Its options are the base method's entry of ``selection`` updated by its own; a variant of a
    method that takes the cell's s_e may fix its own (``selection_pressure``). A base method
    resolves to itself and its entry. The option names are checked against the sampler classes
    where the samplers are built (:func:`mlabs.training.check_selection_options`).

    Raises
    ------
    ValueError
        An unknown name or base method (one line naming the closest valid name).
    """
    selection = selection or {}
    entry = selection.get(name)
    if _is_variant(entry):
        if name in METHODS:
            raise ValueError(f"selection.{name}: a base method's entry cannot name another method; "
                             f"give the variant its own name")
        if not _VARIANT_NAME.match(name):
            raise ValueError(f"selection.{name}: a variant's name must be letters, digits and underscores "
                             f"(it names the cells' folder)")
        base = entry["method"]
        if base not in METHODS:
            raise ValueError(f"selection.{name}: unknown base method {base!r}{closest(base, METHODS)}")
        own = {k: v for k, v in entry.items() if k != "method"}
        return base, {**dict(selection.get(base) or {}), **own}
    if name not in METHODS:
        variants = [k for k, v in selection.items() if _is_variant(v)]
        raise ValueError(f"unknown batch-selection method or variant {name!r}"
                         f"{closest(name, [*METHODS, *variants])}; variants are entries of params.yaml's "
                         f"selection section with a 'method' key")
    return name, dict(entry or {})


def _hash(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Cell:
    """One training run of the grid.

    Parameters
    ----------
    dataset, model : str
        Data set and model registry names.
    method : str
        How batches are chosen after warm-up, one of :data:`METHODS` or the name of a variant
        (an entry of ``params.yaml``'s ``selection`` with a ``method`` key, resolved by the
        :class:`TrainConfig` the cell is trained under).
    fold : int
        Which of the prepared folds is held out.
    seed : int
        The run's seed: every random stream of the run (model initialisation, the model's own
        draws, batches, evaluation) is derived from it (:mod:`mlabs.streams`).
    selection_pressure : float
        s_e of the methods that use the cell's selection pressure (adaptive and chain; the others
        take theirs from their options and ignore it).
    batch_size : int
    """

    dataset: str
    model: str
    method: str
    fold: int
    seed: int = 0
    selection_pressure: float = 2.0
    batch_size: int = 128

    def __post_init__(self):
        if self.method not in METHODS and not (isinstance(self.method, str) and _VARIANT_NAME.match(self.method)):
            raise ValueError(f"unknown method {self.method!r}; choose one of {METHODS} or a variant name "
                             f"(letters, digits, underscores)")
        if self.fold < 0:
            raise ValueError(f"fold must be >= 0, got {self.fold}")

    @property
    def warmup_key(self) -> tuple:
        return (self.dataset, self.model, self.fold, self.seed, self.batch_size)

    def label(self) -> str:
        """A short human-readable name used in messages and progress bars (every field; s_e
        matters only to the methods that take the cell's selection pressure)."""
        return (f"{self.dataset}/{self.model}/{self.method} s_e={self.selection_pressure:g} "
                f"B={self.batch_size} fold={self.fold} seed={self.seed}")


@dataclass
class TrainConfig:
    """Optimisation and selection settings shared by every method.

    Defaults are those of ``docs/method.md``: Adam (lr 1e-4, weight decay 1e-4),
    100 epochs of which 3 are warm-up epochs with shuffled random batches and
    a linear learning-rate warm-up.
    """

    epochs: int = 100
    warmup_epochs: int = 3
    lr: float = 1e-4
    weight_decay: float = 1e-4
    model_params: dict = field(default_factory=dict)
    #: learning rate of a model whose own published rate differs from ``lr`` (model name -> rate);
    #: it holds for every selection method of that model
    model_lr: dict = field(default_factory=dict)
    #: sampler options, one mapping per method (``params.yaml``'s ``selection``), e.g.
    #: ``{"adaptive": {"quantize": False}, "online_batch": {"recompute_every": 5}}``; the option
    #: names are checked where the samplers are built (:func:`mlabs.training.check_selection_options`)
    selection: dict = field(default_factory=dict)
    threshold: float = 0.5
    device: str = "cpu"
    deterministic: bool = True
    #: seconds between resume checkpoints of a cell (0: after every epoch); an interrupted cell
    #: loses at most this much work, and its result does not depend on it
    checkpoint_seconds: float = 30.0

    def __post_init__(self):
        for name, value in (("lr", self.lr), ("weight_decay", self.weight_decay), *(
                (f"model_lr.{k}", v) for k, v in self.model_lr.items())):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"{name} must be a number >= 0, got {value!r} (in YAML write 1.0e-3, not 1e-3, "
                                 f"which YAML reads as a string)")
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if not 0 <= self.warmup_epochs <= self.epochs:
            raise ValueError(f"warmup_epochs must be in [0, epochs={self.epochs}], got {self.warmup_epochs}")
        for method, opts in self.selection.items():
            if _is_variant(opts):
                resolve_method(method, self.selection)   # a variant: its name and base are checked there
                continue
            if method not in METHODS:
                raise ValueError(f"selection.{method}: not a batch-selection method{closest(method, METHODS)}; "
                                 f"the selection section holds one mapping of options per method, of "
                                 f"{list(METHODS)}, or a variant with a 'method' key")
            if opts is not None and not isinstance(opts, dict):
                raise ValueError(f"selection.{method} must be a mapping of options, got {opts!r}")

    # fingerprints -----------------------------------------------------------------------------
    # A fingerprint is the hash of (settings, the fold's data digest, the digest of the code that
    # computes the result, torch and numpy versions): a finished result is reused only when all
    # four are unchanged (docs/protocol.md, "What a fingerprint covers").

    def warmup_settings(self, model: str) -> dict:
        """Every setting that determines the warm-up checkpoint of ``model``."""
        return {"warmup_epochs": self.warmup_epochs, "lr": self.lr_for(model),
                "weight_decay": self.weight_decay, "model_params": self.params_for(model)}

    def cell_settings(self, model: str, method: str) -> dict:
        """Every setting that determines a cell's result (beyond the cell itself).

        Only the options of the cell's own method count, so tuning one method's options does
        not make the finished cells of the others stale.
        """
        base, options = self.resolve_method(method)
        settings = {"warmup": self.warmup_settings(model), "epochs": self.epochs,
                    "selection": options, "threshold": self.threshold}
        if base != method:
            # a variant: its base method too (a base method's payload is unchanged)
            settings["method"] = base
        return settings

    def warmup_fingerprint(self, model: str, data: str) -> str:
        """Hash of everything that determines the warm-up checkpoint; ``data`` is the fold's
        :meth:`~mlabs.data.Split.digest`."""
        return _hash({"settings": self.warmup_settings(model), "data": data,
                      "code": code_digest(warmup_code_roots(model)), "versions": library_versions()})

    def fingerprint(self, model: str, method: str, data: str) -> str:
        """Hash of everything that determines a cell's result: :meth:`cell_settings`, the fold's
        data digest ``data``, the code of the cell's model, sampler and training loop
        (:func:`mlabs.code_digest.cell_code_roots`) and the torch and numpy versions."""
        return _hash({"settings": self.cell_settings(model, method), "data": data,
                      "code": code_digest(cell_code_roots(model, self.resolve_method(method)[0])),
                      "versions": library_versions()})

    # per-model and per-method views ------------------------------------------------------------

    def lr_for(self, model: str) -> float:
        """The learning rate of ``model``: its entry of :attr:`model_lr`, else :attr:`lr`."""
        return float(self.model_lr.get(model, self.lr))

    def params_for(self, model: str) -> dict:
        """The hyper-parameters of ``model`` (``model_params`` is keyed by model name)."""
        return dict(self.model_params.get(model) or {})

    def selection_for(self, method: str) -> dict:
        """The sampler options of ``method`` from :attr:`selection` (a copy)."""
        return dict(self.selection.get(method) or {})

    # named variants --------------------------------------------------------------------------
    def resolve_method(self, name: str) -> tuple[str, dict]:
        """``(base method, resolved options)`` of a method or variant name (:func:`resolve_method`)."""
        return resolve_method(name, self.selection)

    def variant_selection_pressure(self, name: str) -> float | None:
        """The s_e a variant fixes for its cells (its own ``selection_pressure``), else None: the
        profile's ``train.selection_pressure``. (Whether its base takes the cell's s_e is checked
        where the samplers are built; a base that does not ignores the cell's value.)"""
        base, _ = self.resolve_method(name)
        own = self.selection.get(name) if base != name else None
        value = (own or {}).get("selection_pressure")
        return None if value is None else float(value)
