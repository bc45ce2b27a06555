"""Shared code for the NowToPrint Partner API webhook receiver (the SharedLayer).

`__version__` is the release: the one place it is written (pyproject.toml, `ntp --version`, the
stack's `nowtoprint-webhooks-version` tag and CHANGELOG.md's headings follow it).
"""

__version__ = "0.4.0"
