"""Benchmarks on the local stack (``make bench``); results are written to ``docs/benchmarks.md``."""
