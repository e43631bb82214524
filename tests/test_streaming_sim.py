"""Streaming simulation: the virtual live clock by hand, PocketSphinx streaming real recordings at
100/250/500 ms chunks, and Whisper's chunked re-decoding mode."""

from __future__ import annotations

import pytest

from voxproof.errors import UsageError
from voxproof.run.streaming import (
    ChunkedRedecoder,
    Partial,
    StreamingTranscriber,
    simulate,
    stream_clip,
    streaming_mode,
    streaming_to_dict,
    summarize_streams,
)


def test_virtual_clock_by_hand():
    # 3 chunks of 0.5 s; compute 0.1, 0.7 (falls behind), 0.2; final pass 0.3
    parts = [
        Partial(0.5, "", 0.1),
        Partial(1.0, "hello", 0.8),
        Partial(1.5, "hello world", 1.0),
        Partial(1.5, "hello world", 1.3, final=True),
    ]
    r = simulate(parts, 0.5, "u")
    # chunk1: start .5 finish .6; chunk2: start 1.0 finish 1.7; chunk3: start max(1.5,1.7)=1.7 finish 1.9
    # final: start max(1.5, 1.9) = 1.9, finish 2.2 -> delay 0.7
    assert r.first_partial_seconds == pytest.approx(1.7)
    assert r.first_partial_audio == pytest.approx(1.0)
    assert r.final_delay_seconds == pytest.approx(0.7)
    assert r.keeps_up  # chunk 3 started 0.2 s late, less than one chunk
    assert r.max_chunk_compute == pytest.approx(0.7) and r.partials == 3
    late = simulate([Partial(0.1, "", 1.0), Partial(0.2, "a", 1.1), Partial(0.2, "a", 1.2, final=True)], 0.1)
    assert not late.keeps_up
    with pytest.raises(UsageError, match="final"):
        simulate([Partial(0.1, "", 0.1)], 0.1)


@pytest.fixture(scope="module")
def clip(shared_data):
    from voxproof.audio.io import load_audio

    return load_audio(str(shared_data / "librispeech-test-other-mini" / "audio" / "1688-142285-0002.flac"),
                      sample_rate=16000)


@pytest.fixture(scope="module")
def sphinx():
    from voxproof.backends.registry import load_backend

    return load_backend("sphinx", kind="asr")


@pytest.mark.parametrize("chunk", [0.1, 0.25, 0.5])
def test_sphinx_streams_real_speech(sphinx, clip, chunk):
    assert isinstance(sphinx, StreamingTranscriber) and streaming_mode(sphinx) == "native partial hypotheses"
    r = stream_clip(sphinx, clip, chunk, "1688-142285-0002")
    assert r.audio_seconds == pytest.approx(clip.duration)
    assert r.partials == -(-round(clip.duration * 16000) // round(chunk * 16000))
    assert r.first_partial_audio is not None and 0 < r.first_partial_audio <= clip.duration
    assert r.first_partial_seconds >= r.first_partial_audio  # nobody sees words before they are said
    assert r.final_delay_seconds >= 0 and r.final_text
    s = summarize_streams([r], "sphinx", streaming_mode(sphinx))
    assert s.n == 1 and s.chunk_seconds == chunk
    assert streaming_to_dict([s])["by_chunk"][0]["final_delay"]["p50"] == pytest.approx(r.final_delay_seconds)


@pytest.mark.slow
def test_whisper_chunked_redecoding_ends_with_the_full_decode(clip):
    from voxproof.backends.registry import load_backend

    whisper = load_backend("whisper", kind="asr", pairs=["cpu_threads=2"])
    assert streaming_mode(whisper) == "chunked re-decoding"
    parts = ChunkedRedecoder(whisper, min_seconds=1.0).transcribe_stream(clip, 1.0)
    assert parts[-1].final and parts[-1].text == whisper.transcribe(clip).text
    assert [p.audio_seconds for p in parts[:-1]] == pytest.approx([1.0 * i for i in range(1, len(parts))])
    walls = [p.wall_seconds for p in parts]
    assert walls == sorted(walls)
    r = simulate(parts, 1.0)
    assert r.first_partial_audio is not None and r.final_delay_seconds > 0
