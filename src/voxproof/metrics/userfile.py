"""Reading a small text file the user names (word lists, biasing lists, STM/CTM/RTTM/SegLST/UEM): only
regular files (a device or FIFO never ends), a size cap, UTF-8, no NUL bytes; every refusal is a
one-line :class:`~voxproof.errors.UsageError` naming the file."""

from __future__ import annotations

import hashlib
import os
import stat

from voxproof.errors import UsageError


def read_user_bytes(path: str | os.PathLike[str], what: str, max_bytes: int,
                    error: type[Exception] = UsageError) -> bytes:
    """The bytes of the regular file ``path`` (at most ``max_bytes``); every refusal is one ``error``
    naming the file: missing, a NUL in the name, a device/FIFO/directory, too big, or grown while read."""
    label = os.fspath(path)
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise error(f"{what} file {label} does not exist") from None
    except ValueError:
        raise error(f"{what} file name {label!r} contains a NUL byte") from None
    except OSError as exc:
        raise error(f"cannot read {what} file {label}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{what} file {label} is not a regular file (a directory, device or FIFO)")
    if st.st_size > max_bytes:
        raise error(f"{what} file {label} is {st.st_size:,} bytes, over the {max_bytes:,}-byte limit")
    with open(path, "rb") as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise error(f"{what} file {label} grew past the {max_bytes:,}-byte limit while being read")
    return data


def read_user_text(path: str | os.PathLike[str], what: str, max_bytes: int) -> tuple[str, str]:
    """The text of ``path`` and the sha256 of its bytes."""
    label = os.fspath(path)
    data = read_user_bytes(path, what, max_bytes)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{what} file {label} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    if "\x00" in text:
        raise UsageError(f"{what} file {label} contains NUL bytes; it is not a text file")
    return text, hashlib.sha256(data).hexdigest()
