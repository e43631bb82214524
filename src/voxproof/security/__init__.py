"""Security probes (``voxproof probe``): black-box attacks a speech team must answer for.

- :mod:`.inject`: injected speech ("hidden command") mixed into real speech, success vs level;
- :mod:`.search`: gradient-free search for a universal additive perturbation under an SNR budget;
- :mod:`.detect`: a cross-model disagreement detector scored on attacked vs clean inputs;
- :mod:`.supply`: model-file checksum and format checks on load.

Every probe writes its rows to a run store (``run.sqlite``, same schema as ``voxproof eval``) so it is
resumable and re-scorable, and a JSON + HTML report. Importing this package loads no model library.
"""
