"""Speaker embeddings: Resemblyzer's voice encoder read and run without torch (``weights``, ``encoder``)."""
