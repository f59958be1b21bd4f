"""Benchmarks: `python -m bench` runs them all; `python -m bench.<area>` runs one.

Each prints its figures beside a baseline measured in the same run (these machines are noisy, so
ratios are the numbers to compare between runs).
"""
