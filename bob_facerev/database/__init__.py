"""Databases: Bob CSV protocols built from the user's LFW and FFHQ folders, and the bundled demo set.

``protocols`` holds the one protocol writer and the image loader; ``lfw``, ``ffhq`` and ``demo``
build the protocols of each dataset and return :class:`bob.bio.base.database.CSVDatabase` objects.
Bob itself is imported only when a database object is created.
"""
