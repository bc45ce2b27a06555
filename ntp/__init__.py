"""`ntp`, the command line for partners: send signed events, check and operate a deployed stack or the
local one (`ntp --help`), and `ntp.testing` for their handlers' tests. Installed by `make dev`; `make
dist` builds it as a wheel (with `ntp_webhooks`, the library it shares with the functions)."""
