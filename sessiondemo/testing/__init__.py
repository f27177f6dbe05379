"""Real-process helpers for the test suite and the benchmarks (not used by the site)."""
