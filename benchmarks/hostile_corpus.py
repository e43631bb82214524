"""Hostile-input corpus generator (issue 21): malformed audio files and hostile manifests, seeded.

``generate_audio(folder, n, seed)`` writes ``n`` audio cases: valid controls, truncations, bit flips and
byte splices of real WAV/FLAC/MP3/OGG/M4A/Opus files, lying headers (data size, rate, channels, bits),
zero channels, non-audio bytes and text under audio suffixes, empty files, decompression bombs (FLAC and
Opus of hours of silence, a WAV of 'unknown' length), playlists (HLS, ffconcat), and special files
(/dev/zero, /dev/urandom, a FIFO, symlinks to each, a dangling symlink, a directory). Each case is
``(case_id, family, path)``. ``generate_manifests(folder, audio_path)`` writes hostile manifests: a CSV cell
over 131,072 characters, deep JSON, lone surrogates, 400- and 5,000-digit numbers, NUL in paths, a stray
quote, hostile ids (``..``, ``/``, NUL, very long, Unicode), binary garbage, BOMs, duplicates, NaN/inf.
Used by ``benchmarks/hostile_inputs.py``; nothing here downloads anything.
"""

# ruff: noqa: UP031 - the manifests are JSON templates; %-formatting keeps their braces readable
from __future__ import annotations

import json
import os
import random
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

FFMPEG = shutil.which("ffmpeg")


def _ffmpeg(*args: str) -> None:
    subprocess.run([FFMPEG or "ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True, timeout=300)


def _seed_files(folder: Path) -> dict[str, bytes]:
    """Small real encodings of one tone+noise clip in every format the decoder handles."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    t = np.arange(8000) / 16000
    x = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(len(t))).astype(np.float32)
    wav = folder / "seed.wav"
    sf.write(wav, x, 16000, subtype="PCM_16")
    sf.write(folder / "seed.flac", x, 16000)
    sf.write(folder / "seed.ogg", x, 16000)
    out = {".wav": wav.read_bytes(), ".flac": (folder / "seed.flac").read_bytes(), ".ogg": (folder / "seed.ogg").read_bytes()}
    if FFMPEG:
        for suffix, codec in ((".mp3", []), (".m4a", ["-c:a", "aac"]), (".opus", ["-c:a", "libopus"])):
            _ffmpeg("-i", str(wav), *codec, str(folder / f"seed{suffix}"))
            out[suffix] = (folder / f"seed{suffix}").read_bytes()
    return out


def _wav_header(rate: int, channels: int, bits: int, data_bytes: int, fmt_tag: int = 1) -> bytes:
    block = max(channels * bits // 8, 0) & 0xFFFF
    fmt = struct.pack("<HHIIHH", fmt_tag, channels, rate, (rate * block) & 0xFFFFFFFF, block, bits)
    return b"RIFF" + struct.pack("<I", (36 + data_bytes) & 0xFFFFFFFF) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt \
        + b"data" + struct.pack("<I", data_bytes & 0xFFFFFFFF)


def _bombs(folder: Path) -> list[tuple[str, Path]]:
    """Small files that decode to hours (made once, ~10 s of ffmpeg)."""
    out = []
    if FFMPEG:
        for name, args in (
            ("flac-3h-16k.flac", ["-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "10800", "-c:a", "flac"]),
            ("flac-3h-48k-stereo.flac", ["-f", "lavfi", "-i", "anullsrc=r=48000:cl=stereo", "-t", "10800", "-c:a", "flac"]),
            ("opus-2h.opus", ["-f", "lavfi", "-i", "anullsrc=r=48000:cl=mono", "-t", "7200", "-c:a", "libopus", "-b:a", "6k"]),
            ("mka-2h-flac.mka", ["-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", "7200", "-c:a", "flac"]),
        ):
            path = folder / name
            if not path.exists():
                _ffmpeg(*args, str(path))
            out.append(("bomb", path))
        streamed = folder / "flac-2h-streamed.flac"  # no length in the header: only the decoder can stop it
        if not streamed.exists():
            with streamed.open("wb") as fh:
                subprocess.run([FFMPEG, "-nostdin", "-v", "error", "-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono",
                                "-t", "7200", "-c:a", "flac", "-f", "flac", "pipe:1"], stdout=fh, check=True, timeout=300)
        out.append(("bomb", streamed))
    unknown = folder / "wav-unknown-length.wav"  # 11 minutes of silence, data size 0xFFFFFFFF
    if not unknown.exists():
        with unknown.open("wb") as fh:
            fh.write(_wav_header(8000, 1, 16, 0xFFFFFFFF))
            fh.write(b"\0" * (8000 * 2 * 660))
    out.append(("bomb", unknown))
    return out


def _specials(folder: Path) -> list[tuple[str, Path]]:
    fifo = folder / "fifo.wav"
    if not fifo.exists():
        os.mkfifo(fifo)
    (folder / "a-directory.wav").mkdir(exist_ok=True)
    out = [("special", Path("/dev/zero")), ("special", Path("/dev/urandom")), ("special", fifo),
           ("special", folder / "a-directory.wav")]
    for name, target in (("zero", "/dev/zero"), ("urandom", "/dev/urandom"), ("fifo", str(fifo)),
                         ("dangling", str(folder / "nowhere.wav"))):
        link = folder / f"link-{name}.flac"
        if not link.is_symlink():
            link.symlink_to(target)
        out.append(("special-symlink", link))
    return out


def _mutate(rng: random.Random, data: bytes, kind: str) -> bytes:
    b = bytearray(data)
    if kind == "truncate":
        return bytes(b[: rng.randrange(0, max(len(b) - 1, 1))])
    if kind == "bitflip":
        for _ in range(rng.choice((1, 2, 8, 64))):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
        return bytes(b)
    if kind == "header-bytes":  # random bytes over the first 64 (headers, stream info)
        for _ in range(rng.randrange(1, 12)):
            b[rng.randrange(min(64, len(b)))] = rng.randrange(256)
        return bytes(b)
    if kind == "splice":  # a random span repeated or dropped
        i, j = sorted(rng.randrange(len(b)) for _ in range(2))
        return bytes(b[:i] + b[j:]) if rng.random() < 0.5 else bytes(b[:j] + b[i:j] * rng.randrange(2, 20) + b[j:])
    raise ValueError(kind)


def _lying_wav(rng: random.Random) -> bytes:
    rate = rng.choice((0, 1, 8000, 16000, 192000, 384000, 2**31 - 1, 2**32 - 1))
    channels = rng.choice((0, 1, 2, 255, 65535))
    bits = rng.choice((0, 1, 8, 16, 24, 32, 64, 12))
    body = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 4000)))
    declared = rng.choice((len(body), len(body) * 1000, 0, 0xFFFFFFFF, 2**31))
    return _wav_header(rate, channels, bits, declared, rng.choice((1, 3, 0xFFFE, 0, 85))) + body


def _junk(rng: random.Random) -> bytes:
    choice = rng.randrange(6)
    if choice == 0:
        return os.urandom(rng.randrange(1, 20000))
    if choice == 1:
        return ("hello, this is not audio " * rng.randrange(1, 50)).encode()
    if choice == 2:
        return json.dumps({"audio": "x" * rng.randrange(100)}).encode()
    if choice == 3:
        return b"\0" * rng.randrange(1, 5000)
    if choice == 4:
        return b"RIFF" + os.urandom(rng.randrange(0, 64))
    return b"fLaC" + os.urandom(rng.randrange(0, 200))


def generate_audio(folder: str | Path, n: int = 2000, seed: int = 21) -> list[tuple[str, str, str]]:
    """Write ``n`` audio cases under ``folder``; returns ``(case_id, family, path)`` per case."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    seeds = _seed_files(folder / "seeds")
    fixed: list[tuple[str, Path]] = [("control", folder / "seeds" / f"seed{s}") for s in seeds]
    (folder / "bombs").mkdir(exist_ok=True)
    fixed += _bombs(folder / "bombs")
    fixed += _specials(folder)
    pl = folder / "playlists"
    pl.mkdir(exist_ok=True)
    hls = "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:1,\n../seeds/seed.mp3\n#EXT-X-ENDLIST\n"
    for name, text in (("list.m3u8", hls), ("disguised.mp3", hls), ("disguised.wav", hls),
                       ("concat.txt", "ffconcat version 1.0\nfile ../seeds/seed.wav\n"),
                       ("concat.flac", "ffconcat version 1.0\nfile ../seeds/seed.wav\n"),
                       ("remote.m3u8", "#EXTM3U\n#EXTINF:1,\nhttp://127.0.0.1:9/x.mp3\n")):
        (pl / name).write_text(text)
        fixed.append(("playlist", pl / name))
    (folder / "empty.wav").write_bytes(b"")
    fixed.append(("empty", folder / "empty.wav"))
    (folder / "zero-channels.wav").write_bytes(_wav_header(16000, 0, 16, 3200) + b"\0" * 3200)
    fixed.append(("zero-channels", folder / "zero-channels.wav"))
    cases = [(f"f{i:04d}", family, str(path)) for i, (family, path) in enumerate(fixed)]
    gen = folder / "generated"
    gen.mkdir(exist_ok=True)
    suffixes = list(seeds)
    all_suffixes = sorted({*suffixes, ".wav", ".flac", ".mp3", ".ogg", ".m4a", ".opus", ".webm", ".aiff", ".bin"})
    while len(cases) < n:
        i = len(cases)
        r = rng.random()
        if r < 0.62:
            suffix = rng.choice(suffixes)
            kind = rng.choice(("truncate", "bitflip", "header-bytes", "splice"))
            data, family = _mutate(rng, seeds[suffix], kind), f"{kind}{suffix}"
            if rng.random() < 0.1:  # the right bytes under the wrong suffix
                suffix = rng.choice(all_suffixes)
        elif r < 0.80:
            data, family, suffix = _lying_wav(rng), "lying-header.wav", ".wav"
        elif r < 0.95:
            data, family, suffix = _junk(rng), "non-audio", rng.choice(all_suffixes)
        else:
            data, family, suffix = seeds[rng.choice(suffixes)], "control-wrong-suffix", rng.choice(all_suffixes)
        path = gen / f"c{i:05d}{suffix}"
        path.write_bytes(data)
        cases.append((f"c{i:05d}", family, str(path)))
    return cases[:n]


def generate_manifests(folder: str | Path, audio: str) -> list[tuple[str, str]]:
    """Write hostile manifests under ``folder`` (``audio``: one valid clip they point at); returns
    ``(case_id, path)`` per manifest."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    good = json.dumps(audio)[1:-1]
    texts: dict[str, str | bytes] = {
        "csv-huge-cell.csv": "id,audio,text\na,%s,%s\n" % (audio, "x" * 140_000),
        "csv-stray-quote.csv": "id,audio,text\n" + "".join(
            f'u{i},{audio},{"a stray quote" if i != 2 else chr(34) + "opens here"}\n' for i in range(2000)),
        "csv-unterminated-at-eof.csv": f'id,audio,text\na,{audio},"never closed\nb,{audio},x\n',
        "csv-no-audio-column.csv": "id,text\na,b\n",
        "csv-empty.csv": "",
        "csv-nul.csv": f"id,audio,text\na\0b,{audio},x\n",
        "csv-bom.csv": f"\ufeffid,audio,text\na,{audio},hello\n",
        "csv-offset-400-digits.csv": f"id,audio,text,offset\na,{audio},x,{'9' * 400}\n",
        "csv-nan-inf.csv": f"id,audio,text,offset,duration\na,{audio},x,nan,inf\nb,{audio},x,-1,0\n",
        "csv-columns.csv": f"id,audio,text\na,{audio}\nb,{audio},x,y,z\n",
        "jsonl-nested.jsonl": '{"audio_filepath": "%s", "x": %s}\n' % (good, "[" * 5000 + "]" * 5000),
        "jsonl-nested-100.jsonl": '{"audio_filepath": "%s", "x": %s}\n' % (good, "[" * 100 + "]" * 100),
        "jsonl-surrogate-text.jsonl": '{"audio_filepath": "%s", "text": "\\ud800"}\n' % good,
        "jsonl-surrogate-id.jsonl": '{"audio_filepath": "%s", "id": "\\udfff"}\n' % good,
        "jsonl-surrogate-tag.jsonl": '{"audio_filepath": "%s", "\\ud83d": "x"}\n' % good,
        "jsonl-offset-400-digits.jsonl": '{"audio_filepath": "%s", "offset": %s}\n' % (good, "9" * 400),
        "jsonl-offset-5000-digits.jsonl": '{"audio_filepath": "%s", "offset": %s}\n' % (good, "9" * 5000),
        "jsonl-offset-1e400.jsonl": '{"audio_filepath": "%s", "offset": 1e400}\n' % good,
        "jsonl-nul-path.jsonl": '{"audio_filepath": "%s\\u0000x", "text": "x"}\n' % good,
        "jsonl-not-object.jsonl": "[1, 2, 3]\n\"text\"\nnull\n",
        "jsonl-garbage.jsonl": bytes(range(256)) * 8,
        "jsonl-bool-duration.jsonl": '{"audio_filepath": "%s", "duration": true}\n' % good,
        "vox-offset-400-digits.jsonl": '{"id": "a", "audio": "%s", "offset": %s}\n' % (good, "9" * 400),
        "vox-tags-not-object.jsonl": '{"id": "a", "audio": "%s", "tags": [1]}\n' % good,
        "vox-schema-999.jsonl": '{"id": "a", "audio": "%s", "schema": 999}\n' % good,
        "vox-duplicate-ids.jsonl": ('{"id": "a", "audio": "%s", "text": "x"}\n' % good) * 3,
        "ids-dotdot.jsonl": '{"id": "../../../../x/ESCAPED", "audio": "%s", "text": "hello"}\n' % good,
        "ids-slash.jsonl": '{"id": "/etc/passwd", "audio": "%s", "text": "hello"}\n' % good,
        "ids-nul.jsonl": '{"id": "a\\u0000b", "audio": "%s", "text": "hello"}\n' % good,
        "ids-long.jsonl": '{"id": "%s", "audio": "%s", "text": "hello"}\n' % ("x" * 100_000, good),
        "ids-unicode.jsonl": '{"id": "\\u202e\\u00e9\\ud83d\\ude00 \\u0645", "audio": "%s", "text": "hello"}\n' % good,
        "ids-empty.jsonl": '{"id": "  ", "audio": "%s", "text": "hello"}\n' % good,
        "url-not-allowed.jsonl": '{"id": "u", "audio": "http://127.0.0.1:9/a.wav", "text": "hello"}\n',
        "url-file-scheme.jsonl": '{"id": "u", "audio": "file:///dev/zero", "text": "hello"}\n',
        "path-dev-zero.jsonl": '{"id": "z", "audio": "/dev/zero", "text": "hello"}\n',
        "text-20mb.jsonl": '{"id": "t", "audio": "%s", "text": "%s"}\n' % (good, "word " * 4_000_000),
        "unknown-suffix.txt": "id,audio\n",
        "invalid-utf8.csv": b"id,audio,text\na," + audio.encode() + b",caf\xe9\n",
    }
    out = []
    for name, content in texts.items():
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8", errors="surrogatepass")
        out.append((name, str(path)))
    kaldi = folder / "kaldi-piped"
    kaldi.mkdir(exist_ok=True)
    (kaldi / "wav.scp").write_text("a sox x.wav -t wav - |\nb |cat /etc/passwd\n")
    out.append(("kaldi-piped", str(kaldi)))
    seg = folder / "kaldi-segments-inf"
    seg.mkdir(exist_ok=True)
    (seg / "wav.scp").write_text(f"r {audio}\n")
    (seg / "segments").write_text(f"u r {'9' * 400} -1\nv r 0 {'9' * 400}\n")
    (seg / "text").write_text("u hello\nv hello\n")
    out.append(("kaldi-segments-inf", str(seg)))
    big = folder / "million-lines.jsonl"
    if not big.exists():
        with big.open("w") as fh:
            line = '{"id": "u%d", "audio_filepath": "' + good.replace("%", "%%") + '", "text": "hello world"}\n'
            fh.writelines(line % i for i in range(1_000_000))
    out.append(("million-lines(--limit 3)", str(big)))
    return out
