"""From scores to rates and pictures.

* :mod:`~bob_facerev.evaluation.rsr`: Bob CSV vulnerability score files, thresholds at FMR,
  the reversibility success rate (RSR) with its counts, tables;
* :mod:`~bob_facerev.evaluation.plots`: RSR heatmaps (K x P), DET curves, face grids;
* :mod:`~bob_facerev.evaluation.unlinkability`: D<->(s) and D<->sys (Gomez-Barrero et al.);
* :mod:`~bob_facerev.evaluation.gender`: soft-biometric leakage classifiers.

Submodules are imported on demand (``from bob_facerev.evaluation import rsr``).
"""
