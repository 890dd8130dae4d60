"""Data-dependent layer sizes written as rules (``mlabs.models.sizes``)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlabs.models import build
from mlabs.models.sizes import resolve_size


@pytest.mark.parametrize("rule, expected", [("d", 73), ("half_d", 37), ("q", 7), ("half_q", 4), (12, 12)])
def test_rules_resolve_against_the_data_set(rule, expected):
    assert resolve_size(rule, n_features=73, n_labels=7, name="x") == expected


@pytest.mark.parametrize("bad", ["half", 0, -3, 2.5, True, None])
def test_bad_sizes_name_the_parameter(bad):
    with pytest.raises(ValueError, match="latent_dim"):
        resolve_size(bad, n_features=10, n_labels=3, name="latent_dim")


def test_models_take_rules_for_their_sizes():
    d, q = 72, 6
    Y = (np.random.default_rng(0).random((50, q)) > 0.5).astype(np.float32)
    assert build("dela", d, q, latent_dim="half_d").latent_dim == math.ceil(d / 2)
    paca = build("paca", d, q, latent_dim="half_d", flow_context="authors")
    assert paca.latent_dim == 36 and paca.pos_flow.dsf.conditioner.context_dim == 3 * (256 // 36)
    clif = build("clif", d, q, train_labels=Y, embedding_dim="q", gin_hidden=["half_q"])
    assert clif.label_embeddings().shape == (q, q)
    with pytest.raises(ValueError, match="flow_context"):
        build("paca", d, q, flow_context="wide")
