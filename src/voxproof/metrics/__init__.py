"""Metrics computed from stored rows: alignment counts, rates, intervals, paired tests, slices."""
