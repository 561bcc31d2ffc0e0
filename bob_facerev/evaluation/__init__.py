"""From scores to rates and pictures.

* :mod:`~bob_facerev.evaluation.rsr`: thresholds at FMR, the reversibility success rate (RSR)
  with its counts, the long result table of score files;
* :mod:`~bob_facerev.evaluation.score_files`: the score files (Bob CSV vulnerability files,
  bob.measure 2-column, Bob 4/5-column), read and written;
* :mod:`~bob_facerev.evaluation.tables`: RSR and threshold tables, and ``markdown_table``;
* :mod:`~bob_facerev.evaluation.plots`: RSR heatmaps (K x P), DET curves;
* :mod:`~bob_facerev.evaluation.faces`: face grids (originals beside reconstructions);
* :mod:`~bob_facerev.evaluation.report`: the report of ``bob facerev rsr`` and of the grid;
* :mod:`~bob_facerev.evaluation.unlinkability`: D<->(s) and D<->sys (Gomez-Barrero et al.);
* :mod:`~bob_facerev.evaluation.gender`: soft-biometric leakage classifiers.

Submodules are imported on demand (``from bob_facerev.evaluation import rsr``).
"""
