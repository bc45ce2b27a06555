"""`make run`: the whole pipeline on loopback, provisioned from template.yaml. No AWS account, no Docker.

One module per job:
- `stack`: `DevStack`, the lifecycle: moto's server with the template's resources, the pieces below,
  and the state file the `ntp` CLI reads (`state`);
- `functions`: each function imported as Lambda would, its output sent to the log file, and reloads;
- `http_api`: the front door, turning each request into the HTTP API v2 event for IngestFunction;
- `pollers`: what Lambda's SQS event source mappings do for the consumers, with a console line each;
- `admin`: the local-only actions behind `ntp rotate --local` and `ntp emergency-rotate --local`;
- `__main__`: `python -m devtools.local_stack`, the banner, Ctrl-C.

This file imports nothing, so that the `ntp` CLI can read `state` without loading moto.
"""
