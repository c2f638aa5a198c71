"""Bundle format v1: a BagIt-shaped folder of age-encrypted DICOM instances (DESIGN.md s4).

``format`` holds names and small parsers, ``writer`` builds and seals a bundle, ``verify``
checks one without any secret key, and ``reader`` decrypts one at the center.
The byte-level specification is docs/reference/bundle-format.md.
"""
