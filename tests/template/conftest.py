"""The template built for this machine's architecture, once per test session (sink_dev.build says why)."""

from pathlib import Path

import pytest

from sink_dev import build


def pytest_collection_modifyitems(items):
    """`make test-fast` must run without the SAM CLI: a test that builds must be marked slow."""
    unmarked = [item.nodeid for item in items
                if "host_build" in getattr(item, "fixturenames", ()) and not item.get_closest_marker("slow")]
    if unmarked:
        raise pytest.UsageError(f"these run sam build: mark them slow: {unmarked}")


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
