"""The study's gender experiment on real faces: gender from *reconstructed* faces' embeddings.

Osorio-Roig et al. predict gender from the embeddings of faces reconstructed from PE-MIU templates
shuffled at random per template (train and test in that domain, 10-fold CV, SVC poly/rbf/sigmoid).
Here: the UTKFace validation faces (never seen by the generator of
``benchmarks/gpu_utkface_train.py``), gender-balanced, dlib default model; reconstructions from the
unprotected templates, from PE-MIU random per template (K = 4 and 32, the study's 32 and 4 blocks),
and from those templates after key-free de-shuffling.

    python benchmarks/utkface_gender_reconstructed.py [--cache CACHE/utkface_dlib.npz] \
        [--generator CACHE/utkface_generator/best.pt]
"""

import argparse
import time

import numpy as np

from bob_facerev.utils import data_cache


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default=str(data_cache("utkface_dlib.npz")))
    parser.add_argument("--generator", default=str(data_cache("utkface_generator/best.pt")))
    parser.add_argument("--block-sizes", type=int, nargs="+", default=[4, 32])
    parser.add_argument("--output", default=None, help="CSV of the table (optional)")
    args = parser.parse_args()

    import pandas as pd

    from bob.pipelines import Sample

    from bob_facerev.attack.dataset import split_indices
    from bob_facerev.attack.deshuffle import Deshuffler
    from bob_facerev.evaluation.gender import balanced_indices, gender_leakage, parse_gender
    from bob_facerev.evaluation.tables import markdown_table
    from bob_facerev.attack.chain import attack_chain
    from bob_facerev.protection.setting import Protection

    start = time.time()
    with np.load(args.cache, allow_pickle=False) as z:
        X_all, gender_all, files = z["embeddings"], z["gender"], z["files"]
    train, val = split_indices(len(X_all), 0.1, 2021)  # the generator's split
    y_all = parse_gender(list(gender_all[val]))
    keep = val[y_all >= 0]
    y = parse_gender(list(gender_all[keep]))
    chosen = balanced_indices(y, seed=42)
    idx, y = keep[chosen], y[chosen]
    samples = [Sample(X_all[i], key=str(files[i])) for i in idx]
    clean = X_all[idx] / np.linalg.norm(X_all[idx], axis=1, keepdims=True)

    settings = [("clean templates", None, None)]
    settings.append(("reconstructed, unprotected", Protection.none(), "study"))
    for k in args.block_sizes:
        settings.append((f"reconstructed, PE-MIU random K={k}", Protection.random(k), "study"))
        settings.append((f"reconstructed, PE-MIU random K={k}, de-shuffled", Protection.random(k),
                         "deshuffle"))
    rows = []
    for name, protection, variant in settings:
        if protection is None:
            X = clean
        else:
            deshuffler = (
                Deshuffler(protection.block_size).fit(X_all[train]) if variant == "deshuffle"
                else None
            )
            chain = attack_chain(protection, variant, args.generator, "dlib",
                                 deshuffler=deshuffler, batch_size=64)
            X = np.stack([s.data for s in chain.transform(samples)])
        table = gender_leakage(X, y, classifiers=("svc-poly", "svc-rbf", "svc-sigmoid", "knn3"))
        row = {"features": name}
        row.update({c: f"{table.loc[c, 'mean']:.3f} ± {table.loc[c, 'std']:.3f}" for c in table.index})
        rows.append(row)
        print(row, flush=True)
    df = pd.DataFrame(rows)
    print(f"\n{len(y)} faces ({int(np.sum(y == 0))} + {int(np.sum(y == 1))}), 10-fold CV, "
          f"{time.time() - start:.0f} s\n")
    print(markdown_table(df))
    if args.output:
        df.to_csv(args.output, index=False)


if __name__ == "__main__":
    main()
