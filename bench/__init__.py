"""Benchmarks: `scripts/bench` (see docs/benchmarks.md). Not part of the package."""
