"""A Docker engine and a Lambda Python image for `sam local invoke`, where the machine has neither.

Where Docker already runs (Docker Desktop, a system daemon), it is used as it is, and SAM pulls AWS's own
image `public.ecr.aws/lambda/python:3.13-<arch>`. Elsewhere, as root, with Debian's `docker.io` and
`debootstrap` installed (`make docker-engine`):

- the engine is a `dockerd` of this project's own, on its own socket, state and storage folders, that
  leaves the host's network alone (no iptables rules, no IP forwarding): it is started and stopped by its
  pid, and what it made (the docker0 bridge, if it was not there before) is removed when it stops;
- the image is a STAND-IN for AWS's, built here because no container registry is reachable, as moto
  stands in for AWS: Debian's Python 3.13 (debootstrap), AWS's runtime interface client (`awslambdaric`)
  and boto3 in /var/runtime, compiled as the Lambda runtime ships them. SAM adds its own runtime
  interface emulator and the layer to it, exactly as it does to AWS's image. It is kept in the engine's
  storage (under ~/.cache) and rebuilt only when its recipe changes.
"""

import contextlib
import fcntl
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sink_dev.build import ARCHITECTURE

IMAGE = f"public.ecr.aws/lambda/python:3.13-{ARCHITECTURE}"
# The stand-in's recipe; a change of any part rebuilds it (its digest is the image's label).
DEBIAN_SUITE = "trixie"  # Debian 13: Python 3.13
RUNTIME_CLIENT = "awslambdaric==4.2.2"
BOOTSTRAP = """#!/bin/sh
# The Lambda Python runtime's bootstrap, in the stand-in: its import path, then the runtime interface client.
export PYTHONPATH="/var/task:/opt/python/lib/python3.13/site-packages:/opt/python:/var/runtime"
exec /usr/bin/python3.13 -m awslambdaric "${_HANDLER:-$AWS_LAMBDA_FUNCTION_HANDLER}"
"""
LABEL = "twilio-sink.stand-in"
PLATFORMS = {"x86_64": ["manylinux2014_x86_64", "manylinux_2_28_x86_64"],
             "arm64": ["manylinux2014_aarch64", "manylinux_2_28_aarch64"]}
DEBIAN_ARCH = {"x86_64": "amd64", "arm64": "arm64"}

RUN = Path(os.environ.get("TWILIO_SINK_DOCKER_RUN", "/run/twilio-sink-docker"))  # socket, pid, daemon state
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "twilio-sink" / "docker"  # images


class EngineUnavailable(RuntimeError):
    """No Docker engine can be had here; the message says why."""


def _docker_cli() -> str | None:
    return shutil.which("docker")


def _responds(host: str | None) -> bool:
    cli = _docker_cli()
    if cli is None:
        return False
    env = os.environ | ({"DOCKER_HOST": host} if host else {})
    return subprocess.run([cli, "version", "--format", "{{.Server.Version}}"], env=env, capture_output=True,
                          timeout=30).returncode == 0


def unavailable_reason() -> str | None:
    """Why `sam local invoke` cannot run on this machine, or None when it can."""
    if _responds(os.environ.get("DOCKER_HOST")):
        return None
    missing = [tool for tool in ("docker", "dockerd", "debootstrap") if shutil.which(tool) is None]
    if os.geteuid() != 0:
        return ("no Docker engine answers, and starting one needs root: run Docker (e.g. Docker Desktop), "
                "or run as root with Debian's docker.io and debootstrap (`make docker-engine`)")
    if missing:
        return f"no Docker engine answers, and {', '.join(missing)} is not installed (`make docker-engine` installs them)"
    return None


class Engine:
    """The Docker engine to use: the user's own if one answers, else this project's dockerd (see module doc)."""

    def __init__(self, run: Path = RUN, cache: Path = CACHE):
        self.run, self.cache = run, cache
        self.socket = run / "docker.sock"
        self.pid_file = run / "dockerd.pid"
        self.own_host = f"unix://{self.socket}"
        self.host: str | None = None  # DOCKER_HOST for sam and docker; None: the user's default engine
        self.private = False  # True: this project's dockerd (then the stand-in image is needed)
        self._daemon: subprocess.Popen | None = None  # the dockerd this object started
        self._leftover: int | None = None  # the pid of one a killed command left running, stopped too
        self._made_bridge = False
        self._lock = None  # one user of this project's dockerd at a time (several test runs on one machine)

    @property
    def env(self) -> dict[str, str]:
        return os.environ | ({"DOCKER_HOST": self.host} if self.host else {})

    def start(self) -> "Engine":
        reason = unavailable_reason()
        if reason:
            raise EngineUnavailable(reason)
        users = os.environ.get("DOCKER_HOST")
        if users != self.own_host and _responds(users):
            self.host = users
            return self
        self.private, self.host = True, self.own_host
        self.run.mkdir(parents=True, exist_ok=True)
        self.cache.mkdir(parents=True, exist_ok=True)
        # Another run of this project may be using the engine: wait for it rather than share a daemon
        # that its owner will stop, or start a second one on the same storage.
        self._lock = open(self.cache.parent / "engine.lock", "w")  # noqa: SIM115 - held until stop()
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        if _responds(self.own_host):  # left running by a command that was killed: used, then stopped
            self._leftover = int(self.pid_file.read_text())
            return self
        self._made_bridge = not Path("/sys/class/net/docker0").exists()
        log = open(self.run / "dockerd.log", "ab")  # noqa: SIM115 - the daemon's own, kept after this returns
        self._daemon = subprocess.Popen(
            ["dockerd", "--host", self.own_host, "--data-root", str(self.cache), "--exec-root", str(self.run / "exec"),
             "--pidfile", str(self.pid_file),
             # The host's network stays as it is: no iptables rules, no forwarding, no masquerading. A
             # container reaches only this engine's bridge (where the local stack is relayed to it).
             "--iptables=false", "--ip-forward=false", "--ip-masq=false"],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        deadline = time.monotonic() + 60
        while not _responds(self.own_host):
            if self._daemon.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise EngineUnavailable(f"dockerd did not start: see {self.run / 'dockerd.log'}")
            time.sleep(0.5)
        return self

    def stop(self) -> None:
        """Stop the dockerd this object started (by its pid), and remove the bridge it made."""
        daemon, self._daemon = self._daemon, None
        if daemon is not None:
            daemon.terminate()  # dockerd stops its containers and containerd on SIGTERM
            try:
                daemon.wait(timeout=60)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
        leftover, self._leftover = self._leftover, None
        if leftover is not None:
            _terminate(leftover)
        if self._made_bridge and Path("/sys/class/net/docker0").exists():
            subprocess.run(["ip", "link", "delete", "docker0"], capture_output=True)
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.close()  # releases the flock

    def __enter__(self) -> "Engine":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def docker(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        cli = _docker_cli()
        if cli is None:
            raise EngineUnavailable("the docker command is not installed")
        return subprocess.run([cli, *args], env=self.env, check=True, capture_output=True, **kwargs)

    def bridge_gateway(self) -> str:
        """The host's address on the engine's default bridge: what a container reaches the host at."""
        (bridge,) = json.loads(self.docker("network", "inspect", "bridge", text=True).stdout)
        config = (bridge.get("IPAM", {}).get("Config") or [{}])[0]
        if config.get("Gateway"):
            return config["Gateway"]
        # dockerd 20.10 leaves the gateway out of a docker0 it has just created (a new machine): the
        # bridge interface's own address is that gateway.
        device = bridge.get("Options", {}).get("com.docker.network.bridge.name", "docker0")
        shown = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", device], capture_output=True, text=True).stdout
        found = re.search(r"\binet (\d+\.\d+\.\d+\.\d+)/", shown)
        if found is None:
            raise EngineUnavailable(f"the engine's bridge {device} has no IPv4 address for containers to reach")
        return found[1]

    # ------------------------------------------------------------------------------ the stand-in image

    def ensure_lambda_image(self, say=print) -> bool:
        """Make sure IMAGE is present; True when it is the stand-in (then sam must not try to pull)."""
        if not self.private:
            return False  # the user's engine: SAM pulls AWS's image as usual
        wanted = recipe_digest()
        found = self.docker("image", "ls", "--filter", f"reference={IMAGE}", "--format", "{{.ID}}", text=True).stdout.strip()
        if found:
            labels = self.docker("image", "inspect", IMAGE, "--format", "{{json .Config.Labels}}", text=True).stdout
            if (json.loads(labels) or {}).get(LABEL) == wanted:
                return True
        say(f"→ building the stand-in Lambda image {IMAGE} (Debian {DEBIAN_SUITE}, awslambdaric; a few minutes, once)")
        build_stand_in(self, wanted)
        return True


def _terminate(pid: int) -> None:
    """SIGTERM to a process that is not our child, then wait until it is gone (SIGKILL after a minute)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 60
        while Path(f"/proc/{pid}").exists():
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                deadline = float("inf")
            time.sleep(0.2)


def runtime_requirements() -> list[str]:
    """What the stand-in's /var/runtime holds: the runtime interface client and the boto3 this project pins."""
    return [RUNTIME_CLIENT, f"boto3=={importlib.metadata.version('boto3')}"]


def recipe_digest() -> str:
    recipe = [DEBIAN_SUITE, ARCHITECTURE, BOOTSTRAP, *runtime_requirements()]
    return hashlib.sha256("\n".join(recipe).encode()).hexdigest()[:16]


def debian_mirror() -> str:
    """The Debian mirror this machine's apt already uses (the stand-in comes from the same place)."""
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.exists():
        for line in sources.read_text().splitlines():
            if line.startswith("URIs:"):
                return line.split()[1]
    listing = Path("/etc/apt/sources.list")
    if listing.exists():
        for line in listing.read_text().splitlines():
            parts = line.split()
            if parts[:1] == ["deb"] and "debian-security" not in line:
                return next(part for part in parts[1:] if "://" in part)
    raise EngineUnavailable("no Debian mirror in /etc/apt: debootstrap needs one")


def build_stand_in(engine: Engine, digest: str) -> None:
    with tempfile.TemporaryDirectory(prefix="lambda-image-", dir=engine.cache.parent) as work:
        rootfs = Path(work) / "rootfs"
        subprocess.run(["debootstrap", "--variant=minbase", "--include=python3", f"--arch={DEBIAN_ARCH[ARCHITECTURE]}",
                        DEBIAN_SUITE, str(rootfs), debian_mirror()], check=True, capture_output=True)
        python = rootfs / "usr" / "bin" / "python3.13"
        if not python.exists():
            raise EngineUnavailable(f"Debian {DEBIAN_SUITE} did not bring python3.13")
        runtime = rootfs / "var" / "runtime"
        platforms = [argument for tag in PLATFORMS[ARCHITECTURE] for argument in ("--platform", tag)]
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
                        "--only-binary=:all:", "--implementation", "cp", "--python-version", "3.13", *platforms,
                        "--target", str(runtime), *runtime_requirements()], check=True, capture_output=True)
        # The Lambda runtime's own packages come compiled (its /var/runtime is read-only too).
        subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash",
                        str(runtime)], check=True, capture_output=True)
        (runtime / "bootstrap").write_text(BOOTSTRAP)
        (runtime / "bootstrap").chmod(0o755)
        for folder in ("var/task", "opt"):
            (rootfs / folder).mkdir(parents=True, exist_ok=True)
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        engine.docker("import",
                      "--change", "ENV LAMBDA_TASK_ROOT=/var/task LAMBDA_RUNTIME_DIR=/var/runtime LANG=C.UTF-8 TZ=:UTC",
                      "--change", "WORKDIR /var/task",
                      "--change", f"LABEL {LABEL}={digest}",
                      "-", IMAGE, stdin=tar.stdout)
        tar.stdout.close()
        if tar.wait() != 0:
            raise EngineUnavailable("could not pack the stand-in image")




