"""`python -m ntp`, as the `ntp` script."""

from ntp.cli import run

run()
