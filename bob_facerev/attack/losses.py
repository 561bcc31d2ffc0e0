"""The training loss of the reconstruction attack (Shahreza et al., ICIP 2022).

``loss = MSE + w_ssim * (1 - SSIM) / 2 + w_id * ID`` where ``ID`` compares the embeddings of the
generated and the real face through a frozen face recognition network: the attacked one (white-box)
or another one (proxy). Two identity terms (:data:`ID_LOSSES`):

``"study"``
    The study's: the mean squared error between the two embeddings. Its size follows the
    extractor's embedding norm (ArcFace's unnormalised 512-d embeddings: norms ~20-30; dlib: ~0.6),
    so one ``w_id`` means very different things for different extractors.
``"cosine"``
    ``1 - cos(angle)`` between the two embeddings, in ``[0, 2]`` for every extractor: scale-free,
    so one ``w_id`` means the same for every model.
"""

import torch
from torch import nn
from torch.nn import functional as F

#: names of the loss terms, in the order they are logged
TERMS = ("total", "mse", "dssim", "id")

#: the identity terms (see the module docstring)
ID_LOSSES = ("study", "cosine")


def cosine_distance(a, b):
    """Mean ``1 - cos`` of the angle between the rows of ``a`` and ``b``: 0 for parallel embeddings,
    unchanged when a row is scaled by a positive factor.

    Parameters
    ----------
    a, b : torch.Tensor, (N, d)

    Returns
    -------
    torch.Tensor, scalar
    """
    return (1.0 - F.cosine_similarity(a.float(), b.float(), dim=1, eps=1e-8)).mean()


def identity_distance(generated_id, real_id, id_loss="study"):
    """The identity term between two embedding batches: ``"study"`` (MSE) or ``"cosine"``."""
    if id_loss == "study":
        return F.mse_loss(generated_id.float(), real_id.float())
    if id_loss == "cosine":
        return cosine_distance(generated_id, real_id)
    raise ValueError(f"id_loss must be one of {ID_LOSSES}, got {id_loss!r}")


def ssim(generated, real):
    """Mean SSIM of two image batches (gaussian 11x11 window, sigma 1.5, data range 1).

    Parameters
    ----------
    generated, real : torch.Tensor, (N, 3, H, W) float in [0, 1]

    Returns
    -------
    torch.Tensor, scalar
    """
    from torchmetrics.functional.image import structural_similarity_index_measure

    return structural_similarity_index_measure(
        generated, real, gaussian_kernel=True, sigma=1.5, kernel_size=11, data_range=1.0
    )


def dssim(generated, real):
    """Structural dissimilarity ``(1 - SSIM) / 2``: 0 for identical images, at most 1."""
    return (1.0 - ssim(generated, real)) / 2.0


def freeze(network):
    """Put ``network`` in evaluation mode with gradients off for its parameters; returns it."""
    network.eval()
    for p in network.parameters():
        p.requires_grad_(False)
    return network


class ReconstructionLoss(nn.Module):
    """Multi-term reconstruction loss.

    Parameters
    ----------
    w_ssim : float
        Weight of the structural dissimilarity ``(1 - SSIM) / 2`` (0.1 in the study).
    w_id : float
        Weight of the identity term (0.005 in the study). Needs ``id_network`` when non-zero.
    id_loss : {"study", "cosine"}
        The identity term: the study's embedding MSE (scale depends on the extractor) or the
        scale-free ``1 - cos`` (:func:`cosine_distance`).
    id_network : torch.nn.Module or None
        Frozen face recognition network, ``(N, 3, h, w)`` float RGB in ``[0, 1]`` -> ``(N, d)``
        (for example ``bob_facerev.face.network.load_embedding_network(model)``); it resizes and
        normalises inside, differentiably. Stays in evaluation mode.

    Notes
    -----
    ``forward(generated, real, real_id=None)`` returns ``(total, terms)``: ``total`` is the scalar to
    back-propagate, ``terms`` a dict of detached scalars ``{"total", "mse", "dssim", "id"}`` (``id`` is
    0 without an identity network). ``real_id`` is the precomputed ``id_network(real)``, ``(N, d)``.
    The loss is computed in float32 even under autocast.
    """

    def __init__(self, w_ssim=0.1, w_id=0.005, id_network=None, id_loss="study"):
        super().__init__()
        self.w_ssim = float(w_ssim)
        self.w_id = float(w_id)
        self.id_loss = str(id_loss)
        if self.w_id < 0 or self.w_ssim < 0:
            raise ValueError(f"loss weights must be >= 0, got w_ssim={w_ssim}, w_id={w_id}")
        if self.id_loss not in ID_LOSSES:
            raise ValueError(f"id_loss must be one of {ID_LOSSES}, got {id_loss!r}")
        self.id_network = freeze(id_network) if id_network is not None else None

    @property
    def uses_id(self):
        return self.id_network is not None and self.w_id > 0

    def train(self, mode=True):
        super().train(mode)
        if self.id_network is not None:
            self.id_network.eval()  # frozen: batch norm statistics must never move
        return self

    @torch.no_grad()
    def embed(self, images):
        """``id_network(images)`` in float32 without gradients: the targets of the identity term."""
        if self.id_network is None:
            raise ValueError("this ReconstructionLoss has no id_network to embed images with")
        with torch.autocast(images.device.type, enabled=False):
            return self.id_network(images.float()).float()

    def forward(self, generated, real, real_id=None):
        generated = generated.float()
        real = real.float()
        with torch.autocast(generated.device.type, enabled=False):
            mse = F.mse_loss(generated, real)
            total = mse
            d = dssim(generated, real) if self.w_ssim > 0 else torch.zeros_like(mse)
            total = total + self.w_ssim * d
            if self.uses_id:
                if real_id is None:
                    real_id = self.embed(real)
                id_term = identity_distance(self.id_network(generated), real_id, self.id_loss)
                total = total + self.w_id * id_term
            else:
                id_term = torch.zeros_like(mse)
        terms = {"total": total.detach(), "mse": mse.detach(), "dssim": d.detach(), "id": id_term.detach()}
        return total, terms
