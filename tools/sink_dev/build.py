"""`sam build` of template.yaml for the architecture of this machine, for what runs the build here.

The template builds for arm64. On an x86_64 machine arm64 wheels (pydantic-core) cannot load, neither in
a local interpreter nor in `sam local invoke`'s container, so the tests, the bench and `sam local invoke`
build a copy of the template whose only change is the architecture, and layers/core/Makefile is told
the same through LAMBDA_ARCHITECTURE. Nothing built here is deployed: `make build` and `sam deploy` keep
the template's arm64.
"""

import os
import platform
import shutil
import subprocess
from pathlib import Path

from sink_dev.paths import ROOT

SAM = ROOT / ".venv-sam" / "bin" / "sam"
TEMPLATE_ARCHITECTURE = "arm64"
ARCHITECTURE = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine().lower()]
SOURCES = ("functions", "layers")


def sam_environment() -> dict[str, str]:
    """What `sam` needs here: python3.13 on PATH (the project venv), no telemetry."""
    return os.environ | {"PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
                         "SAM_CLI_TELEMETRY": "0"}


def build(work: Path, timeout: int = 900) -> Path:
    """Build into `work` (its source copy in work/src, SAM's cache kept for the next build there) and
    return the built template, `work/build/template.yaml`, whose CodeUri/ContentUri are the built folders.
    """
    if not SAM.exists():
        raise RuntimeError(f"SAM CLI missing at {SAM}: run `make setup`")
    source = work / "src"
    shutil.rmtree(source, ignore_errors=True)
    for name in SOURCES:
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    template = (ROOT / "template.yaml").read_text()
    (source / "template.yaml").write_text(template.replace(TEMPLATE_ARCHITECTURE, ARCHITECTURE))
    result = subprocess.run(
        [str(SAM), "build", "--cached", "--cache-dir", str(work / "cache"), "--build-dir", str(work / "build"),
         "--template", "template.yaml"],
        cwd=source, env=sam_environment() | {"LAMBDA_ARCHITECTURE": ARCHITECTURE},
        capture_output=True, text=True, timeout=timeout,
    )
    if result.returncode != 0:
        raise RuntimeError(f"sam build failed:\n{result.stdout}\n{result.stderr}")
    return work / "build" / "template.yaml"


# What Lambda's Python runtime provides itself (compiled): boto3 and its dependencies.
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six.py")


def runtime_packages(folder: Path) -> Path:
    """`folder` holding the runtime's packages (links to this venv's, which pip installed compiled)."""
    import boto3

    site = Path(boto3.__file__).parents[1]
    folder.mkdir(parents=True, exist_ok=True)
    for package in RUNTIME_PACKAGES:
        if not (folder / package).exists():
            (folder / package).symlink_to(site / package)
    return folder


def lambda_path(built_template: Path, logical_id: str, runtime: Path) -> str:
    """PYTHONPATH of a function as Lambda lays it out: its code, the layer, then the runtime's packages."""
    build = built_template.parent
    return os.pathsep.join(str(p) for p in (build / logical_id, build / "CoreLayer" / "python", runtime))
