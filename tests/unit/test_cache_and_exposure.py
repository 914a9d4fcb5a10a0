"""Where tokenproof writes what outlives a run, and what a load run exposes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness import cache
from harness.load.process import exposure_warnings, is_loopback, master_args
from harness.load.report import MASTER_PORT, LoadSettings
from harness.load.run import default_report_dir

pytestmark = pytest.mark.unit


def test_cache_follows_the_override_then_xdg(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(cache.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_dir() == tmp_path / "xdg" / "tokenproof"
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "mine"))
    assert cache.cache_dir() == tmp_path / "mine"
    assert cache.shared_cache_dir() == tmp_path / "mine"


def test_root_copies_binaries_where_the_server_user_can_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(cache.CACHE_ENV, raising=False)
    expected = Path("/var/cache/tokenproof") if os.geteuid() == 0 else cache.cache_dir()
    assert cache.shared_cache_dir() == expected


def test_slugs_are_safe_and_distinct() -> None:
    names = ["reference", "reference:lost-update", "node server.js", "node  server.js", "../x"]
    slugs = [cache.slug(n) for n in names]
    assert len(set(slugs)) == len(slugs)
    assert all("/" not in s and " " not in s and not s.startswith(".") for s in slugs)


def test_load_reports_default_to_the_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path))
    assert default_report_dir("reference").is_relative_to(tmp_path / "load")


def test_hypothesis_storage_goes_to_the_cache_unless_the_user_chose(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from hypothesis import configuration

    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path))
    monkeypatch.delenv(cache.HYPOTHESIS_ENV, raising=False)
    calls: list[object] = []
    monkeypatch.setattr(configuration, "set_hypothesis_home_dir", calls.append)
    cache.keep_hypothesis_in_cache()
    assert calls == [tmp_path / "hypothesis"]
    monkeypatch.setenv(cache.HYPOTHESIS_ENV, str(tmp_path / "theirs"))
    cache.keep_hypothesis_in_cache()
    assert len(calls) == 1


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("*", False),
        ("", False),
        ("::", False),
        ("192.168.1.5", False),
        ("example.org", False),
    ],
)
def test_only_provable_loopback_counts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_defaults_expose_nothing() -> None:
    settings = LoadSettings(headless=False, processes=4)
    assert settings.web_host == "127.0.0.1" and settings.master_bind_host == "127.0.0.1"
    assert exposure_warnings(settings) == []
    args = master_args(settings)
    assert args[args.index("--master-bind-host") + 1] == "127.0.0.1"
    assert args[args.index("--master-bind-port") + 1] == args[args.index("--master-port") + 1]


def test_a_web_ui_beyond_loopback_is_warned_about() -> None:
    (warning,) = exposure_warnings(LoadSettings(headless=False, web_host="0.0.0.0"))
    assert "0.0.0.0:8089" in warning and "--web-host" in warning
    assert exposure_warnings(LoadSettings(headless=True, web_host="0.0.0.0")) == []


def test_a_master_beyond_loopback_is_warned_about_and_findable() -> None:
    settings = LoadSettings(processes=2, master_bind_host="*")
    (warning,) = exposure_warnings(settings)
    assert "--master-bind-host" in warning
    args = master_args(settings)
    assert args[args.index("--master-bind-port") + 1] == str(MASTER_PORT)
    assert args[args.index("--master-host") + 1] == "127.0.0.1"  # local workers
    specific = master_args(LoadSettings(processes=2, master_bind_host="10.1.2.3"))
    assert specific[specific.index("--master-host") + 1] == "10.1.2.3"


def test_the_default_report_folder_starts_empty(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from harness.load.run import fresh_default_report_dir

    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path))
    first = fresh_default_report_dir("reference")
    (first / "load.json").write_text("{}")  # an earlier run's verdict
    assert fresh_default_report_dir("reference") == first
    assert list(first.iterdir()) == []
