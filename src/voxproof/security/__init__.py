"""Security probes (``voxproof probe``): black-box attacks a speech team must answer for.

- :mod:`.inject`: injected speech ("hidden command") mixed into real speech, success vs level;
- :mod:`.search`: gradient-free search for a universal additive perturbation under an SNR budget;
- :mod:`.detect`: a cross-model disagreement detector scored on attacked vs clean inputs;
- :mod:`.supply`: model-file checksum and format checks on load (eval, gate; serve via the same calls);
- :mod:`.redact`: the one PII redaction policy every report, log and export goes through;
- :mod:`.governance`: evidence mapped to the NIST AI RMF functions (model card, gate report).

The poisoning/backdoor scans live with the audit (``voxproof audit --poison``): :mod:`voxproof.audit.poison`
(repeated short sounds), :mod:`voxproof.audit.tones` (shared tones), :mod:`voxproof.audit.label_flips`.

Every probe writes its rows to a run store (``run.sqlite``, same schema as ``voxproof eval``) so it is
resumable and re-scorable, and a JSON + HTML report. Importing this package loads no model library.
"""
