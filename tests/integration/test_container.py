"""The service container on a real Docker engine, supervised like a process: its
output in service.log, an exit seen with its code and log tail, kill and start
again, removal, the errors that name the fix, and dead runs' leftovers removed.

The image is a small Node server (tests/images.py: this machine's `node` and
its libraries, `docker import`ed). Needs a Docker daemon: skipped without one,
failed under CI=true.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
import httpx
import pytest

from harness.provisioning.container import (
    LABEL_BOOT,
    LABEL_OWNER,
    LABEL_RUN,
    ContainerStartFailed,
    ImageNotFound,
    ServiceContainer,
    check_image,
    connect,
    owner_labels,
    remove_dead_runs,
)
from harness.provisioning.service import ServiceEnv
from harness.target.start import Target
from harness.waiting import wait_until
from tests.images import containers_of, need_docker, probe_image

pytestmark = pytest.mark.needs_docker

ENV = ServiceEnv(
    database_url="postgresql://u:p@127.0.0.1:1/none",
    jwt_secret="s",
    stripe_api_base="http://127.0.0.1:2",
    stripe_webhook_secret="whsec_x",
)


@pytest.fixture(scope="session")
def probe(request: pytest.FixtureRequest) -> str:
    need_docker()
    cache = request.config.cache
    assert cache is not None
    return probe_image(Path(cache.mkdir("images")))


@pytest.fixture
def started(probe: str, tmp_path: Path) -> Iterator[ServiceContainer]:
    service = ServiceContainer(probe, ENV, log_path=tmp_path / "service.log")
    try:
        yield service.start(30)
    finally:
        service.cleanup()


def test_the_container_answers_on_loopback_and_its_output_reaches_service_log(
    started: ServiceContainer, tmp_path: Path
) -> None:
    assert httpx.get(f"{started.url}/health").text == "ok"
    assert started.alive() and started.exit_code() is None
    assert started.networking == "host"
    log = tmp_path / "service.log"
    wait_until(lambda: "listening" in log.read_text(), within=10, what="the log copied")
    # The contract's environment reached the service.
    assert f"listening on {started.port} DATABASE_URL={ENV.database_url}" in log.read_text()
    [listed] = list(containers_of(started.run_id))
    assert listed["Names"] == started.name


def test_an_exit_is_seen_with_its_code_and_log_tail_and_a_restart_brings_it_back(
    started: ServiceContainer,
) -> None:
    httpx.get(f"{started.url}/exit", params={"code": 3})
    wait_until(lambda: not started.alive(), within=10, what="the container ended")
    assert started.exit_code() == 3
    assert "probe: exiting with 3" in started.log_tail(5)
    target = Target("t", started.url, "", "", "", None, "", process=started)  # type: ignore[arg-type]
    crash = target.crash_report()
    assert crash is not None and crash.how == "exit code 3"
    assert "exiting with 3" in crash.log_tail
    target.ensure_running()  # what the runner does before the next scenario
    assert started.alive() and started.exit_code() is None
    assert httpx.get(f"{started.url}/health").status_code == 200


def test_kill_is_not_a_crash_and_start_serves_again(started: ServiceContainer) -> None:
    started.kill()  # the faults suite's SIGKILL
    assert not started.alive() and started.exit_code() is None
    started.start(30)
    assert httpx.get(f"{started.url}/health").status_code == 200


def test_cleanup_removes_the_container(probe: str) -> None:
    service = ServiceContainer(probe, ENV).start(30)
    assert list(containers_of(service.run_id))
    service.cleanup()
    assert list(containers_of(service.run_id)) == []
    service.cleanup()  # twice is fine


def test_a_container_that_exits_before_health_fails_with_its_code_and_output(
    probe: str,
) -> None:
    service = ServiceContainer(probe, ENV, extra_env={"PROBE_EXIT_AT_START": "4"})
    try:
        with pytest.raises(ContainerStartFailed) as caught:
            service.start(30)
    finally:
        service.cleanup()
    assert "exited with code 4 before" in str(caught.value)
    assert "probe: exiting at start as asked" in caught.value.log_tail
    assert list(containers_of(service.run_id)) == []


def test_an_image_not_in_the_engine_is_never_pulled_unasked() -> None:
    need_docker()
    with pytest.raises(ImageNotFound, match="add --pull"):
        check_image("tokenproof-test/not-built-anywhere:0", pull=False)


def test_leftovers_of_dead_runs_are_removed_live_runs_kept(probe: str) -> None:
    client = connect()
    made = []
    try:
        alive = owner_labels("live-run")
        dead = {**owner_labels("dead-run"), LABEL_BOOT: "an-earlier-boot"}
        killed = {**owner_labels("killed-run"), LABEL_OWNER: "999999999:1"}
        for labels in (alive, dead, killed):
            made.append(client.containers.create(probe, labels=labels, network_mode="none").name)
        removed = remove_dead_runs(client)
        assert made[0] not in removed
        # (A run starting on another test worker meanwhile may have removed the
        # dead ones first: what counts is what is left.)
        remaining = {c.name for c in client.containers.list(all=True, filters={"label": LABEL_RUN})}
        assert made[0] in remaining and not set(made[1:]) & remaining
    finally:
        for name in made:
            with contextlib.suppress(docker.errors.NotFound):
                client.containers.get(name).remove(force=True)
        client.close()


def test_the_docker_cli_sees_the_run_label(started: ServiceContainer) -> None:
    out = subprocess.run(
        [
            "docker",
            "inspect",
            "--format",
            '{{index .Config.Labels "tokenproof.run"}}',
            started.name,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == started.run_id
