"""Tests of the reconstruction network (bob_facerev.attack.generator)."""

import numpy as np
import pytest
import torch
from torch import nn

from bob_facerev.attack.generator import BLOCKS, Generator, reconstruct


@pytest.mark.parametrize("d", [128, 512])
def test_output_shape_and_range(d):
    torch.manual_seed(0)
    g = Generator(d)
    for mode in (g.train, g.eval):
        mode()
        with torch.no_grad():
            y = g(torch.randn(3, d) * 10)  # large inputs push the sigmoid to its ends
        assert y.shape == (3, 3, 112, 112)
        assert y.dtype == torch.float32
        assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
        assert float(y.std()) > 0  # not a constant image
    # (N, d, 1, 1) is the same input as (N, d)
    x = torch.randn(2, d)
    g.eval()
    assert torch.equal(g(x), g(x[:, :, None, None]))


def test_wrong_embedding_size_refused():
    g = Generator(128)
    with pytest.raises(ValueError, match=r"\(N, 128\).*\(2, 512\)"):
        g(torch.zeros(2, 512))
    with pytest.raises(ValueError, match="positive"):
        Generator(0)


def test_architecture_matches_paper():
    g = Generator(128)
    sizes, channels = [], []

    def record(module, inputs, output):
        sizes.append(output.shape[-1])
        channels.append(output.shape[1])

    hooks = [b.register_forward_hook(record) for b in g.blocks]
    g.eval()
    g(torch.zeros(1, 128))
    for h in hooks:
        h.remove()
    assert sizes == [4, 8, 16, 30, 58, 112]
    assert channels == [512, 256, 128, 64, 32, 16]
    assert len(g.blocks) == len(BLOCKS) == 6
    for block, (c, s, p) in zip(g.blocks, BLOCKS):
        up = block.up[0]
        assert isinstance(up, nn.ConvTranspose2d)
        assert up.kernel_size == (4, 4) and up.stride == (s, s) and up.padding == (p, p)
        assert up.bias is None and up.out_channels == c
        assert isinstance(block.up[1], nn.BatchNorm2d) and isinstance(block.up[2], nn.ReLU)
        convs = [m for m in block.convs if isinstance(m, nn.Conv2d)]
        assert len(convs) == 3 and all(m.kernel_size == (3, 3) for m in convs)
        assert sum(isinstance(m, nn.BatchNorm2d) for m in block.convs) == 3
    assert isinstance(g.head[0], nn.Conv2d) and g.head[0].out_channels == 3
    assert isinstance(g.head[1], nn.Sigmoid)
    # first block reads a d x 1 x 1 map
    assert g.blocks[0].up[0].in_channels == 128


def test_block_is_residual():
    """block(x) == up(x) + convs(up(x)): zeroing the conv stack leaves the deconv path alone."""
    torch.manual_seed(0)
    g = Generator(16).eval()
    block = g.blocks[1]
    x = torch.randn(2, 512, 4, 4)
    up = block.up(x)
    assert torch.allclose(block(x), up + block.convs(up))
    with torch.no_grad():
        block.convs[0].weight.zero_()  # fresh BN (mean 0, var 1, beta 0): the stack outputs 0
    assert torch.allclose(block(x), up)


def test_reconstruct_uint8_batches():
    torch.manual_seed(0)
    g = Generator(8)
    X = np.random.RandomState(0).randn(5, 8).astype(np.float32)
    a = reconstruct(g, X, batch_size=2)
    assert a.shape == (5, 3, 112, 112) and a.dtype == np.uint8
    with torch.no_grad():
        ref = (g.eval()(torch.from_numpy(X)) * 255).round().to(torch.uint8).numpy()
    np.testing.assert_array_equal(a, ref)
    assert reconstruct(g, np.zeros((0, 8), np.float32)).shape == (0, 3, 112, 112)
