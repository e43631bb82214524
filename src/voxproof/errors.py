"""One error tree for voxproof. Third-party errors are wrapped where they enter (``raise ... from``).

Every error carries the process exit code the CLI uses for it (the contract in DESIGN.md):
0 done / gate passed, 1 gate failed or findings above threshold, 2 usage error,
3 could not evaluate (data or backend error).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CANNOT_EVALUATE = 3


class VoxproofError(Exception):
    """Base of every error voxproof raises on purpose. The message says what happened and what to do."""

    exit_code = EXIT_CANNOT_EVALUATE


class UsageError(VoxproofError):
    """The caller asked for something invalid: a bad option value, an unknown name, a bad policy file."""

    exit_code = EXIT_USAGE


class DataError(VoxproofError):
    """Input data (audio, manifest, run) could not be used."""


class AudioError(DataError):
    """An audio file could not be decoded into usable samples."""


class AudioNotFound(AudioError):
    """The audio file does not exist."""


class EmptyAudio(AudioError):
    """The file is zero bytes, has zero channels, or decodes to no samples."""


class CorruptAudio(AudioError):
    """The file is truncated, corrupt, or its header lies about its content."""


class AudioTooLarge(AudioError):
    """The file or its decoded duration exceeds the configured limit."""


class UnsupportedAudio(AudioError):
    """The format cannot be decoded here (for example ffmpeg is missing)."""


class AudioSourceRefused(AudioError):
    """voxproof refuses to read this source: a device, FIFO or socket (not a regular file), a URL whose
    host is not allowed (``--allow-url-host``), a redirect to a private address, or a playlist."""


class ManifestError(DataError):
    """A manifest has invalid lines. ``problems`` lists every one as (line number, message)."""

    def __init__(self, message: str, problems: list[tuple[int, str]] | None = None):
        self.problems = list(problems or [])
        if self.problems:
            shown = "; ".join(f"line {n}: {m}" for n, m in self.problems[:20])
            more = f" (+{len(self.problems) - 20} more)" if len(self.problems) > 20 else ""
            message = f"{message}: {shown}{more}"
        super().__init__(message)


class UnsafeManifest(ManifestError):
    """A manifest asks for something voxproof refuses to do (for example a piped Kaldi wav.scp)."""


class BackendError(VoxproofError):
    """A model backend failed to load or to process an input."""


class EndpointRefused(BackendError):
    """A remote endpoint refuses every request (HTTP 401/403: missing or wrong credentials). A run stops
    at the first one instead of sending every utterance to be refused."""


class BackendUnavailable(BackendError):
    """A backend's optional dependencies are not installed. The message names the pip extra."""

    exit_code = EXIT_CANNOT_EVALUATE


class RunError(DataError):
    """A run directory or run store is missing, corrupt, or was made with other settings."""


class NotComparable(VoxproofError):
    """Two runs cannot be compared (different normaliser, dataset or utterance set)."""

    exit_code = EXIT_USAGE
