"""Benchmark scripts; run each with ``python -m benchmarks.<name>``."""
