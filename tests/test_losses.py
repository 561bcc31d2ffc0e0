"""Tests of the reconstruction loss (bob_facerev.attack.losses)."""

import numpy as np
import pytest
import torch
from torch import nn

from bob_facerev.attack.losses import ReconstructionLoss, dssim, ssim


def _ssim_reference(a, b):
    """Plain SSIM (Wang et al. 2004): 11x11 gaussian window, sigma 1.5, mean over the image
    reflect-padded by 5 pixels (torchmetrics' border handling)."""
    from scipy.signal import convolve2d

    x = np.arange(11) - 5
    g = np.exp(-(x**2) / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = 0.01**2, 0.03**2
    maps = []
    for x_, y_ in zip(a.reshape(-1, *a.shape[-2:]), b.reshape(-1, *b.shape[-2:])):
        f = lambda z: convolve2d(np.pad(z, 5, mode="reflect"), w, mode="valid")  # noqa: E731
        mx, my = f(x_), f(y_)
        sxx, syy, sxy = f(x_ * x_) - mx**2, f(y_ * y_) - my**2, f(x_ * y_) - mx * my
        maps.append(((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2)))
    return float(np.mean(maps))


def _images(n=2, seed=0):
    """Smooth random images in [0, 1] (sums of a few low-frequency waves)."""
    rng = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:112, 0:112] / 112.0
    out = np.zeros((n, 3, 112, 112))
    for i in range(n):
        for c in range(3):
            for _ in range(4):
                fx, fy, ph = rng.uniform(0.5, 4, 2).tolist() + [rng.uniform(0, 6.3)]
                out[i, c] += np.sin(2 * np.pi * (fx * xx + fy * yy) + ph)
    out = (out - out.min()) / (out.max() - out.min())
    return torch.tensor(out, dtype=torch.float32)


class TinyID(nn.Module):
    """Stand-in identity network: (N, 3, h, w) in [0, 1] -> (N, 8)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 5, stride=4)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 8 * 8, 8)

    def forward(self, x):
        x = nn.functional.interpolate(x, size=(36, 36), mode="bilinear", align_corners=False)
        return self.fc(torch.relu(self.bn(self.conv(x))).flatten(1))


def test_ssim_matches_reference_implementation():
    a = _images(2, seed=1)
    b = (a + 0.1 * torch.randn(a.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    assert float(ssim(a, b)) == pytest.approx(_ssim_reference(a.numpy(), b.numpy()), abs=1e-5)


def test_dssim_zero_for_identical_and_grows_with_noise():
    a = _images(2)
    assert float(dssim(a, a)) == pytest.approx(0.0, abs=1e-6)
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn(a.shape, generator=gen)
    values = [float(dssim(a, (a + s * noise).clamp(0, 1))) for s in (0.02, 0.05, 0.1, 0.2, 0.4)]
    assert all(v2 > v1 for v1, v2 in zip(values, values[1:])), values
    assert values[0] > 1e-3 and values[-1] < 1.0


def test_total_is_weighted_sum_of_terms():
    torch.manual_seed(0)
    real, fake = _images(3, seed=2), _images(3, seed=3)
    idn = TinyID()
    loss = ReconstructionLoss(w_ssim=0.3, w_id=0.7, id_network=idn)
    total, terms = loss(fake, real)
    mse = float(((fake - real) ** 2).mean())
    d = (1 - _ssim_reference(fake.numpy(), real.numpy())) / 2
    with torch.no_grad():
        id_term = float(((idn(fake) - idn(real)) ** 2).mean())
    assert float(terms["mse"]) == pytest.approx(mse, rel=1e-5)
    assert float(terms["dssim"]) == pytest.approx(d, abs=1e-5)
    assert float(terms["id"]) == pytest.approx(id_term, rel=1e-5)
    assert float(total) == pytest.approx(mse + 0.3 * d + 0.7 * id_term, rel=1e-5)
    assert float(terms["total"]) == float(total)
    # precomputed identity targets give the same loss
    total2, _ = loss(fake, real, real_id=loss.embed(real))
    assert float(total2) == pytest.approx(float(total), rel=1e-6)


def test_defaults_are_the_study_weights_and_no_id_without_network():
    loss = ReconstructionLoss()
    assert (loss.w_ssim, loss.w_id) == (0.1, 0.005)
    real, fake = _images(2, seed=4), _images(2, seed=5)
    total, terms = loss(fake, real)
    assert float(terms["id"]) == 0.0
    assert float(total) == pytest.approx(float(terms["mse"]) + 0.1 * float(terms["dssim"]), rel=1e-6)
    with pytest.raises(ValueError, match="w_id"):
        ReconstructionLoss(w_id=-1)


def test_id_network_frozen_and_gradient_reaches_image():
    torch.manual_seed(0)
    idn = TinyID()
    before = {k: v.clone() for k, v in idn.state_dict().items()}
    loss = ReconstructionLoss(w_ssim=0.1, w_id=1.0, id_network=idn)
    loss.train()  # a trainer calls .train() on everything: the identity network must stay frozen
    assert not idn.training
    assert not any(p.requires_grad for p in idn.parameters())
    real = _images(2, seed=6)
    fake = _images(2, seed=7).requires_grad_(True)
    total, _ = loss(fake, real)
    total.backward()
    assert fake.grad is not None and float(fake.grad.abs().sum()) > 0
    # only the identity term: its gradient flows through the network too
    fake.grad = None
    only_id = ReconstructionLoss(w_ssim=0.0, w_id=1.0, id_network=idn)
    only_id(fake, real)[0].backward()
    g_id = fake.grad.clone()
    fake.grad = None
    ReconstructionLoss(w_ssim=0.0, w_id=0.0)(fake, real)[0].backward()
    assert not torch.allclose(g_id, fake.grad)
    # batch-norm statistics untouched
    for k, v in idn.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_cosine_identity_term_is_zero_for_identical_and_scale_free():
    from bob_facerev.attack.losses import cosine_distance, identity_distance

    rng = torch.Generator().manual_seed(0)
    a, b = torch.randn(4, 128, generator=rng), torch.randn(4, 128, generator=rng)
    assert float(cosine_distance(a, a)) == pytest.approx(0.0, abs=1e-6)
    d = float(cosine_distance(a, b))
    assert 0.5 < d < 1.5  # random 128-d directions are nearly orthogonal
    assert float(cosine_distance(10 * a, b)) == pytest.approx(d, rel=1e-6)
    assert float(cosine_distance(a, 10 * b)) == pytest.approx(d, rel=1e-6)
    # the study's MSE is not scale-free: that is the point of the cosine term
    assert float(identity_distance(10 * a, 10 * b, "study")) == pytest.approx(
        100 * float(identity_distance(a, b, "study")), rel=1e-5)
    assert float(cosine_distance(10 * a, 10 * b)) == pytest.approx(d, rel=1e-6)
    assert float(cosine_distance(a, -a)) == pytest.approx(2.0, abs=1e-6)
    with pytest.raises(ValueError, match="id_loss"):
        identity_distance(a, b, "l1")


def test_loss_with_cosine_identity_term():
    torch.manual_seed(0)
    net = TinyID().eval()
    real = _images(2, seed=3)
    fake = _images(2, seed=4)
    cos = ReconstructionLoss(w_ssim=0.0, w_id=1.0, id_network=net, id_loss="cosine")
    total, terms = cos(real, real)
    assert float(terms["id"]) == pytest.approx(0.0, abs=1e-6)
    total, terms = cos(fake, real)
    from bob_facerev.attack.losses import cosine_distance

    expected = float(cosine_distance(net(fake), net(real)))
    assert float(terms["id"]) == pytest.approx(expected, rel=1e-5)
    assert float(total) == pytest.approx(float(terms["mse"]) + expected, rel=1e-5)
    # the same targets scaled by 10 give the same cosine term, not the same study term
    _, t10 = cos(fake, real, real_id=10 * net(real).detach())
    assert float(t10["id"]) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="id_loss"):
        ReconstructionLoss(id_loss="angle")
