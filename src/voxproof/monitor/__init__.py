"""Monitoring of a served speech model from its request log: reference profile, drift per window,
label-free WER estimate, failure markers, SLO rules, automatic canary removal and rollback, dashboard.

Reads the request-log format documented in docs/ARCHITECTURE.md (``voxproof serve`` writes it; a team
can write it itself as JSONL/CSV). See :mod:`voxproof.monitor.source`.
"""
