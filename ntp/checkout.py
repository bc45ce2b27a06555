"""What `ntp` reads from the checkout it runs in (its root, where `make` runs too): samconfig.toml, the
family list template.yaml gives the functions, and the partner's handlers."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from ntp_webhooks.routing import FAMILIES_VARIABLE
from ntp_webhooks.subscriptions import Subscriptions, load_partner_handlers

#: Where the partner's handlers are: the PartnerLayer's folder (NTP_PARTNER_DIR: our tests' stand-in).
PARTNER_DIR_VARIABLE = "NTP_PARTNER_DIR"
PARTNER_DIR = Path("partner") / "handlers"


def root() -> Path:
    return Path.cwd()


def use_template_families(template: Path | None = None) -> None:
    """Set EVENT_FAMILIES as the deployed functions get it: from template.yaml's Globals line, which
    `make template` writes from the family list. Kept when it is set already."""
    if FAMILIES_VARIABLE in os.environ:
        return
    template = template or root() / "template.yaml"
    found = re.search(rf"^\s*{FAMILIES_VARIABLE}: ([\w,]+)", template.read_text(), re.MULTILINE)
    if found is None:
        raise LookupError(f"{template} has no {FAMILIES_VARIABLE} line: run ntp from the checkout's root")
    os.environ[FAMILIES_VARIABLE] = found[1]


def partner_handlers() -> Subscriptions:
    """The registry as the consumers fill it: the partner's entry point imported from their folder."""
    use_template_families()
    folder = str(Path(os.environ.get(PARTNER_DIR_VARIABLE) or root() / PARTNER_DIR).resolve())
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return load_partner_handlers()
