"""Benchmark scripts: the speed and quality figures reported in the README (run them, don't trust them)."""
