"""Shared code for the NowToPrint Partner API webhook receiver (the SharedLayer)."""
