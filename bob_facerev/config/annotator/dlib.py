"""``-a facerev-dlib``: dlib HOG face detector + 5 landmarks (offline), for ``bob bio annotate``.

Bob's ``bob bio annotate -o DIR`` already stores each sample's annotations as JSON in ``DIR``;
for a cache inside pipelines use ``DlibAnnotator(annotations_dir=...)``.
"""

from bob_facerev.face.annotator import DlibAnnotator

annotator = DlibAnnotator()
