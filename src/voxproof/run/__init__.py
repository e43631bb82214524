"""Runs: evaluating one backend on one manifest under a set of conditions, rows stored as they finish."""
