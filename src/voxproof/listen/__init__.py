"""Listening tests for TTS systems: a self-contained HTML test made from ``tts-eval`` runs
(``design``, ``page``), answer files the listeners send back (``answers``), their scoring (``score``:
MOS, Bradley-Terry, screening, agreement), simulated listeners to test the scoring (``simulate``) and
the calibration of MOS predictors against the listeners (``calibration``)."""
