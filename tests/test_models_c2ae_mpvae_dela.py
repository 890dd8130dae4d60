"""Model-specific tests for C2AE, MPVAE and DELA (and the shared layers they use)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from mlabs.models import build
from mlabs.models.layers import (GroupedLinear, kl_diag_gaussians, l2_weight_sum, mlp,
                                 pairwise_exp_rank_loss)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(16, 10, generator=g)
    y = (torch.rand(16, 7, generator=g) < 0.3).float()
    y[0] = 0.0          # a sample without positives
    y[1] = 1.0          # a sample without negatives
    return x, y


# -- layers ---------------------------------------------------------------------------------------

def _rank_loss_bruteforce(scores, y, scale=5.0):
    out = []
    for s, t in zip(scores, y):
        pos, neg = s[t > 0], s[t == 0]
        if len(pos) == 0 or len(neg) == 0:
            out.append(torch.tensor(0.0))
            continue
        out.append(torch.exp(-scale * (pos[:, None] - neg[None, :])).sum() / (len(pos) * len(neg)))
    return torch.stack(out)


def test_rank_loss_factorisation_matches_pairwise_sum(batch):
    _, y = batch
    scores = torch.rand(y.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    got = pairwise_exp_rank_loss(scores, y.double())
    torch.testing.assert_close(got, _rank_loss_bruteforce(scores, y.double()))
    assert got[0] == 0 and got[1] == 0
    # broadcasting over leading draw dimension (MPVAE's [S, B, q])
    stacked = pairwise_exp_rank_loss(torch.stack([scores, scores]), y.double())
    torch.testing.assert_close(stacked[1], got)


def test_grouped_linear_equals_grouped_conv1d():
    torch.manual_seed(0)
    layer = GroupedLinear(5, 8)
    conv = torch.nn.Conv1d(5, 5, 8, groups=5)
    with torch.no_grad():
        conv.weight.copy_(layer.weight.unsqueeze(1))
        conv.bias.copy_(layer.bias)
    x = torch.randn(3, 5, 8)
    torch.testing.assert_close(layer(x), conv(x).squeeze(2))


def test_mlp_structure_and_l2():
    net = mlp(4, [6, 3], activation="leaky_relu", dropout=0.2, output_activation=False)
    kinds = [type(m).__name__ for m in net]
    assert kinds == ["Linear", "LeakyReLU", "Dropout", "Linear"]
    expected = sum(m.weight.pow(2).sum() for m in net if isinstance(m, torch.nn.Linear))
    torch.testing.assert_close(l2_weight_sum([net]), expected)


def test_kl_diag_gaussians_standard_normal_and_self():
    mu, logvar = torch.randn(4, 3), torch.randn(4, 3)
    torch.testing.assert_close(kl_diag_gaussians(mu, logvar, mu, logvar), torch.zeros(4))
    ref = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)
    torch.testing.assert_close(kl_diag_gaussians(mu, logvar), ref)


# -- C2AE -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("q, k", [(1, 1), (6, 5), (10, 8), (53, 42), (374, 299)])
def test_c2ae_latent_size(q, k):
    assert build("c2ae", 5, q).latent_dim == k


def test_c2ae_parameter_count_matches_reference():
    # models.md section 1: d = 100, q = 50, K = 40 -> 334,888 + 46,632 + 46,642
    model = build("c2ae", 100, 50)
    assert sum(p.numel() for p in model.fx.parameters()) == 334_888
    assert sum(p.numel() for p in model.fe.parameters()) == 46_632
    assert sum(p.numel() for p in model.fd.parameters()) == 46_642


def test_c2ae_output_loss_gradient_never_reaches_fx(batch):
    x, y = batch
    torch.manual_seed(0)
    model = build("c2ae", x.shape[1], y.shape[1])
    model.losses(x, y)["output"].backward()
    assert all(p.grad is None for p in model.fx.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.fe.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.fd.parameters())
    # and the embedding loss never reaches the decoder
    model.zero_grad(set_to_none=True)
    model.losses(x, y)["embedding"].backward()
    assert all(p.grad is None for p in model.fd.parameters())


def test_c2ae_latent_in_shifted_sigmoid_range_and_loss_composition(batch):
    x, y = batch
    torch.manual_seed(0)
    model = build("c2ae", x.shape[1], y.shape[1])
    t = model.losses(x, y)
    assert (t["fx"].abs() < 0.5).all()
    total = t["embedding"] + 0.5 * t["output"] + 2e-6 * t["l2"]
    torch.testing.assert_close(t["loss"], total)


def test_c2ae_selection_loss_is_bce_of_prediction_path(batch):
    x, y = batch
    torch.manual_seed(0)
    model = build("c2ae", x.shape[1], y.shape[1])
    out = model.training_step(x, y)
    probs = torch.sigmoid(model.decode_logits(model.encode_x(x))).detach()
    ref = F.binary_cross_entropy(probs, y, reduction="none").mean(1)
    torch.testing.assert_close(out.per_sample_loss, ref, rtol=1e-5, atol=1e-6)


# -- MPVAE ----------------------------------------------------------------------------------------

def test_mpvae_covariance_positive_definite_and_probability_bounds(batch):
    x, y = batch
    torch.manual_seed(0)
    model = build("mpvae", x.shape[1], y.shape[1], n_test_sample=50)
    with torch.no_grad():
        model.r_sqrt_sigma.mul_(100.0)      # extreme R: still PD, probabilities still bounded
    assert torch.linalg.eigvalsh(model.covariance.double()).min() >= 1.0 - 1e-6
    mean = torch.tensor([[-1e4, 0.0, 1e4] + [0.0] * (y.shape[1] - 3)])
    e = model.probit_prob(mean, model.probit_noise(20, 1))
    eps = model.prob_eps
    assert (e >= eps / 2).all() and (e <= 1 - eps / 2).all()
    assert torch.isfinite(torch.log(e)).all() and torch.isfinite(torch.log1p(-e)).all()


def test_mpvae_losses_finite_for_samples_without_positives(batch):
    x, y = batch
    y = y.clone()
    y[:4] = 0.0
    torch.manual_seed(0)
    model = build("mpvae", x.shape[1], y.shape[1], n_train_sample=7)
    t = model.losses(x, y)
    for key in ("loss", "nll_label", "nll_feat", "rank_label", "rank_feat", "kl"):
        assert torch.isfinite(t[key]), key
    t["loss"].backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_mpvae_selection_loss_from_feature_branch(batch):
    x, y = batch
    torch.manual_seed(0)
    model = build("mpvae", x.shape[1], y.shape[1], n_train_sample=9)
    torch.manual_seed(1)
    t = model.losses(x, y)
    torch.manual_seed(1)
    out = model.training_step(x, y)
    ref = F.binary_cross_entropy(t["indiv_prob"].detach(), y, reduction="none").mean(1)
    torch.testing.assert_close(out.per_sample_loss, ref)
    # changing y changes the label branch only through y, never the feature-branch prediction
    torch.manual_seed(1)
    flipped = model.losses(x, 1.0 - y)
    torch.testing.assert_close(flipped["indiv_prob"], t["indiv_prob"])


def test_mpvae_prediction_chunking_is_exact(batch, monkeypatch):
    import mlabs.models.mpvae as mp
    x, y = batch
    torch.manual_seed(0)
    model = build("mpvae", x.shape[1], y.shape[1], n_test_sample=37).eval()
    torch.manual_seed(5)
    whole = model.predict_proba(x)
    monkeypatch.setattr(mp, "_DRAW_BLOCK_ELEMENTS", x.shape[0] * y.shape[1] * 4)   # blocks of 4 draws
    torch.manual_seed(5)
    chunked = model.predict_proba(x)
    torch.testing.assert_close(chunked, whole, rtol=1e-5, atol=1e-6)


def test_mpvae_z_dim_defaults_to_q_and_parameter_count():
    model = build("mpvae", 100, 50)
    assert model.z_dim == 50 and model.r_sqrt_sigma.shape == (50, 50)
    # models.md section 2: 234,340 + 314,468 + 170,240 + 51,300 + 2,500
    assert sum(p.numel() for p in model.parameters()) == 772_848


# -- DELA -----------------------------------------------------------------------------------------

def test_dela_gates_clamped_and_kl_finite_with_off_gates(batch):
    x, y = batch
    torch.manual_seed(0)
    model = build("dela", x.shape[1], y.shape[1], latent_dim=8)
    with torch.no_grad():
        model.gate_logits.fill_(-10.0)
        model.scale_layer.weight.zero_()
        model.scale_layer.bias.fill_(-20.0)     # every gate off
    t = model.losses(x, y)
    assert torch.equal(t["gates"], torch.full_like(t["gates"], 0.5))
    assert torch.isfinite(t["kl"]) and t["kl"] < 20.0
    t["loss"].backward()
    assert torch.isfinite(model.gate_logits.grad).all()
    assert model.gate_logits.grad.abs().max() < 1e3


def test_dela_without_clamp_reproduces_the_authors_kl_blowup(batch):
    x, y = batch
    torch.manual_seed(0)
    model = build("dela", x.shape[1], y.shape[1], latent_dim=8, off_noise=0.0)
    with torch.no_grad():
        model.scale_layer.weight.zero_()
        model.scale_layer.bias.fill_(-20.0)
    kl = model.losses(x, y)["kl"]
    # -log(1e-6) per off dimension: about 13.8 * 8 dims on top of the clamped value
    assert kl > 8 * 13.0


def test_dela_inference_is_noise_free(batch):
    x, y = batch
    torch.manual_seed(0)
    model = build("dela", x.shape[1], y.shape[1], dropout=0.2, decoder_dropout=0.2)
    torch.manual_seed(1)
    p1 = model.predict_proba(x)
    torch.manual_seed(2)
    p2 = model.predict_proba(x)
    assert torch.equal(p1, p2)
    # equal to the per-label decoder on the broadcast latent (the explicit official path)
    model.eval()
    with torch.no_grad():
        mu, _ = model.encode(x)
        z = mu.unsqueeze(1).expand(-1, y.shape[1], -1)
        ref = torch.sigmoid(model.decode(x, z))
    torch.testing.assert_close(p1, ref)


def test_dela_decoder_split_equals_concatenated_input(batch):
    x, y = batch
    torch.manual_seed(0)
    model = build("dela", x.shape[1], y.shape[1], latent_dim=4).eval()
    z = torch.randn(x.shape[0], y.shape[1], 4)
    with torch.no_grad():
        got = model.decode(x, z)
        full = torch.cat([x.unsqueeze(1).expand(-1, y.shape[1], -1), z], dim=2)
        ref = model.classifier(model.decoder(full))
    torch.testing.assert_close(got, ref)


def test_dela_lr_ratio_groups_and_latent_options():
    model = build("dela", 9, 4, lr_ratio=0.8, latent_dim="half_d")
    assert model.latent_dim == math.ceil(9 / 2)
    groups = model.parameter_groups(1e-3)
    gate = [g for g in groups if g["lr"] == pytest.approx(8e-4)]
    assert len(gate) == 1
    ids = {id(p) for p in gate[0]["params"]}
    assert ids == {id(model.gate_logits), id(model.scale_layer.weight), id(model.scale_layer.bias)}
    assert model.gate_logits.abs().max() <= 10.0
    assert torch.equal(model.scale_layer.bias, torch.full((model.latent_dim,), 2.0))
    with pytest.raises(ValueError):
        build("dela", 9, 4, latent_dim="half")


def test_dela_loss_is_q_times_mean_bce_plus_beta_kl(batch):
    x, y = batch
    torch.manual_seed(0)
    model = build("dela", x.shape[1], y.shape[1], beta=0.3)
    t = model.losses(x, y)
    cls = F.multilabel_soft_margin_loss(t["logits"], y) * y.shape[1]
    torch.testing.assert_close(t["cls"], cls)
    torch.testing.assert_close(t["loss"], cls + 0.3 * t["kl"])


def test_dela_parameter_count_matches_reference():
    n = sum(p.numel() for p in build("dela", 100, 50).parameters())
    assert abs(n - 520_000) < 20_000       # models.md: about 0.52 M


@pytest.mark.parametrize("name", ["c2ae", "mpvae", "dela"])
def test_training_works_on_default_dtype_double(name, batch):
    # device/dtype agnostic: nothing is created with a hard-coded dtype or device
    x, y = batch
    torch.manual_seed(0)
    kw = {"n_train_sample": 5, "n_test_sample": 5} if name == "mpvae" else {}
    model = build(name, x.shape[1], y.shape[1], **kw).double()
    out = model.training_step(x.double(), y.double())
    out.loss.backward()
    assert out.per_sample_loss.dtype == torch.float64
