"""The template built for this machine's architecture, once per test session (sink_dev.build says why)."""

import fcntl
import os
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
    """The built template.yaml; its folder holds each function's and the layer's build.

    Built once per run: under pytest-xdist each worker has its own session, so the first worker to ask
    builds in the folder the workers share (their base folders' parent), holding a lock that the others
    wait on, and they use its build (nothing writes to a build: the tests read it or mount it read-only).
    """
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent
    done = shared / "host-build.done"  # the built template's path, written once the build succeeded
    with (shared / "host-build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if done.exists():
            return Path(done.read_text())
        try:
            built = build.build(shared / "host-build")
        except RuntimeError as error:
            pytest.fail(str(error))
        done.write_text(str(built))
        return built


@pytest.fixture(scope="session")
def runtime_packages(tmp_path_factory) -> Path:
    return build.runtime_packages(tmp_path_factory.mktemp("runtime"))
