"""Benchmark harness (`make bench`, `make bench-quick`): not part of the test suite.

Every figure that can be a ratio is measured against a baseline in the same run,
interleaved round by round, because the machine is shared and noisy. See
docs/BENCHMARKS.md for the design, the latest figures and what limits each one.
"""
