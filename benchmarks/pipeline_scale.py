"""Images/s of ``bob bio pipeline simple -p facerev-dlib`` vs the bare batched chain.

The data: an LFW-shaped set generated from the bundled demo photos (each photo's face placed,
with random jitter of rotation, scale, shift, brightness and mirroring, at LFW's geometry in a
250x250 JPEG, :func:`bob_facerev.face.annotator.place_face`); every image is its own template
(as LFW View 2), half enrolled, half probed, one comparison per probe (``for_matching.csv``).

Each round times, interleaved on the same images (the machine may be shared: compare the ratios
of one round, not absolute numbers across runs):

``bare``
    load the JPEGs, :class:`~bob_facerev.face.crop.FaceCropper` (detection + dlib chip) over
    ``--n-jobs`` processes (:func:`~bob_facerev.face.parallel.parallel_transform`), then
    :class:`~bob_facerev.face.extractor.FaceEmbedding` in batches of ``--batch-size``;
``no-dask``
    ``bob bio pipeline simple <db> -p facerev-dlib --no-dask -o <fresh folder>`` (Bob's
    checkpoints on, as by default), wall time of the command;
``dask``
    the same with ``-l facerev-local`` (one single-threaded worker per core);
``startup``
    ``bob bio pipeline simple --help``: the command's fixed cost (Python start, entry points,
    imports), included in the pipeline's time; its images/s column is meaningless.

Run by hand::

    python benchmarks/pipeline_scale.py --images 1000 --work-dir scale-work
    python benchmarks/pipeline_scale.py --images 1000 --device cuda    # when a GPU is there
    python benchmarks/pipeline_scale.py --skip-detection               # FixedAnnotator both sides

``--work-dir`` (default: a temporary folder, deleted at the end) holds the generated images and
the pipeline outputs; an existing folder must be empty or one this script wrote.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MARKER = "pipeline_scale.json"

CONFIG = """# written by benchmarks/pipeline_scale.py
from bob_facerev.database.protocols import make_database

database = make_database(name="lfw-shaped", protocol="view2",
                         protocols_path={protocols!r}, original_directory={images!r})
"""

PIPELINE = """# written by benchmarks/pipeline_scale.py
from bob_facerev.face.annotator import FixedAnnotator
from bob_facerev.pipelines import verification_pipeline

pipeline = verification_pipeline("dlib", {annotator}batch_size={batch_size}, device={device!r})
"""


def _jitter(rng, eyes):
    """LFW eye positions moved by a random similarity (rotation, scale, shift)."""
    import numpy as np

    centre = np.mean([eyes["leye"], eyes["reye"]], axis=0)
    angle, scale = np.deg2rad(rng.uniform(-6, 6)), rng.uniform(0.93, 1.07)
    shift = rng.uniform(-4, 4, 2)
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return {k: tuple(rot @ (np.asarray(v) - centre) + centre + shift) for k, v in eyes.items()}


def make_dataset(root, n_images, seed=0):
    """Generate the LFW-shaped set under ``root``; returns the database config file."""
    import numpy as np
    from PIL import Image

    from bob_facerev.database.demo import demo_directory, demo_images
    from bob_facerev.database.images import load_image
    from bob_facerev.database.protocols import sample_row, write_protocols
    from bob_facerev.face.annotator import LFW_EYES, DlibAnnotator, place_face

    rng = np.random.default_rng(seed)
    sources = []
    for row in demo_images():
        image = load_image(str(demo_directory() / "images" / row["path"]))
        sources.append((row["subject_id"], image, DlibAnnotator(n_jobs=1).annotate(image)))
    rows = []
    for i in range(n_images):
        subject, image, ann = sources[i % len(sources)]
        if rng.random() < 0.5:  # mirrored: the eyes swap sides
            image = image[:, :, ::-1]
            w = image.shape[2]
            ann = {"leye": (ann["reye"][0], w - 1 - ann["reye"][1]),
                   "reye": (ann["leye"][0], w - 1 - ann["leye"][1])}
        face = place_face(image, ann, eyes=_jitter(rng, LFW_EYES)).astype(float)
        face = np.clip(face * rng.uniform(0.85, 1.15), 0, 255).astype(np.uint8)
        rel = f"{subject}/{subject}_{i:05d}.jpg"
        (root / "images" / subject).mkdir(parents=True, exist_ok=True)
        Image.fromarray(face.transpose(1, 2, 0)).save(root / "images" / rel, quality=95)
        rows.append(sample_row(rel, subject, template_id=f"{subject}_{i:05d}"))
    enroll, probe = rows[0::2], rows[1::2]
    matching = [{"enroll_template_id": e["template_id"], "probe_template_id": p["template_id"]}
                for e, p in zip(enroll, probe)]
    write_protocols(root / "protocols", {"view2": {"dev/for_enrolling.csv": enroll,
                                                   "dev/for_probing.csv": probe,
                                                   "dev/for_matching.csv": matching}})
    config = root / "database.py"
    config.write_text(CONFIG.format(protocols=str(root / "protocols"),
                                    images=str(root / "images")))
    return config, [str(root / "images" / r["path"]) for r in rows], len(matching)


def bare_chain(paths, n_jobs, batch_size, device, skip_detection):
    """Seconds for load + detect/crop (``n_jobs`` processes) + batched embedding."""
    from bob_facerev.database.images import load_image
    from bob_facerev.face.annotator import FixedAnnotator
    from bob_facerev.face.crop import FaceCropper
    from bob_facerev.face.extractor import FaceEmbedding
    from bob_facerev.face.parallel import parallel_transform

    start = time.perf_counter()
    images = [load_image(p) for p in paths]
    loaded = time.perf_counter()
    cropper = FaceCropper("dlib", annotator=FixedAnnotator() if skip_detection else None)
    crops = parallel_transform(cropper, images, n_jobs=n_jobs)
    valid = [c for c in crops if c is not None]
    cropped = time.perf_counter()
    emb = FaceEmbedding("dlib", batch_size=batch_size, device=device).transform(valid)
    end = time.perf_counter()
    stages = {"load": loaded - start, "crop": cropped - loaded, "embed": end - cropped}
    return end - start, len(valid), emb, stages


def run_pipeline(config, pipeline, output, dask, n_pairs, stage_log=None):
    """Seconds and ``(start, end)`` wall times of one ``bob bio pipeline simple`` command
    (checks its score count).

    With ``stage_log``, the batched steps append their timings there (``FACEREV_STAGE_LOG``).
    """
    bob = shutil.which("bob") or os.path.join(os.path.dirname(sys.executable), "bob")
    command = [bob, "bio", "pipeline", "simple", str(config), *pipeline, "-o", str(output)]
    command += ["-l", "facerev-local"] if dask else ["--no-dask"]
    env = dict(os.environ)
    if stage_log is not None:
        env["FACEREV_STAGE_LOG"] = str(stage_log)
    start, started = time.perf_counter(), time.time()
    proc = subprocess.run(command, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    ended = time.time()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    with open(Path(output) / "scores-dev.csv") as f:
        n_scores = sum(1 for _ in f) - 1
    if n_scores != n_pairs:
        raise RuntimeError(f"{output}: {n_scores} scores, expected {n_pairs}")
    return seconds, (started, ended)


#: the keys of a stage-log line that are not seconds
LOG_KEYS = ("stage", "samples", "pid", "end")


def stage_seconds(stage_log):
    """``{"<stage> <timing>": seconds}`` summed over the lines of a stage log (all workers)."""
    totals = {}
    if not Path(stage_log).is_file():
        return totals
    for line in Path(stage_log).read_text().splitlines():
        entry = json.loads(line)
        for key, value in entry.items():
            if key not in LOG_KEYS:
                name = f"{entry['stage']} {key}"
                totals[name] = totals.get(name, 0.0) + value
    return totals


def timeline(stage_log, started, ended):
    """``{"before the first step": s, "after the last step": s}`` of one command.

    ``started``/``ended``: the command's wall times (``time.time()``); a step's start is its
    ``end`` less its logged seconds. Before: start-up, workers, database, graph; after:
    templates, scoring, the score file, shutting down.
    """
    if not Path(stage_log).is_file():
        return {}
    entries = [json.loads(line) for line in Path(stage_log).read_text().splitlines()]
    entries = [e for e in entries if "end" in e]
    if not entries:
        return {}
    starts = [e["end"] - sum(v for k, v in e.items() if k not in LOG_KEYS) for e in entries]
    return {"before the first step": min(starts) - started,
            "after the last step": ended - max(e["end"] for e in entries)}


def _startup_seconds():
    """Seconds of ``bob bio pipeline simple --help`` (Python start, entry points, imports)."""
    bob = shutil.which("bob") or os.path.join(os.path.dirname(sys.executable), "bob")
    start = time.perf_counter()
    subprocess.run([bob, "bio", "pipeline", "simple", "--help"], capture_output=True, check=True)
    return time.perf_counter() - start


def _work_dir(path):
    if path is None:
        return Path(tempfile.mkdtemp(prefix="pipeline-scale-")), True
    path = Path(path).expanduser().absolute()
    if path.exists() and any(path.iterdir()) and not (path / MARKER).is_file():
        raise SystemExit(f"--work-dir {path} is not empty and was not written by this script: "
                         "choose a new or empty folder")
    path.mkdir(parents=True, exist_ok=True)
    return path, False


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--n-jobs", type=int, default=None,
                        help="processes of the bare chain's crop step (default: all cores, "
                             "as the pipeline's)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: as the pipeline)")
    parser.add_argument("--skip-detection", action="store_true",
                        help="FixedAnnotator (LFW geometry) on both sides")
    parser.add_argument("--modes", default="no-dask,bare,dask",
                        help="comma list, run in this order each round")
    parser.add_argument("--work-dir", default=None)
    args = parser.parse_args(argv)
    if args.images < 20:
        parser.error(f"--images {args.images}: use at least 20")
    modes = args.modes.split(",")
    if not set(modes) <= {"bare", "no-dask", "dask", "startup"}:
        parser.error(f"--modes {args.modes}: a comma list of bare, no-dask, dask, startup")

    import torch

    from bob_facerev.face.parallel import available_cores, effective_n_jobs

    work, temporary = _work_dir(args.work_dir)
    (work / MARKER).write_text(json.dumps(vars(args)))
    try:
        data = work / f"data-{args.images}"
        done = data / "dataset.json"
        if done.is_file():  # generated by an earlier run in this work dir: same seed, same set
            config, paths, n_pairs = json.loads(done.read_text())
            print(f"re-using the {len(paths)} LFW-shaped images of {data}")
        else:
            shutil.rmtree(data, ignore_errors=True)  # inside the work dir this script owns
            t = time.perf_counter()
            config, paths, n_pairs = make_dataset(data, args.images)
            done.write_text(json.dumps([str(config), paths, n_pairs]))
            print(f"generated {len(paths)} LFW-shaped images in {time.perf_counter() - t:.0f} s")
        pipeline = ["-p", "facerev-dlib"]
        if args.skip_detection or args.device or args.batch_size != 32:
            pipe = work / "pipeline.py"
            annotator = "annotator=FixedAnnotator(), " if args.skip_detection else ""
            pipe.write_text(PIPELINE.format(annotator=annotator, batch_size=args.batch_size,
                                            device=args.device))
            pipeline = [str(pipe)]
        print(f"machine: {platform.platform()}, {available_cores()} cores, torch "
              f"{torch.__version__} ({torch.get_num_threads()} threads), device "
              f"{args.device or ('cuda' if torch.cuda.is_available() else 'cpu')}, crop "
              f"processes {effective_n_jobs(args.n_jobs)}, load {os.getloadavg()[0]:.1f}")
        print("| round | mode | seconds | images/s | load (1 min) |")
        print("|---|---|---|---|---|")
        ratios = {m: [] for m in modes if m in ("no-dask", "dask")}
        stages = {}
        for r in range(args.rounds):
            seconds = {}
            for mode in modes:  # e.g. no-dask,bare,dask: the bare chain between the two
                if mode == "startup":  # the fixed cost of the command: start, imports
                    seconds[mode] = _startup_seconds()
                elif mode == "bare":
                    seconds[mode], _, _, parts = bare_chain(paths, args.n_jobs, args.batch_size,
                                                            args.device, args.skip_detection)
                    stages[(r, mode)] = parts
                else:
                    out = work / f"out-{mode}-{r}"
                    log = work / f"stages-{mode}-{r}.jsonl"
                    shutil.rmtree(out, ignore_errors=True)
                    log.unlink(missing_ok=True)
                    seconds[mode], wall = run_pipeline(config, pipeline, out, mode == "dask",
                                                       n_pairs, stage_log=log)
                    stages[(r, mode)] = {**stage_seconds(log), **timeline(log, *wall)}
                print(f"| {r} | {mode} | {seconds[mode]:.1f} | "
                      f"{len(paths) / seconds[mode]:.2f} | {os.getloadavg()[0]:.1f} |", flush=True)
            for mode in ratios:
                if "bare" in seconds and mode in seconds:
                    ratios[mode].append(seconds["bare"] / seconds[mode])
                    print(f"round {r}: {mode} images/s / bare images/s = {ratios[mode][-1]:.2f}")
        for mode, values in ratios.items():
            if values:
                print(f"{mode}: images/s = {statistics.median(values):.2f} x the bare chain's "
                      f"(median of {len(values)} rounds)")
        print("seconds per stage (pipelines: summed over the processes that ran them):")
        print("| round | mode | stage | seconds |")
        print("|---|---|---|---|")
        for (r, mode), parts in stages.items():
            for name, value in parts.items():
                print(f"| {r} | {mode} | {name} | {value:.1f} |")
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    finally:
        if temporary:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
