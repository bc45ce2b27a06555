"""`make run`: the whole pipeline on loopback, provisioned from template.yaml (docs/local-stack.md).
Modules: `stack` (`DevStack`), `functions`, `http_api`, `pollers`, `admin`, `__main__`.

This file imports nothing, so that the `ntp` CLI can read `state` without loading moto.
"""
