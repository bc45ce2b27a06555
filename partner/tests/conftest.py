"""Your handlers importable as the consumers import them (partner/handlers is the PartnerLayer's /opt/python)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "handlers"))
