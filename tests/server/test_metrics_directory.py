"""`tokensmith serve --workers N` gives its processes one metrics directory (server/metrics.py); the end-to-end check,
a scrape of either process counting both, is in tests/test_cli.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tokensmith.server.metrics import MULTIPROCESS_DIR_ENV, ServerMetrics, shared_metrics_directory


def test_a_directory_of_its_own_is_named_for_the_processes_and_removed_afterwards(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(MULTIPROCESS_DIR_ENV, raising=False)
    with shared_metrics_directory() as directory:
        assert os.environ[MULTIPROCESS_DIR_ENV] == directory
        assert Path(directory).is_dir()
        (Path(directory) / "counter_123.db").write_bytes(b"")  # as a process would leave
    assert MULTIPROCESS_DIR_ENV not in os.environ
    assert not Path(directory).exists()


def test_a_directory_the_deployment_names_is_used_and_kept(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(MULTIPROCESS_DIR_ENV, str(tmp_path))
    with shared_metrics_directory() as directory:
        assert directory == str(tmp_path)
    assert os.environ[MULTIPROCESS_DIR_ENV] == str(tmp_path)
    assert tmp_path.is_dir()


def test_one_process_renders_its_own_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MULTIPROCESS_DIR_ENV, raising=False)
    metrics = ServerMetrics()
    metrics.count_token_request("client_credentials", "issued")
    metrics.count_token_request("client_credentials", "issued")
    rendered = metrics.render().decode()
    assert 'tokensmith_token_requests_total{grant_type="client_credentials",outcome="issued"} 2.0' in rendered
