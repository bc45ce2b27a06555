"""Hypothesis profiles for the property tests, which import `settings` from here so that the profile is
loaded before their decorators read it.

- "quick", the default: 12 generated examples a property, plus each test's explicit `@example` cases.
  `make test` runs it; a failing example is saved in .hypothesis/ and tried first on the next run.
- "thorough": 40 a property, as many as any of them ran before (25 to 40; half a minute more):
  `HYPOTHESIS_PROFILE=thorough .venv/bin/python -m pytest tests/integration/test_projection.py
  tests/e2e/test_contract.py` after a change to the projection, the envelope or the events.

The tests set no `max_examples` of their own: it would override the profile.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("quick", max_examples=12)
settings.register_profile("thorough", max_examples=40)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "quick"))

__all__ = ["settings"]
