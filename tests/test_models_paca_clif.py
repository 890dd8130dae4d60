"""Model-specific tests of PACA (conditional-flow prototypes) and CLIF (label graph).

The shared contract (shapes, gradients, overfitting, determinism, ...) is in
``test_models.py``; these tests check what is particular to the two models.
Everything runs on tiny synthetic inputs.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mlabs.models import build
from mlabs.models.clif import CLIF
from mlabs.models.flows import PrototypeFlow
from mlabs.models.graph import label_cooccurrence
from mlabs.models.paca import PACA, paca_default_latent_dim

# 6 samples, 4 labels; label 3 never co-occurs with the others
Y_SMALL = np.array([[1, 1, 0, 0],
                    [1, 0, 1, 0],
                    [1, 1, 1, 0],
                    [0, 1, 0, 0],
                    [0, 0, 0, 1],
                    [1, 0, 0, 1]], dtype=np.float32)


def _rand_batch(n, d, q, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, d, generator=g), (torch.rand(n, q, generator=g) < 0.4).float()


# ----------------------------------------------------------------------------------------- CLIF
def test_clif_requires_train_labels():
    with pytest.raises(ValueError, match="train_labels"):
        build("clif", 5, 4)
    with pytest.raises(ValueError, match="train_labels"):
        CLIF(5, 4)


def test_clif_graph_is_cooccurrence_of_train_labels():
    torch.manual_seed(0)
    model = build("clif", 5, 4, train_labels=Y_SMALL)
    n = Y_SMALL.sum(0)
    C = Y_SMALL.T @ Y_SMALL
    expected = 0.5 * (C / n[None, :] + C / n[:, None])
    np.fill_diagonal(expected, 0.0)
    A = model.adj.cpu().numpy()
    np.testing.assert_allclose(A, expected, rtol=1e-6)
    np.testing.assert_allclose(A, A.T)
    assert np.all(np.diag(A) == 0)
    assert not np.allclose(A, np.eye(4))
    # hand-checked entry: labels 0 and 1 co-occur twice, n_0 = 4, n_1 = 3
    assert A[0, 1] == pytest.approx(0.5 * (2 / 3 + 2 / 4))
    # from torch / sparse input alike
    np.testing.assert_allclose(label_cooccurrence(torch.from_numpy(Y_SMALL)).numpy(), A)


def test_clif_graph_handles_label_without_positives():
    y = Y_SMALL.copy()
    y[:, 2] = 0
    A = label_cooccurrence(y).numpy()
    assert np.isfinite(A).all() and np.all(A[2] == 0) and np.all(A[:, 2] == 0)


def test_clif_link_loss_decreases_when_trained_alone():
    torch.manual_seed(0)
    model = build("clif", 5, 4, train_labels=Y_SMALL, embedding_dim=16, gin_hidden=(8,))
    model.train()
    opt = torch.optim.Adam(model.gin.parameters(), lr=1e-2)
    # the target has a zero diagonal while cos(e_j, e_j) = 1: a constant 1/q floor
    floor = 1.0 / 4
    first = model.link_loss().item()
    for _ in range(30):
        opt.zero_grad()
        loss = model.link_loss()
        loss.backward()
        opt.step()
    assert first > floor
    assert model.link_loss().item() - floor < 0.5 * (first - floor)


def test_clif_gate_is_sigmoid_and_variant_is_not():
    torch.manual_seed(0)
    model = build("clif", 5, 4, train_labels=Y_SMALL, hidden_dim=32)
    with torch.no_grad():
        g = model.label_gates(model.label_embeddings())
    assert g.shape == (4, 32)
    assert (g > 0).all() and (g < 1).all()
    raw = build("clif", 5, 4, train_labels=Y_SMALL, hidden_dim=32, gate_sigmoid=False)
    with torch.no_grad():
        g_raw = raw.label_gates(raw.label_embeddings())
    assert ((g_raw < 0) | (g_raw > 1)).any()


def test_clif_loss_is_bce_plus_weighted_link_loss():
    torch.manual_seed(0)
    model = build("clif", 5, 4, train_labels=Y_SMALL, hidden_dim=16, link_weight=0.3).eval()
    x = torch.rand(6, 5)
    y = torch.from_numpy(Y_SMALL)
    out = model.training_step(x, y)
    logits, emb = model._forward(x)
    expected = F.binary_cross_entropy_with_logits(logits, y) + 0.3 * model.link_loss(emb)
    torch.testing.assert_close(out.loss, expected)
    torch.testing.assert_close(out.per_sample_loss,
                               F.binary_cross_entropy_with_logits(logits, y, reduction="none").mean(1))


# ----------------------------------------------------------------------------------------- flows
def test_flow_is_invertible_and_log_det_matches_jacobian():
    torch.manual_seed(0)
    flow = PrototypeFlow(3, 4, hidden_dim=16, context_dim=4, n_sigmoids=5).double()
    z = torch.randn(2, 4, 3, dtype=torch.double)
    u, log_det = flow(z)
    torch.testing.assert_close(flow.inverse(u), z, atol=1e-8, rtol=0)
    # exact log|det J| of the map for one sample and label, via autograd
    b, j = 1, 2
    J = torch.autograd.functional.jacobian(
        lambda v: flow(v.expand(1, 4, 3))[0][0, j], z[b, j].view(1, 1, 3))
    torch.testing.assert_close(torch.logdet(J.reshape(3, 3)), log_det[b, j])
    # the map is autoregressive: the Jacobian is lower triangular
    assert torch.all(J.reshape(3, 3).triu(1) == 0)


def test_flow_density_normalised_and_finite():
    torch.manual_seed(0)
    flow = PrototypeFlow(1, 2, hidden_dim=8, context_dim=3, n_sigmoids=4).double()
    grid = torch.linspace(-60, 60, 40001, dtype=torch.double)[:, None]
    dens = flow.log_prob(grid).exp()
    torch.testing.assert_close((dens * (grid[1] - grid[0])).sum(0),
                               torch.ones(2, dtype=torch.double), atol=1e-3, rtol=0)
    # far out in the tails the log-density stays finite (no clipping artefacts / NaN)
    far = torch.tensor([[-1e4], [1e4]], dtype=torch.double)
    assert torch.isfinite(flow.log_prob(far)).all()


def test_flow_log_density_of_pushed_base_sample():
    """A base sample mapped back through the flow has log p = log N(u) + log|det|."""
    torch.manual_seed(0)
    L, q = 4, 3
    flow = PrototypeFlow(L, q, hidden_dim=16, context_dim=4, n_sigmoids=6).double()
    u = torch.randn(5, q, L, dtype=torch.double)
    z = flow.inverse(u)
    lp = flow.log_prob(z)
    u_back, log_det = flow(z)
    base = -0.5 * (u.pow(2).sum(-1) + L * math.log(2 * math.pi))
    torch.testing.assert_close(u_back, u, atol=1e-8, rtol=0)
    torch.testing.assert_close(lp, base + log_det)
    assert torch.isfinite(lp).all()


def test_flow_conditioner_works_beyond_public_width_limit():
    """3 * (256 // L) = 0 for L > 256 broke the public code; any L works here."""
    flow = PrototypeFlow(300, 2)
    assert torch.isfinite(flow.log_prob(torch.randn(2, 300))).all()


# ----------------------------------------------------------------------------------------- PACA
def test_paca_default_latent_size():
    assert paca_default_latent_dim(10) == 5
    assert paca_default_latent_dim(72) == 32
    assert paca_default_latent_dim(1836) == 32


def test_paca_builds_and_runs_at_bibtex_width():
    torch.manual_seed(0)
    model = build("paca", 1836, 5)
    assert model.latent_dim == paca_default_latent_dim(1836)
    x, y = _rand_batch(4, 1836, 5)
    out = model.training_step(x, y)
    assert torch.isfinite(out.loss) and out.per_sample_loss.shape == (4,)
    out.loss.backward()
    p = model.predict_proba(x)
    assert p.shape == (4, 5) and torch.isfinite(p).all()


def test_paca_selection_loss_is_prototype_bce_not_label_branch(monkeypatch):
    torch.manual_seed(0)
    model = build("paca", 8, 3, latent_dim=4, flow_hidden=16)
    model.train()
    x, y = _rand_batch(6, 8, 3)

    torch.manual_seed(1)
    out = model.forward(x, y)
    torch.manual_seed(1)
    step = model.training_step(x, y)
    expected = F.binary_cross_entropy(torch.sigmoid(out["proto_logits"]), y, reduction="none").mean(1)
    torch.testing.assert_close(step.per_sample_loss, expected.detach(), atol=1e-5, rtol=1e-5)

    # replace the label branch's prediction: the full loss changes, the selection loss does not
    original = model.decode_labels
    monkeypatch.setattr(model, "decode_labels", lambda z: original(z) + 5.0)
    torch.manual_seed(1)
    changed = model.training_step(x, y)
    torch.testing.assert_close(changed.per_sample_loss, step.per_sample_loss)
    assert not torch.isclose(changed.loss, step.loss)


def test_paca_loss_terms_and_weights():
    torch.manual_seed(0)
    model = build("paca", 8, 3, latent_dim=4, flow_hidden=16, alpha=0.5, gamma=3.0).eval()
    x, y = _rand_batch(6, 8, 3)
    out = model.forward(x, y)
    t = model.loss_terms(x, y, out)
    # 2-way cross-entropy over [log p_neg, log p_pos] equals the BCE of their difference, x q
    log_neg, log_pos = model.prototype_log_densities(model.map_instance(x, out["x_mu"]))
    ce = F.cross_entropy(torch.stack([log_neg, log_pos], 1), y.long()) * 3
    torch.testing.assert_close(t["cls"], ce)
    rec = ((torch.sigmoid(out["recon"]) - x) ** 2).sum() / 6
    torch.testing.assert_close(t["rec"], rec)
    step = model.training_step(x, y)   # eval mode: no sampling, same forward
    torch.testing.assert_close(step.loss, t["rec"] + 3.0 * t["reg"] + 0.5 * t["cls"])


def test_paca_predict_uses_mean_and_softmax():
    torch.manual_seed(0)
    model = build("paca", 8, 3, latent_dim=4, flow_hidden=16)
    x, _ = _rand_batch(5, 8, 3)
    p1, p2 = model.predict_proba(x), model.predict_proba(x)
    assert torch.equal(p1, p2)            # no sampling at prediction
    assert model.training
    model.eval()
    with torch.no_grad():
        mu, _ = model.encode(x)
        ln, lp = model.prototype_log_densities(model.map_instance(x, mu))
    torch.testing.assert_close(p1, torch.sigmoid(lp - ln))
