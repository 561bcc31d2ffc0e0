"""Training sets composed from others: several databases merged, or one split by people.

Where data is small the attacker's training set can merge several databases
(:func:`merge_training_sets`: UTKFace + FFHQ + CFP people disjoint from the attacked ones), and a
data set with identities can be split into the attacker's people and the attacked ones
(:func:`split_by_people`), so that the attack is measured on people it never saw.
"""

from __future__ import annotations

import json
import os

import numpy as np

from .dataset import load_training_set, save_training_set


def merge_training_sets(paths, output, exclude_subjects=None):
    """Merge several training set files (e.g. UTKFace + FFHQ + CFP people) into one.

    Parameters
    ----------
    paths : sequence of str or os.PathLike
        Training set files (:func:`~bob_facerev.attack.dataset.build_training_set`) of the same extractor and embedding size.
    output : str or os.PathLike
        The merged ``.npz`` file (written atomically).
    exclude_subjects : iterable of str, optional
        The attacked people: refused if any of them is in a file that has identities.

    Returns
    -------
    str
        ``output``. Keys become ``<source stem>/<key>`` so they stay unique; subjects likewise
        (two databases' ``"001"`` are different people); the per-file database validation flags
        are dropped (the trainer draws its own split). The metadata lists the sources.

    Raises
    ------
    ValueError
        Different extractors or embedding sizes, a stem used twice, or one person in two files /
        among ``exclude_subjects`` (where the files have identities).
    """
    if len(paths) < 2:
        raise ValueError(f"merge_training_sets needs at least two training set files, got {len(paths)}")
    parts = [load_training_set(p) for p in paths]
    stems = [os.path.splitext(os.path.basename(os.fspath(p)))[0] for p in paths]
    if len(set(stems)) != len(stems):
        raise ValueError(f"the training set files must have different names, got {stems}")
    for key in ("model", "embedding_size"):
        values = {str(part["metadata"].get(key)) for part in parts}
        if len(values) > 1:
            raise ValueError(f"cannot merge training sets of different {key}s: {sorted(values)}")
    _check_disjoint_subjects(parts, stems, exclude_subjects)
    keys, subjects = [], []
    for stem, part in zip(stems, parts):
        keys += [f"{stem}/{k}" for k in part["keys"]]
        subj = part["subjects"] if part["subjects"] is not None else part["keys"]
        subjects += [f"{stem}/{x}" for x in subj]
    metadata = {"model": parts[0]["metadata"].get("model"),
                "sources": json.dumps([{"file": os.path.basename(os.fspath(p)), "n": len(part["faces"]),
                                        "identities": part["subjects"] is not None}
                                       for p, part in zip(paths, parts)])}
    save_training_set(
        output, np.concatenate([p["faces"] for p in parts]),
        np.concatenate([p["embeddings"] for p in parts]), keys, metadata=metadata,
        subjects=subjects if any(p["subjects"] is not None for p in parts) else None,
    )
    return os.fspath(output)


def _check_disjoint_subjects(parts, stems, exclude_subjects):
    """Refuse one person in two files with identities, or an attacked person in any of them."""
    excluded = {str(x) for x in (exclude_subjects or ())}
    seen = {}
    for stem, part in zip(stems, parts):
        if part["subjects"] is None:
            continue
        people = set(part["subjects"].tolist())
        attacked = sorted(people & excluded)
        if attacked:
            raise ValueError(
                f"training set {stem!r} holds {len(attacked)} attacked subject(s) (e.g. {attacked[:3]}):"
                " rebuild it without the people the attack is evaluated on"
            )
        for other, other_people in seen.items():
            common = sorted(people & other_people)
            if common:
                raise ValueError(
                    f"training sets {other!r} and {stem!r} share {len(common)} subject(s) (e.g. "
                    f"{common[:3]}): merge databases of different people"
                )
        seen[stem] = people



def split_by_people(path, train_output, test_output, test_fraction=0.2, seed=0):
    """Split a training set with identities into two files of disjoint people.

    Parameters
    ----------
    path : str or os.PathLike
        A training set with ``subjects`` that carry identities (e.g. CFP).
    train_output, test_output : str or os.PathLike
        The attacker's people and the attacked people (``.npz``, written atomically).
    test_fraction : float
        Share of the *people* that go to ``test_output`` (at least one person each side).
    seed : int

    Returns
    -------
    train_people, test_people : list of str
    """
    from .dataset import has_identities

    data = load_training_set(path)
    if not has_identities(data["subjects"]):
        raise ValueError(
            f"training set {os.fspath(path)!r} has no subject identities: a split by people needs a "
            "data set with several photos per person (CFP), built from a database with subject_id"
        )
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    people = np.unique(data["subjects"])
    n_test = min(max(int(round(len(people) * test_fraction)), 1), len(people) - 1)
    test_people = set(np.random.RandomState(seed).permutation(people)[:n_test].tolist())
    is_test = np.isin(data["subjects"], list(test_people))
    for output, mask in ((train_output, ~is_test), (test_output, is_test)):
        metadata = dict(data["metadata"], split_of=os.path.basename(os.fspath(path)),
                        split_seed=int(seed))
        save_training_set(output, data["faces"][mask], data["embeddings"][mask], data["keys"][mask],
                          metadata=metadata, subjects=data["subjects"][mask])
    return sorted(set(people.tolist()) - test_people), sorted(test_people)
