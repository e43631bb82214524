"""Decoding stage, fetch half: brings an http(s) audio URL into a temporary local file.

URLs are off unless their host is allowed (``AudioLimits.url_hosts``, the CLI's ``--allow-url-host``).
Redirects are followed by hand, at most :data:`MAX_REDIRECTS`, and every hop must be on the allowlist;
with the wildcard ``*`` any public host is allowed but a host that resolves to a private, loopback,
link-local or reserved address is refused unless it is named explicitly. The size limit is enforced
up front from ``Content-Length`` and while streaming, and the whole fetch has one wall-clock deadline,
so a huge, endless or trickling response stops at the limit. Proxy settings from the environment are
ignored (a proxy would hide where the bytes come from).

The temporary file is named ``voxproof-url-<pid>-...`` and removed on exit; a process killed mid-fetch
leaves it behind, so the first fetch of every process removes the files of processes that are gone
(:func:`sweep_stale_temp_files`). The caller decodes the file inside the ``with`` block.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import re
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from urllib.parse import urljoin, urlparse

from voxproof.errors import (
    AudioError,
    AudioNotFound,
    AudioSourceRefused,
    AudioTooLarge,
    EmptyAudio,
    UsageError,
)

log = logging.getLogger("voxproof.audio")

DOWNLOAD_TIMEOUT_S = 60.0
MAX_REDIRECTS = 5
TEMP_PREFIX = "voxproof-url-"
ANY_PUBLIC_HOST = "*"
_swept = False


def is_url(source: object) -> bool:
    """True for ``http://`` and ``https://`` strings (the only remote sources voxproof fetches)."""
    return isinstance(source, str) and source.lower().startswith(("http://", "https://"))


def normalise_hosts(hosts: object) -> tuple[str, ...]:
    """The allowlist as sorted lower-case host names; ``UsageError`` for an entry that is not a bare
    host (a scheme, path, port, space or NUL), so a typo cannot silently allow nothing or everything."""
    if isinstance(hosts, str):
        hosts = (hosts,)
    out = set()
    for raw in hosts or ():  # type: ignore[union-attr]
        host = str(raw).strip().lower().rstrip(".")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        if host != ANY_PUBLIC_HOST and not (_is_ip(host) or re.fullmatch(r"[a-z0-9.-]+", host)):
            raise UsageError(
                f"--allow-url-host takes a bare host name or address such as data.example.org or 127.0.0.1 "
                f"(no scheme, port or path; * for any public host), got {raw!r}"
            )
        out.add(host)
    return tuple(sorted(out))


def check_url(url: str, hosts: tuple[str, ...]) -> str:
    """The URL's host when ``hosts`` allows fetching it; ``AudioSourceRefused`` naming the flag otherwise."""
    parsed = urlparse(url)
    host = (parsed.hostname or "").lower().rstrip(".")
    if parsed.scheme.lower() not in ("http", "https") or not host:
        raise AudioSourceRefused(f"{url!r} is not an http(s) URL with a host; voxproof fetches only http(s)")
    if not hosts:
        raise AudioSourceRefused(
            f"audio URL {url} not fetched: URLs are off by default; pass --allow-url-host {host} "
            f"(AudioLimits.url_hosts) to allow that host"
        )
    if host in hosts:
        return host
    if ANY_PUBLIC_HOST in hosts:
        _require_public(url, host)
        return host
    raise AudioSourceRefused(
        f"audio URL {url} not fetched: host {host!r} is not allowed (allowed: {', '.join(hosts)}); "
        f"pass --allow-url-host {host} to allow it"
    )


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _require_public(url: str, host: str) -> None:
    """Refuse a host that is (or resolves to) a non-public address; only an explicit entry allows those."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        raise AudioError(f"cannot resolve the host of audio URL {url}: {exc}; check the URL") from exc
    for info in infos:
        addr = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if not addr.is_global:
            raise AudioSourceRefused(
                f"audio URL {url} not fetched: {host} resolves to the non-public address {addr}; "
                f"name it explicitly with --allow-url-host {host} to fetch from it"
            )


def sweep_stale_temp_files(directory: str | None = None) -> int:
    """Remove ``voxproof-url-<pid>-*`` files left by processes that no longer run; the number removed."""
    folder = Path(directory or tempfile.gettempdir())
    removed = 0
    try:
        names = os.listdir(folder)
    except OSError:
        return 0
    for name in names:
        m = re.match(re.escape(TEMP_PREFIX) + r"(\d+)-", name)
        if not m or int(m.group(1)) == os.getpid() or _alive(int(m.group(1))):
            continue
        with contextlib.suppress(OSError):
            (folder / name).unlink()
            removed += 1
    if removed:
        log.info("removed %d temporary download(s) left by killed voxproof processes", removed)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


@contextlib.contextmanager
def downloaded(
    url: str,
    *,
    hosts: tuple[str, ...],
    max_bytes: int,
    timeout: float = DOWNLOAD_TIMEOUT_S,
) -> Iterator[Path]:
    """Download ``url`` into a temporary file (same suffix as the URL path) and yield its path.

    ``hosts``: the allowlist (see :func:`check_url`); ``max_bytes``: the most bytes accepted;
    ``timeout``: wall-clock seconds for the whole fetch, redirects included.
    Raises ``AudioSourceRefused`` for a host or redirect that is not allowed, ``AudioNotFound`` for
    404/410, ``AudioTooLarge`` past ``max_bytes`` or the deadline, ``EmptyAudio`` for an empty body, and
    ``AudioError`` for other HTTP or network failures. The file is removed on exit.
    """
    global _swept
    import httpx

    check_url(url, hosts)
    if not _swept:
        _swept = True
        sweep_stale_temp_files()
    suffix = re.sub(r"[^A-Za-z0-9.]", "", PurePosixPath(urlparse(url).path).suffix)[:10]
    fd, name = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-", suffix=suffix)
    path = Path(name)
    deadline = time.monotonic() + timeout
    try:
        with os.fdopen(fd, "wb") as out, httpx.Client(follow_redirects=False, trust_env=False) as client:
            try:
                total = _fetch(client, url, out, hosts, max_bytes, deadline, timeout)
            except httpx.TimeoutException as exc:
                raise AudioError(
                    f"audio URL {url} did not finish within {timeout:g} s (AudioLimits.download_timeout_s); "
                    "stopped downloading; check the server or raise the limit"
                ) from exc
            except httpx.HTTPError as exc:
                raise AudioError(
                    f"could not fetch audio URL {url}: {exc}; check the URL and the network"
                ) from exc
        if total == 0:
            raise EmptyAudio(f"audio URL {url} returned an empty body")
        log.debug("downloaded %s (%d bytes) to %s", url, total, path)
        yield path
    finally:
        path.unlink(missing_ok=True)


def _fetch(client, url: str, out, hosts: tuple[str, ...], max_bytes: int, deadline: float, timeout: float) -> int:
    import httpx

    current = url
    for _hop in range(MAX_REDIRECTS + 1):
        check_url(current, hosts)
        left = deadline - time.monotonic()
        if left <= 0:
            raise httpx.TimeoutException("deadline")
        with client.stream("GET", current, timeout=httpx.Timeout(min(left, timeout))) as response:
            if response.is_redirect:
                target = response.headers.get("location", "")
                current = urljoin(current, target)
                log.debug("audio URL %s redirects to %s", url, current)
                continue
            if response.status_code in (404, 410):
                raise AudioNotFound(f"audio URL not found (HTTP {response.status_code}): {url}")
            if response.status_code >= 400:
                raise AudioError(f"could not fetch audio URL {url}: HTTP {response.status_code}")
            declared = response.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                raise AudioTooLarge(
                    f"{url} is {int(declared):,} bytes, over the {max_bytes:,}-byte download limit "
                    "(AudioLimits.max_download_bytes)"
                )
            total = 0
            for chunk in response.iter_bytes():  # as the bytes arrive, so the deadline is checked often
                total += len(chunk)
                if total > max_bytes:
                    raise AudioTooLarge(
                        f"{url} sent more than {max_bytes:,} bytes, the AudioLimits.max_download_bytes "
                        "limit; stopped downloading"
                    )
                if time.monotonic() > deadline:
                    raise httpx.TimeoutException("deadline")
                out.write(chunk)
            return total
    raise AudioSourceRefused(f"audio URL {url} redirects more than {MAX_REDIRECTS} times; not followed")
