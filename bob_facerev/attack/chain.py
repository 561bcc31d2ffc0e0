"""The attack chain of one grid cell, its variants, and its score rows.

A cell's chain is a list of Bob sample transformers::

    PEMIU (the protection) -> [the variant's steps] -> Reconstruct (a generator) -> FaceEmbedding

The *variant* chooses the steps between protection and reconstruction and the generator. Each
variant is a function registered in :data:`VARIANTS` with :func:`register_variant`; it receives
the protection and the attacker's :class:`AttackerTools` and returns ``(steps, generator)``::

    @register_variant("my-variant")
    def my_variant(protection, tools):
        return [("my-step", MyTransformer())], tools.study_generator

Registered variants are accepted by :class:`~bob_facerev.experiment.GridConfig` and run by
:func:`~bob_facerev.experiment.run_grid` like the built-in ones.
"""

from __future__ import annotations

import numpy as np

from .samples import subject_of, template_of

#: attack variants (name -> function(protection, tools) -> (steps, generator)), in table order
VARIANTS = {}


def register_variant(name):
    """Decorator: register ``function(protection, tools) -> (steps, generator)`` as a variant.

    ``steps`` is a list of ``(name, transformer)`` run after the protection and before the
    reconstruction; ``generator`` the checkpoint that reconstructs (usually
    ``tools.study_generator``).
    """
    def register(function):
        VARIANTS[str(name)] = function
        return function

    return register


@register_variant("study")
def _study(protection, tools):
    """The generator trained on unprotected embeddings, applied to protected templates."""
    return [], tools.study_generator


@register_variant("deshuffle")
def _deshuffle(protection, tools):
    """The block order restored without the key, then the study's generator."""
    steps = [("deshuffle", tools.deshuffler(protection.block_size))] if protection.protected else []
    return steps, tools.study_generator


@register_variant("protected")
def _protected(protection, tools):
    """A generator trained on templates protected the same way."""
    return [], tools.protected_generator(protection)


class AttackerTools:
    """What a variant may use: the study's generator, a generator per protection, de-shufflers.

    This one holds a given generator and de-shuffler (:func:`attack_chain`); the grid's
    (:class:`~bob_facerev.experiment.GridTools`) trains and fits them on demand.
    """

    def __init__(self, study_generator, deshuffler=None):
        self.study_generator = study_generator
        self._deshuffler = deshuffler

    def protected_generator(self, protection):
        return self.study_generator

    def deshuffler(self, block_size):
        if self._deshuffler is None:
            raise ValueError("the 'deshuffle' variant needs a fitted Deshuffler")
        return self._deshuffler


class DeshufflerCache:
    """De-shufflers fitted on the attacker's unprotected training embeddings, one per block size.

    Parameters
    ----------
    training_set : str or Path
        The attacker's training set (its embeddings are read once, on the first fit).
    scorer : str
        Scorer of the :class:`~bob_facerev.attack.deshuffle.Deshuffler`.
    """

    def __init__(self, training_set, scorer="mean"):
        self.training_set = training_set
        self.scorer = scorer
        self.attacker_ = None
        self.fitted_ = {}

    def __call__(self, block_size):
        """The de-shuffler for ``block_size``, fitted on first use."""
        if block_size not in self.fitted_:
            from .dataset import load_training_set
            from .deshuffle import Deshuffler

            if self.attacker_ is None:  # the training set's faces are large: read once
                self.attacker_ = load_training_set(str(self.training_set))["embeddings"]
            self.fitted_[block_size] = Deshuffler(block_size=block_size,
                                                  scorer=self.scorer).fit(self.attacker_)
        return self.fitted_[block_size]


def build_chain(protection, variant, tools, model, checkpoint=None, seed=0, batch_size=32,
                embed=True):
    """The attack as Bob sample transformers: protect, the variant's steps, reconstruct, [embed].

    Parameters
    ----------
    protection : Protection
    variant : str
        A name of :data:`VARIANTS`.
    tools : AttackerTools
        Generators and de-shufflers the variant picks from.
    model, checkpoint : str
        The extractor that judges the reconstructions.
    embed : bool
        End with the extractor (step ``"embed"``; else the chain returns the reconstructed images).

    Returns
    -------
    sklearn.pipeline.Pipeline
        Each step wrapped by ``bob.pipelines``' SampleWrapper (PE-MIU gets the sample keys).
    """
    import bob.pipelines

    from sklearn.pipeline import Pipeline

    from ..face.extractor import FaceEmbedding
    from .transformer import Reconstruct

    if variant not in VARIANTS:
        raise ValueError(f"unknown attack variant {variant!r}; use one of {tuple(VARIANTS)}")
    steps = []
    pemiu = protection.transformer(seed)
    if pemiu is not None:
        steps.append(("pemiu", pemiu))
    middle, generator = VARIANTS[variant](protection, tools)
    steps += list(middle)
    steps.append(("reconstruct", Reconstruct(generator, model=model, batch_size=batch_size)))
    if embed:
        steps.append(("embed", FaceEmbedding(model=model, checkpoint=checkpoint,
                                             batch_size=batch_size)))
    return bob.pipelines.wrap(["sample"], Pipeline(steps))


def attack_chain(protection, variant, generator, model, deshuffler=None, checkpoint=None,
                 seed=0, batch_size=32, embed=True):
    """:func:`build_chain` with one given generator (and de-shuffler for ``"deshuffle"``).

    Parameters
    ----------
    protection : Protection
    variant : str
        A name of :data:`VARIANTS` (``"deshuffle"`` needs ``deshuffler``).
    generator : str
        Generator checkpoint.
    model, checkpoint : str
        The extractor that judges the reconstructions.
    deshuffler : Deshuffler, optional
        Fitted on the attacker's unprotected embeddings.
    embed : bool
        End with the extractor (else the chain returns the reconstructed images).
    """
    return build_chain(protection, variant, AttackerTools(generator, deshuffler), model,
                       checkpoint=checkpoint, seed=seed, batch_size=batch_size, embed=embed)


def attack_scores(attack_samples, originals, reconstructed, references, reference_embeddings):
    """Type-I and type-II attack rows.

    Parameters
    ----------
    attack_samples : list of Sample
        The attacked samples.
    originals, reconstructed : ndarray (N, d)
        Embeddings of the original images and of their reconstructions (L2-normalised).
    references : list of Sample
        Bona fide samples (the subjects' other images, for type-II).
    reference_embeddings : ndarray (M, d)

    Returns
    -------
    dict
        ``{"type-I": rows, "type-II": rows}``, rows as dicts for
        :func:`~bob_facerev.evaluation.score_files.write_vuln_scores`.
    """
    type1 = np.sum(originals * reconstructed, axis=1)
    rows = {"type-I": [], "type-II": []}
    for s, score in zip(attack_samples, type1):
        rows["type-I"].append(_row(s, s, score))
    by_subject = {}
    for j, r in enumerate(references):
        by_subject.setdefault(subject_of(r), []).append(j)
    for i, s in enumerate(attack_samples):
        others = [j for j in by_subject.get(subject_of(s), []) if references[j].key != s.key]
        scores = reference_embeddings[others] @ reconstructed[i] if others else []
        for j, score in zip(others, scores):
            rows["type-II"].append(_row(s, references[j], score))
    return rows


def _row(probe, reference, score):
    return {
        "probe_template_id": template_of(probe),
        "probe_subject_id": subject_of(probe),
        "probe_key": str(probe.key),
        "bio_ref_template_id": template_of(reference),
        "bio_ref_subject_id": subject_of(reference),
        "bio_ref_key": str(reference.key),
        "score": float(score),
    }
