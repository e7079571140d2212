"""Benchmarks (not tests): the real bot against a bare Bolt app, on loopback, as ratios."""
