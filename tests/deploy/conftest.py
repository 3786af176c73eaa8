"""Fixtures for the deployment checks: the pinned checkers, and each Kubernetes overlay rendered once."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.manifests import DEPLOY, OVERLAYS, Manifest
from tests.deploy.tools import Tools, ensure_tools


@pytest.fixture(scope="session")
def tools() -> Tools:
    """Installed on first use; a missing or broken install fails the tests that need it (never skips)."""
    return ensure_tools()


@pytest.fixture(scope="session")
def rendered(tools: Tools, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``kubectl kustomize`` of each overlay, written to a file per overlay (what checkov scans)."""
    out = tmp_path_factory.mktemp("rendered")
    files = {}
    for overlay in OVERLAYS:
        result = subprocess.run(
            [str(tools.kubectl), "kustomize", str(DEPLOY / "kubernetes" / "overlays" / overlay)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert result.stderr == "", f"kustomize warned about {overlay}: {result.stderr}"
        files[overlay] = out / f"{overlay}.yaml"
        files[overlay].write_text(result.stdout)
    return files


@pytest.fixture(scope="session")
def manifests(rendered: dict[str, Path]) -> dict[str, list[Manifest]]:
    return {overlay: list(yaml.safe_load_all(path.read_text())) for overlay, path in rendered.items()}
