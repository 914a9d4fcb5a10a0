"""`tokenproof verify --target-image` end to end on a real Docker engine, with the
Node foreign service (`foreign/node-express`, installed by `npm ci`) imported
as an image: the correct build passes, a defect build fails with exit 1, and no
container outlives its run: not on success, not on Ctrl-C, and after a SIGKILL
not once the next run has started.

Kept small for CI: one clean verify (every suite but `model`, whose HTTP paths
the others cover; the container's own part, supervision and the faults suite's
kill-and-restart, is in it), one defect with one suite; and the Python foreign
service (`foreign/flask-psycopg`: this interpreter, its virtualenv, gunicorn)
as an image, clean and with a defect, on the race suite. Needs a Docker
daemon: skipped without one, failed under CI=true.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.provisioning.container import LABEL_OWNER, LABEL_RUN, connect
from harness.run.scenario import SUITE_MODULES
from harness.waiting import wait_until
from tests.foreign import Foreign, prepare
from tests.images import need_docker, node_service_image, python_service_image
from tests.needs import deliverable_sigint

pytestmark = pytest.mark.needs_docker

CLI = [sys.executable, "-m", "harness"]
ALL_BUT_MODEL = ",".join(s for s in SUITE_MODULES if s != "model")
DEFECT, DEFECT_SUITE = "lost-update", "race"


def _service_image(
    request: pytest.FixtureRequest, name: str, build: Callable[[Foreign, Path], str]
) -> str:
    need_docker()
    cache = request.config.cache
    assert cache is not None
    # The cache test_foreign uses: installed once (tests.foreign locks it).
    service = prepare(name, Path(cache.mkdir("foreign-services")))
    return build(service, Path(cache.mkdir("images")))


@pytest.fixture(scope="session")
def node_image(request: pytest.FixtureRequest) -> str:
    return _service_image(request, "node-express", node_service_image)


@pytest.fixture(scope="session")
def python_image(request: pytest.FixtureRequest) -> str:
    return _service_image(request, "flask-psycopg", python_service_image)


def _containers_of(pid: int) -> list[Any]:
    """Containers (any state) whose owner label names the process `pid`."""
    client = connect()
    try:
        return [
            c
            for c in client.containers.list(all=True, filters={"label": LABEL_RUN})
            if c.labels.get(LABEL_OWNER, "").startswith(f"{pid}:")
        ]
    finally:
        client.close()


def _verify(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "verify", *args], capture_output=True, text=True, timeout=900, check=False
    )


@pytest.mark.needs_node  # the image carries this machine's node
def test_the_correct_image_passes_and_leaves_no_container(node_image: str, tmp_path: Path) -> None:
    report = tmp_path / "report"
    proc = subprocess.Popen(
        [
            *CLI,
            "verify",
            "--target-image",
            node_image,
            "--suite",
            ALL_BUT_MODEL,
            "--report",
            str(report),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _, stderr = proc.communicate(timeout=900)
    assert proc.returncode == 0, stderr[-4000:]
    data = json.loads((report / "report.json").read_text())
    assert data["verdict"] == "pass" and data["target"] == f"image: {node_image}"
    killed = [
        s
        for s in data["scenarios"]
        if (s["suite"], s["name"]) == ("faults", "service-killed-and-restarted")
    ]
    assert [s["status"] for s in killed] == ["pass"]  # the container was killed and restarted
    log = (report / "service.log").read_text()
    assert log.count('"msg":"listening"') >= 2  # its output, across the restart
    assert _containers_of(proc.pid) == []


@pytest.mark.needs_node  # the image carries this machine's node
def test_a_defect_build_fails_with_exit_1(node_image: str, tmp_path: Path) -> None:
    result = _verify(
        "--target-image",
        node_image,
        "--target-env",
        f"TOKENPROOF_DEFECT={DEFECT}",
        "--suite",
        DEFECT_SUITE,
        "--report",
        str(tmp_path),
    )
    assert result.returncode == 1, result.stderr[-4000:]
    data = json.loads((tmp_path / "report.json").read_text())
    reported = {v["invariant"] for s in data["scenarios"] for v in s["violations"]}
    expected = json.loads(
        (Path(__file__).parents[2] / "foreign/node-express/defects.json").read_text()
    )[DEFECT]["expect"]
    assert reported & set(expected), reported
    assert "--target-image" in data["scenarios"][0]["reproduce"]


def _start_and_wait_for_its_container(node_image: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [*CLI, "verify", "--target-image", node_image, "--suite", "race"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=deliverable_sigint,
    )

    def running() -> bool:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        return any(c.status == "running" for c in _containers_of(proc.pid))

    wait_until(running, within=120, what="the run's container running", interval=0.2)
    return proc


@pytest.mark.needs_node  # the image carries this machine's node
def test_ctrl_c_removes_the_container(node_image: str) -> None:
    proc = _start_and_wait_for_its_container(node_image)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-3000:]
    assert _containers_of(proc.pid) == []


@pytest.mark.needs_node  # the image carries this machine's node
def test_after_a_sigkill_the_next_run_removes_the_container(node_image: str) -> None:
    proc = _start_and_wait_for_its_container(node_image)
    proc.kill()  # no cleanup of ours runs
    proc.communicate(timeout=60)
    # The next run removes dead runs' containers before anything else, even
    # before it finds out that its own image is missing.
    result = _verify("--target-image", "tokenproof-test/not-built-anywhere:0")
    assert result.returncode == 2
    assert "add --pull" in result.stderr
    assert _containers_of(proc.pid) == []


def test_the_python_service_image_passes_and_its_defect_fails(python_image: str) -> None:
    """A second stack through the same path (gunicorn, psycopg): one suite each way."""
    clean = _verify("--target-image", python_image, "--suite", "race")
    assert clean.returncode == 0, clean.stderr[-4000:]
    defect = _verify(
        "--target-image",
        python_image,
        "--target-env",
        "TOKENPROOF_DEFECT=read-modify-write",
        "--suite",
        "race",
    )
    assert defect.returncode == 1, defect.stderr[-4000:]
    assert "ledger-explains-balance" in defect.stderr
