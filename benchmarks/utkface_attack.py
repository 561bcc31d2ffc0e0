"""The attack grid on real faces the generator never saw: UTKFace validation faces, dlib default model.

UTKFace plays FFHQ's role: the generator is trained on the 90 % training split of the UTKFace dlib
cache (``benchmarks/gpu_utkface_train.py``, split seed 2021) and attacks the faces of the 10 %
validation split. UTKFace has no identities, so the bona fide scores are impostor comparisons
between different validation faces (all pairs), which set the thresholds at FMR 0.1 / 1 / 10 %;
the attack is type-I (reconstruction vs the original face's embedding). Every protection of the
study's grid (defined by block counts: K = 8, 16, 32 on 128-d embeddings) is attacked as in the
study and after key-free de-shuffling (the de-shuffler is fitted on the training split's
embeddings, i.e. the attacker's own faces).

    python benchmarks/utkface_attack.py [--cache CACHE/utkface_dlib.npz] \
        [--generator CACHE/utkface_generator/best.pt] --output results/utkface_attack
"""

import argparse
import itertools
import time

from pathlib import Path

import numpy as np

from bob_facerev.utils import data_cache


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default=str(data_cache("utkface_dlib.npz")))
    parser.add_argument("--generator", default=str(data_cache("utkface_generator/best.pt")))
    parser.add_argument("--victims", type=int, default=None, help="at most this many (default all)")
    parser.add_argument("--output", default="results/utkface_attack")
    parser.add_argument("--faces", type=int, default=8, help="faces in the grid picture")
    args = parser.parse_args()

    from bob.pipelines import Sample
    from tqdm import tqdm

    from bob_facerev.attack.dataset import split_indices
    from bob_facerev.attack.deshuffle import Deshuffler
    from bob_facerev.evaluation.faces import save_faces
    from bob_facerev.evaluation.report import rsr_report
    from bob_facerev.evaluation.score_files import protection_metadata, write_vuln_scores
    from bob_facerev.attack.chain import attack_chain, attack_scores
    from bob_facerev.experiment_layout import GridLayout
    from bob_facerev.protection.setting import study_grid

    start = time.time()
    out = Path(args.output)
    with np.load(args.cache, allow_pickle=False) as z:
        X_all, crops, files = z["embeddings"], z["crops"], z["files"]
    train, val = split_indices(len(X_all), 0.1, 2021)  # the trainer's split: val never seen
    victims = val if args.victims is None else val[: args.victims]
    # the cache holds dlib's raw descriptors, as the generator was trained on them; scores are
    # cosines, on L2-normalised embeddings (FaceEmbedding normalises the reconstructions')
    X = X_all[victims]
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    samples = [Sample(x, key=str(files[i]), subject_id=str(files[i])) for i, x in zip(victims, X)]

    # bona fide: every pair of different victims (impostors; UTKFace has no identities)
    i, j = np.triu_indices(len(X), k=1)
    scores = np.sum(Xn[i] * Xn[j], axis=1)
    layout = GridLayout(out)
    bona_fide = layout.bona_fide_scores
    write_vuln_scores(
        bona_fide,
        {"probe_subject_id": [samples[a].key for a in i],
         "bio_ref_subject_id": [samples[b].key for b in j], "score": scores},
        [],
    )
    attacker = Deshuffler  # fitted per K on the training split (the attacker's own faces)
    fitted = {}
    files_written, recon_rows, labels = [], [], []
    jobs = [(p, v) for p, v in itertools.product(study_grid(X.shape[1]), ("study", "deshuffle"))
            if p.protected or v == "study"]
    for protection, variant in tqdm(jobs, desc="UTKFace attack grid"):
        deshuffler = None
        if variant == "deshuffle":
            if protection.block_size not in fitted:
                fitted[protection.block_size] = attacker(protection.block_size).fit(X_all[train])
            deshuffler = fitted[protection.block_size]
        chain = attack_chain(protection, variant, args.generator, "dlib", deshuffler=deshuffler,
                             batch_size=64)
        Y = np.stack([s.data for s in chain.transform(samples)])
        rows = attack_scores(samples, Xn, Y, [], np.zeros((0, X.shape[1])))
        path = layout.cell(variant, protection).scores
        meta = protection_metadata("dlib", protection, variant=variant)
        write_vuln_scores(path, [], rows["type-I"], metadata=meta)
        files_written.append(path)
        images = attack_chain(protection, variant, args.generator, "dlib", deshuffler=deshuffler,
                              embed=False).transform(samples[: args.faces])
        recon_rows.append(np.stack([s.data for s in images]))
        labels.append(f"{variant} {protection.name}")
    save_faces(layout.faces, crops[victims[: args.faces]], np.stack(recon_rows),
               [f"#{k}" for k in range(args.faces)], row_labels=labels)
    markdown, written = rsr_report(files_written, layout.report, bona_fide=str(bona_fide),
                                   faces=str(layout.faces))
    print(markdown)
    print(f"{len(samples)} victims, {len(scores)} impostor pairs, {time.time() - start:.0f} s")
    for p in written:
        print(f"wrote {p}")


if __name__ == "__main__":
    main()
