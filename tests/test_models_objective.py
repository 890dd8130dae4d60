"""Every model's objective splits into per-sample terms and batch terms (``StepOutput``)."""

from __future__ import annotations

import pytest
import torch

from mlabs.models import MODEL_NAMES, build
from mlabs.models.base import StepOutput


def _batch(n=24, d=10, q=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, d, generator=g)
    y = (torch.rand(n, q, generator=g) < 0.4).float()
    y[0] = 0.0                       # a sample without positives
    y[1] = 1.0                       # one without negatives
    y[:, 0] = torch.tensor([0.0, 1.0] * (n // 2))  # every label has positives and negatives
    return x, y


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_loss_is_mean_of_per_sample_objective_plus_batch_terms(name):
    x, y = _batch()
    torch.manual_seed(0)
    model = build(name, x.shape[1], y.shape[1], train_labels=y.numpy())
    model.train()
    torch.manual_seed(1)
    out = model.training_step(x, y)
    assert type(model).per_sample_objective_supported
    assert out.per_sample_objective.shape == (x.shape[0],) and out.per_sample_objective.requires_grad
    assert out.batch_objective.shape == ()
    recombined = out.per_sample_objective.mean() + out.batch_objective
    torch.testing.assert_close(recombined, out.loss, rtol=1e-5, atol=1e-6)
    # uniform weights give the same objective; None gives loss itself
    torch.testing.assert_close(out.weighted_loss(torch.ones(x.shape[0])), out.loss, rtol=1e-5, atol=1e-6)
    assert out.weighted_loss(None) is out.loss
    # the per-sample terms really are per sample: weighting one sample changes the objective by its term
    w = torch.ones(x.shape[0])
    w[3] = 2.0
    delta = out.weighted_loss(w) - out.weighted_loss(torch.ones(x.shape[0]))
    torch.testing.assert_close(delta, out.per_sample_objective[3] / x.shape[0], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_per_sample_objective_gradient_matches_loss(name):
    """The split carries the objective's gradient too, not only its value."""
    x, y = _batch(seed=2)
    torch.manual_seed(0)
    model = build(name, x.shape[1], y.shape[1], train_labels=y.numpy())
    model.train()
    torch.manual_seed(1)
    out = model.training_step(x, y)
    params = [p for p in model.parameters() if p.requires_grad]
    g_loss = torch.autograd.grad(out.loss, params, retain_graph=True, allow_unused=True)
    g_split = torch.autograd.grad(out.per_sample_objective.mean() + out.batch_objective, params,
                                  allow_unused=True)
    for a, b in zip(g_loss, g_split):
        if a is None or b is None:
            assert (a is None or not a.abs().any()) and (b is None or not b.abs().any())
            continue
        torch.testing.assert_close(a, b, rtol=1e-4, atol=max(1e-5 * float(a.abs().max()), 1e-8))


def test_weighted_loss_refuses_a_model_without_the_split():
    out = StepOutput(loss=torch.tensor(1.0), per_sample_loss=torch.zeros(3))
    assert out.weighted_loss(None) is out.loss
    with pytest.raises(ValueError, match="does not decompose per sample"):
        out.weighted_loss(torch.ones(3))
