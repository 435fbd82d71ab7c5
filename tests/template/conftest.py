"""The template built for this machine's architecture, once per test session (sink_dev.build says why)."""

from pathlib import Path

import pytest

from sink_dev import build


@pytest.fixture(scope="session")
def host_build(tmp_path_factory) -> Path:
    """The built template.yaml; its folder holds each function's and the layer's build."""
    try:
        return build.build(tmp_path_factory.mktemp("host-build"))
    except RuntimeError as error:
        pytest.fail(str(error))


@pytest.fixture(scope="session")
def runtime_packages(tmp_path_factory) -> Path:
    return build.runtime_packages(tmp_path_factory.mktemp("runtime"))
