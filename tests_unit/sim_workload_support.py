"""Helpers for the workload tests (not a test module): a simulator with
CloudTower installed and the cluster connected, and the suite's clients on it.

``connected(sim, plan)`` brings a started simulator (SSH on) there and returns
:class:`Clients` (``endpoints``, ``tower``, ``fisheye``, ``ssh(ip, user,
password)``, ``cluster_id``) — the same client classes the suites use.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from sim_tower_support import TOWER, TOWER_PASSWORD, TowerHttp, tower_up

from voyager.clients import Endpoints, FisheyeClient, SSHClient, TowerClient
from voyager.plan.model import Secret


@dataclass
class Clients:
    endpoints: Endpoints
    tower: TowerClient
    fisheye: FisheyeClient
    cluster_id: str
    known_hosts: Path
    made: list = field(default_factory=list)

    def ssh(self, ip: str, user: str, password: Any) -> SSHClient:
        client = SSHClient(self.endpoints, ip, user, password, known_hosts=self.known_hosts)
        self.made.append(client)
        return client

    def close(self) -> None:
        for client in self.made:
            client.close()
        self.endpoints.close()


def connected(sim, plan, tmp: Path) -> Clients:
    tower_up(sim, plan)
    http = TowerHttp(sim.endpoints)
    org = http.setup(plan.cloudtower.organization)
    _, cluster = http.connect(plan, org, plan.cloudtower.datacenter)
    endpoints = Endpoints.simulated(sim.endpoints, plan)
    tower = TowerClient(endpoints, TOWER)
    tower.login("root", Secret(TOWER_PASSWORD))
    fisheye = FisheyeClient(endpoints, plan.cluster.vip)
    fisheye.login("root", plan.cluster.admin_password)
    return Clients(endpoints, tower, fisheye, cluster["id"], tmp / "known_hosts")


def ssh_factory(clients: Clients) -> Callable:
    return clients.ssh
