"""Reading the images of the databases: Bob's format, and a truncated file is an error.

:func:`load_image` is the databases' loader (:func:`bob_facerev.database.protocols.make_database`)
and :func:`check_image` the validation of ``bob facerev db build``; both decode under
:func:`strict_image_decoding`.
"""

from __future__ import annotations

import contextlib
import threading

import numpy as np

_STRICT = {"depth": 0, "saved": None}
_STRICT_LOCK = threading.Lock()


@contextlib.contextmanager
def strict_image_decoding():
    """Decode images with PIL's ``ImageFile.LOAD_TRUNCATED_IMAGES`` off, whatever its global value.

    Importing :mod:`bob.io.base` turns the flag on for the whole process, and PIL then fills the
    missing part of a truncated JPEG or PNG with grey instead of failing. Inside this context a
    truncated file raises. The contexts of several threads nest (a count): the global value is
    restored when the last one exits.
    """
    from PIL import ImageFile

    with _STRICT_LOCK:
        if _STRICT["depth"] == 0:
            _STRICT["saved"] = ImageFile.LOAD_TRUNCATED_IMAGES
        _STRICT["depth"] += 1
        ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        yield
    finally:
        with _STRICT_LOCK:
            _STRICT["depth"] -= 1
            if _STRICT["depth"] == 0:
                ImageFile.LOAD_TRUNCATED_IMAGES = _STRICT["saved"]


def load_image(path):
    """Load an image file in Bob's format; a truncated or corrupt file raises.

    Parameters
    ----------
    path : str
        Image file (any format :func:`bob.io.base.load` reads: JPEG, PNG, ...).

    Returns
    -------
    numpy.ndarray
        ``uint8`` array of shape ``(3, H, W)``, RGB: grey images are repeated on the three
        channels and an alpha channel is dropped.

    Raises
    ------
    ValueError
        The file cannot be decoded completely (:func:`strict_image_decoding`).
    """
    import bob.io.base

    try:
        with strict_image_decoding():
            image = np.asarray(bob.io.base.load(path))
    except RuntimeError as e:
        cause = e.__cause__ or e
        raise ValueError(f"Unreadable image {path}: {cause}. Replace or delete the file.") from e
    if image.ndim == 2:
        image = np.repeat(image[None], 3, axis=0)
    elif image.ndim == 3 and image.shape[0] == 4:
        image = image[:3]
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"{path}: expected a grey, RGB or RGBA image, got shape {image.shape}.")
    if image.dtype != np.uint8:
        raise ValueError(f"{path}: expected an 8-bit image, got {image.dtype}.")
    return np.ascontiguousarray(image)


def check_image(path):
    """Return ``(height, width)`` of an image file, raising ``ValueError`` if it is unreadable.

    Decodes the whole image under :func:`strict_image_decoding` (as :func:`load_image`), so a
    truncated file fails here, not halfway through an experiment, even after ``bob.io.base``
    was imported.
    """
    from PIL import Image

    try:
        with strict_image_decoding(), Image.open(path) as im:
            im.load()
            return im.height, im.width
    except Exception as e:  # PIL raises several types (OSError, SyntaxError, ...)
        raise ValueError(f"Unreadable image {path}: {e}. Replace or delete the file.") from e


def check_images(root, paths, name, progress=True):
    """Refuse a data set whose images do not all decode (:func:`check_image` on each).

    Parameters
    ----------
    root : pathlib.Path
        The data set's folder; ``paths`` are relative to it.
    paths : list of str
        The images to check.
    name : str
        The data set's name, for the progress bar.
    progress : bool
        Show a progress bar.

    Raises
    ------
    ValueError
        Naming how many images are unreadable and the first ten.
    """
    from tqdm import tqdm

    unreadable = []
    for path in tqdm(paths, desc=f"checking {name} images", disable=not progress, unit="img"):
        try:
            check_image(root / path)
        except ValueError as e:
            unreadable.append(str(e))
    if unreadable:
        raise ValueError(f"{len(unreadable)} unreadable image(s) in {root}: "
                         + "; ".join(unreadable[:10]))
