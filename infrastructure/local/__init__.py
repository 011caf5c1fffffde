"""The local mode: the platform description rendered onto an embedded moto (``aios local up``).

See ``infrastructure/local/README.md`` for the settings and ``bridges.py`` for what is
patched in moto and why.
"""
