"""Shared fixtures: the real test recordings, from the repository alone.

``shared_data`` is one folder laid out like the project's full test-recording folder
(``librispeech-test-other-mini/``, ``librispeech-test-clean-1/``, ``cmu-arctic/``, ``ami-excerpt/``,
``fsdd-digits/``, ``rir/``): the bundled dataset from the package plus the small copies in
``tests/data`` (see its README for sources and licences). A fresh clone needs nothing else.

Set ``VOXPROOF_SHARED_DATA`` to a folder with the full set to use it instead. A test that needs a
recording the repository does not ship skips with a reason naming the file and that variable
(``need_shared_files``, or any error other than a failed assertion that names a missing path inside
the in-repository folder).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from voxproof.manifest.bundled import bundled_dataset_path

REPO = Path(__file__).resolve().parents[1]
TEST_DATA = REPO / "tests" / "data"
SHARED_ENV = "VOXPROOF_SHARED_DATA"
_IN_REPO_FOLDERS = ("librispeech-test-clean-1", "cmu-arctic", "ami-excerpt", "fsdd-digits", "rir")
# shipped whole: a missing file in these is a test bug, never "data not shipped"
_COMPLETE_FOLDERS = {"librispeech-test-other-mini", "librispeech-test-clean-1", "cmu-arctic", "ami-excerpt"}


def _in_repo_root(base: Path) -> Path:
    """A folder of symlinks: the bundled dataset plus every folder of ``tests/data``."""
    root = base / "shared-data"
    root.mkdir(parents=True, exist_ok=True)
    links = {"librispeech-test-other-mini": bundled_dataset_path()}
    links.update({name: TEST_DATA / name for name in _IN_REPO_FOLDERS})
    for name, target in links.items():
        link = root / name
        if not link.exists():
            link.symlink_to(target, target_is_directory=True)
    return root


_ROOT: Path | None = None


def _skip_reason(missing: str) -> str:
    return (f"needs the test recording {missing}, which the repository does not ship; "
            f"set {SHARED_ENV} to a folder with the full test recordings (see tests/data/README.md)")


@pytest.fixture(scope="session")
def shared_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    global _ROOT
    env = os.environ.get(SHARED_ENV)
    if env:
        path = Path(env)
        if not path.is_dir():
            pytest.fail(f"{SHARED_ENV}={env} is not a folder; unset it to use the recordings in the repository")
        return path
    _ROOT = _in_repo_root(tmp_path_factory.getbasetemp())
    return _ROOT


def need_shared_files(root: Path, *relative: str) -> None:
    """Skip the calling test unless every ``relative`` path exists under ``root`` (the shared_data folder)."""
    for rel in relative:
        if not (root / rel).exists():
            pytest.skip(_skip_reason(rel))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """A missing file inside the in-repository recording folder is a skip (data not shipped), not an error."""
    outcome = yield
    report = outcome.get_result()
    if _ROOT is None or call.excinfo is None or not report.failed:
        return
    exc = call.excinfo.value
    if isinstance(exc, AssertionError):
        return
    text = f"{getattr(exc, 'filename', None) or ''} {exc}"
    found = (m.rstrip(".,;)]") for m in re.findall(re.escape(str(_ROOT)) + r"/[^\s'\":]+", text))
    missing = [rel for rel in (Path(m).relative_to(_ROOT) for m in found if not Path(m).exists())
               if rel.parts and rel.parts[0] not in _COMPLETE_FOLDERS]
    if not missing:
        return
    rel = missing[0]
    report.outcome = "skipped"
    report.longrepr = (str(item.path), item.location[1] or 0, f"Skipped: {_skip_reason(str(rel))}")


SHORT_CLIPS = ("1688-142285-0002", "367-130732-0006")  # 2.8 s and 2.4 s bundled LibriSpeech clips


@pytest.fixture(scope="session")
def short_floor_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A floor folder (transcripts.tsv + audio/) of two short bundled recordings (no ../shared)."""
    import shutil

    from voxproof.manifest import bundled_dataset_path

    src = bundled_dataset_path()
    folder = tmp_path_factory.mktemp("short-floor")
    texts = dict(line.split("\t", 1) for line in (src / "transcripts.tsv").read_text().splitlines() if line)
    (folder / "audio").mkdir()
    for uid in SHORT_CLIPS:
        shutil.copy(src / "audio" / f"{uid}.flac", folder / "audio" / f"{uid}.flac")
    (folder / "transcripts.tsv").write_text("".join(f"{u}\t{texts[u]}\n" for u in SHORT_CLIPS))
    return folder


# The longest file first: the README walkthrough is one chain of commands (several minutes) that cannot be
# split, so with test files spread over processes (scripts/test.sh, pytest-xdist --dist loadfile) it should
# start at once rather than last. After any reordering (pytest-randomly), so a random order stays random.
_FIRST = ("test_readme_commands.py",)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.path.name not in _FIRST)  # stable: the rest keep their order
