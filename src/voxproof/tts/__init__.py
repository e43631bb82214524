"""Text-to-speech evaluation: prompts -> synthesis -> judges (recogniser, DNSMOS, voice activity,
failure detectors) -> per-system summaries with intervals -> paired comparisons -> reports.

Modules in pipeline order: ``prompts``, ``activity``, ``intelligibility``, ``mos``, ``detectors``,
``evaluate``, ``summary``, ``report``, ``pipeline`` (the whole of ``voxproof tts-eval``). Nothing heavy
is imported here: DNSMOS, Silero VAD and the backends load when first used.
"""
