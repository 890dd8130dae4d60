"""Layer sizes that depend on the data set, written as rules in ``params.yaml``.

One profile runs several data sets, so a size such as "half the number of
features" cannot be a number there. A size hyper-parameter takes either a
positive integer or one of the rules below, resolved when the model is built
for a data set with ``d`` features and ``q`` labels.
"""

from __future__ import annotations

import math

__all__ = ["SIZE_RULES", "resolve_size"]

#: rule name -> size as a function of (d, q)
SIZE_RULES = {
    "d": lambda d, q: d,
    "half_d": lambda d, q: math.ceil(d / 2),
    "q": lambda d, q: q,
    "half_q": lambda d, q: math.ceil(q / 2),
}


def resolve_size(value: int | str, *, n_features: int, n_labels: int, name: str) -> int:
    """The integer size that ``value`` (an int or a rule of :data:`SIZE_RULES`) stands for.

    Raises
    ------
    ValueError
        For an unknown rule or a size below 1, naming the hyper-parameter.
    """
    if isinstance(value, str):
        if value not in SIZE_RULES:
            raise ValueError(f"{name} must be a positive int or one of {sorted(SIZE_RULES)}, got {value!r}")
        size = SIZE_RULES[value](n_features, n_labels)
    elif isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise ValueError(f"{name} must be a positive int or one of {sorted(SIZE_RULES)}, got {value!r}")
    else:
        size = int(value)
    if size < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r} (= {size})")
    return size
