"""The local stack fixtures of tests/e2e, for the README recipes that run here."""

from tests.e2e.conftest import fresh

__all__ = ["fresh"]
