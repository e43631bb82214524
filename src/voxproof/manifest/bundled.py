"""The dataset shipped inside the package: 50 LibriSpeech test-other utterances (5 speakers x 10), FLAC,
with ``transcripts.tsv`` and ``utt_info.tsv`` (speaker, gender, duration). Licence: CC BY 4.0, see the
ATTRIBUTION file beside the data. Read it with ``read_manifest(bundled_dataset_path())``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from voxproof.errors import DataError

BUNDLED_DATASET = "librispeech-test-other-mini"


def bundled_dataset_path() -> Path:
    """The folder of the bundled dataset (a folder manifest: ``audio/``, ``transcripts.tsv``, ``utt_info.tsv``)."""
    folder = resources.files("voxproof") / "data" / BUNDLED_DATASET
    path = Path(str(folder))
    if not (path / "transcripts.tsv").is_file():
        raise DataError(
            f"the bundled dataset is missing from the installed package (looked in {path}); reinstall voxproof"
        )
    return path
