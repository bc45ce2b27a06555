"""Maintainer tooling, not packaged with `ntp`: the cost model, the performance bench, the fault table,
the soak run, the sample-event generator and the LocalStack deploy check. It may import `devtools`
and the shared layer; nothing there imports it."""
