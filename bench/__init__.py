"""Reproducible measurements behind the choices recorded in docs/benchmarks.md."""
