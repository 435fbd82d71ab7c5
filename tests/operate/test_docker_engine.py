"""The engine's bridge address, as containers reach the host, whatever dockerd's version reports."""

import json
import subprocess

import pytest

from sink_local import docker
from sink_local.docker import Engine, EngineUnavailable

IP_ADDR = "5: docker0    inet 172.17.0.1/16 brd 172.17.255.255 scope global docker0\\       valid_lft forever\n"


def engine_reporting(monkeypatch, bridge: dict, ip_output: str = IP_ADDR) -> Engine:
    engine = Engine.__new__(Engine)
    monkeypatch.setattr(engine, "docker", lambda *args, **kw: subprocess.CompletedProcess(args, 0, json.dumps([bridge])))
    monkeypatch.setattr(docker.subprocess, "run",
                        lambda args, **kw: subprocess.CompletedProcess(args, 0, ip_output if args[0] == "ip" else ""))
    return engine


def test_the_gateway_dockerd_reports_is_used(monkeypatch):
    bridge = {"IPAM": {"Config": [{"Subnet": "172.18.0.0/16", "Gateway": "172.18.0.1"}]}}
    assert engine_reporting(monkeypatch, bridge).bridge_gateway() == "172.18.0.1"


def test_a_bridge_reported_without_gateway_is_reached_at_its_interface_address(monkeypatch):
    # Given dockerd 20.10 on a new machine: docker0 just created, IPAM lists the subnet only
    bridge = {"IPAM": {"Config": [{"Subnet": "172.17.0.0/16"}]},
              "Options": {"com.docker.network.bridge.name": "docker0"}}
    assert engine_reporting(monkeypatch, bridge).bridge_gateway() == "172.17.0.1"


def test_a_bridge_without_any_address_is_a_clear_error(monkeypatch):
    with pytest.raises(EngineUnavailable, match="no IPv4 address"):
        engine_reporting(monkeypatch, {"IPAM": {"Config": []}}, ip_output="").bridge_gateway()
