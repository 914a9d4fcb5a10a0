"""--target-image without a Docker engine: which options go together, what the
run's reproduction says, the file key, the networking chosen per engine, which
leftover containers count as a dead run's, and the error when no daemon answers."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.config import resolve
from harness.errors import UsageError
from harness.provisioning import container
from harness.provisioning.container import (
    LABEL_BOOT,
    LABEL_HOST,
    LABEL_OWNER,
    DockerUnavailable,
    connect,
    for_publish,
    networking_for,
    owner_gone,
    owner_labels,
)
from harness.target.start import TargetSpec


def test_an_image_target_carries_its_schema_env_and_pull(tmp_path: Path) -> None:
    schema = tmp_path / "schema.sql"
    schema.write_text("select 1;")
    spec = TargetSpec.from_options(
        image="shop/api:1.4", pull=True, schema=[schema], env=["TOKENPROOF_DEFECT=x"]
    )
    assert (spec.kind, spec.image, spec.pull, spec.schema) == (
        "image",
        "shop/api:1.4",
        True,
        (schema,),
    )
    assert spec.extra_env == {"TOKENPROOF_DEFECT": "x"}
    assert spec.label == "image: shop/api:1.4"
    # Reproduction asks for the same image the same way: pulled, as the run was
    # (a teammate's machine may not have it yet).
    assert spec.cli_args() == [
        "--target-image",
        "shop/api:1.4",
        "--pull",
        "--target-env",
        "TOKENPROOF_DEFECT=x",
        "--target-schema",
        str(schema),
    ]
    unpulled = TargetSpec.from_options(image="shop/api:1.4")
    assert unpulled.cli_args() == ["--target-image", "shop/api:1.4"]


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"image": "a", "command": "node s.js"}, "one of --target-command, --target-image"),
        ({"image": "a", "url": "http://127.0.0.1:1"}, "one of --target-command, --target-image"),
        ({"image": "a", "cwd": "/srv"}, "--target-cwd goes with --target-command"),
        ({"pull": True}, "--pull goes with --target-image"),
        ({"pull": True, "command": "node s.js"}, "--pull goes with --target-image"),
    ],
)
def test_options_that_do_not_go_with_an_image_are_refused(
    options: dict[str, object], says: str
) -> None:
    with pytest.raises(UsageError, match=says):
        TargetSpec.from_options(**options)  # type: ignore[arg-type]


def test_the_config_file_names_an_image(tmp_path: Path) -> None:
    (tmp_path / "tokenproof.toml").write_text('target-image = "shop/api:1.4"\n')
    resolved = resolve(tmp_path, {})
    assert resolved.values.get("target_image") == "shop/api:1.4"


def test_the_cli_refuses_an_image_and_a_command_together() -> None:
    result = CliRunner().invoke(
        main, ["verify", "--target-image", "a", "--target-command", "node s.js"]
    )
    assert result.exit_code == 2
    assert "one of --target-command, --target-image" in result.output


def test_a_linux_engine_uses_host_networking_docker_desktop_publishes() -> None:
    assert networking_for({"OperatingSystem": "Debian GNU/Linux 12", "OSType": "linux"}) == "host"
    assert networking_for({"OperatingSystem": "Docker Desktop", "OSType": "linux"}) == "publish"
    assert networking_for({"OperatingSystem": "Windows Server", "OSType": "windows"}) == "publish"


def test_published_containers_reach_loopback_through_host_docker_internal() -> None:
    assert (
        for_publish("postgresql://u:p@127.0.0.1:5433/db?sslmode=disable")
        == "postgresql://u:p@host.docker.internal:5433/db?sslmode=disable"
    )
    assert for_publish("http://localhost:12111") == "http://host.docker.internal:12111"
    assert for_publish("postgresql://u@db.internal:5432/x") == "postgresql://u@db.internal:5432/x"


def test_a_run_whose_process_is_gone_is_dead_a_live_one_or_another_host_is_not() -> None:
    mine = owner_labels("abc")
    assert not owner_gone(mine)  # this very process
    pid, _, started = mine[LABEL_OWNER].partition(":")
    assert pid == str(os.getpid())
    # The same pid with another start time: the pid was reused, the owner is gone.
    assert owner_gone({**mine, LABEL_OWNER: f"{pid}:{int(started) - 1}"})
    assert owner_gone({**mine, LABEL_OWNER: "999999999:1"})
    assert owner_gone({**mine, LABEL_BOOT: "an-earlier-boot"})
    assert owner_gone({**mine, LABEL_OWNER: "garbled"})
    # Another machine sharing the daemon: never ours to judge.
    other = {**mine, LABEL_HOST: socket.gethostname() + "-elsewhere", LABEL_OWNER: "999999999:1"}
    assert not owner_gone(other)


def test_no_daemon_is_a_setup_error_that_says_how_to_start_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    with pytest.raises(DockerUnavailable) as caught:
        connect()
    message = str(caught.value)
    assert f"unix://{tmp_path}/no-docker.sock" in message
    assert "systemctl start docker" in message and "DOCKER_HOST" in message


@pytest.mark.parametrize("command", ["verify", "load"])
def test_the_cli_exits_2_without_a_daemon_before_starting_postgres(
    command: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    started: list[object] = []
    monkeypatch.setattr("harness.target.start.make_cluster", lambda *a: started.append(a))
    result = CliRunner().invoke(main, [command, "--target-image", "shop/api:1.4"])
    assert result.exit_code == 2, result.output
    assert "no Docker daemon answers" in result.output
    assert started == []
    assert container.LABEL_RUN == "tokenproof.run"
