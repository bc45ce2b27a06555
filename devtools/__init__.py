"""Developer tools: template reader, moto provisioner, local stack, CLI and bench (not deployed)."""
