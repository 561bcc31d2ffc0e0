"""The reconstruction network of Shahreza, Hahn and Marcel (ICIP 2022).

A face embedding ``(N, d)`` is read as a ``d x 1 x 1`` feature map and up-sampled by six blocks to a
``3 x 112 x 112`` RGB image in ``[0, 1]`` (the aligned face the embedding was computed from, resized to
the attack size 112).
"""

import torch
from torch import nn

#: output side of the generator in pixels (``bob_facerev.face.crop.ATTACK_SIZE``)
OUTPUT_SIZE = 112

#: (out channels, stride, padding) of the transposed convolution of each block; kernel 4 everywhere.
#: Feature map sides: 1 -> 4 -> 8 -> 16 -> 30 -> 58 -> 112.
BLOCKS = (
    (512, 1, 0),
    (256, 2, 1),
    (128, 2, 1),
    (64, 2, 2),
    (32, 2, 2),
    (16, 2, 3),
)


def _conv_bn_relu(channels):
    return [
        nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
        nn.BatchNorm2d(channels),
        nn.ReLU(),
    ]


class UpBlock(nn.Module):
    """ConvTranspose2d(4, no bias) + BN + ReLU, then 3 x [Conv3x3 + BN + ReLU], residual sum.

    Parameters
    ----------
    in_channels, out_channels : int
    stride, padding : int
        Of the transposed convolution (kernel 4).
    """

    def __init__(self, in_channels, out_channels, stride, padding):
        super().__init__()
        self.up = nn.Sequential(
            nn.ConvTranspose2d(in_channels, out_channels, 4, stride, padding, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
        )
        self.convs = nn.Sequential(*[m for _ in range(3) for m in _conv_bn_relu(out_channels)])

    def forward(self, x):
        x = self.up(x)
        return x + self.convs(x)


class Generator(nn.Module):
    """Face image from a face embedding.

    Parameters
    ----------
    embedding_size : int
        ``d``, the attacked extractor's embedding size (512 for ArcFace/ElasticFace, 128 for dlib).

    Notes
    -----
    ``forward(embeddings)`` takes ``(N, d)`` (or ``(N, d, 1, 1)``) float embeddings and returns
    ``(N, 3, 112, 112)`` RGB images in ``[0, 1]``.
    """

    def __init__(self, embedding_size=512):
        super().__init__()
        embedding_size = int(embedding_size)
        if embedding_size < 1:
            raise ValueError(f"embedding_size must be a positive integer, got {embedding_size}")
        self.embedding_size = embedding_size
        blocks = []
        channels = embedding_size
        for out_channels, stride, padding in BLOCKS:
            blocks.append(UpBlock(channels, out_channels, stride, padding))
            channels = out_channels
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.Conv2d(channels, 3, 3, 1, 1), nn.Sigmoid())

    def forward(self, embeddings):
        shape = tuple(embeddings.shape)
        if embeddings.ndim == 2:
            embeddings = embeddings[:, :, None, None]
        if embeddings.ndim != 4 or embeddings.shape[1:] != (self.embedding_size, 1, 1):
            raise ValueError(
                f"Generator expects embeddings of shape (N, {self.embedding_size}), got {shape}: "
                "use a generator trained for this embedding size"
            )
        return self.head(self.blocks(embeddings))

    def extra_repr(self):
        return f"embedding_size={self.embedding_size}"


@torch.no_grad()
def reconstruct(generator, embeddings, batch_size=64, device=None):
    """Images from embeddings with a trained generator, in evaluation mode, batched.

    Parameters
    ----------
    generator : Generator
    embeddings : array-like, (N, d) float
    batch_size : int
    device : str or torch.device or None
        Defaults to the generator's device.

    Returns
    -------
    numpy.ndarray, (N, 3, 112, 112) uint8
        RGB images in Bob's format.
    """
    import numpy as np

    generator.eval()
    device = torch.device(device) if device is not None else next(generator.parameters()).device
    X = torch.as_tensor(np.asarray(embeddings, dtype=np.float32))
    out = []
    for start in range(0, len(X), batch_size):
        y = generator(X[start : start + batch_size].to(device))
        out.append((y * 255).round().clamp_(0, 255).to(torch.uint8).cpu().numpy())
    if not out:
        return np.zeros((0, 3, OUTPUT_SIZE, OUTPUT_SIZE), dtype=np.uint8)
    return np.concatenate(out)
