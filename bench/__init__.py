"""Benchmarks: printed figures, never timed tests (`make bench`)."""
