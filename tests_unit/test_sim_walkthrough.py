"""The walkthrough (../shared/spec), steps 01-08 and "other APIs", in its order, against the simulator.

Payloads are the walkthrough's, adapted to the loopback demo plan; every request
goes through plain requests (Host header = the planned IP) or paramiko. Steps
01-04 up to the CloudTower installer use the simulator's own scripted walk
(:mod:`voyager.sim.walkthrough`); the CloudTower configuration, the cluster
connection, steps 06 and 08 and the "other APIs" are spelled out here. Step 07
(OBS, backup) is optional; its calls have their own tests (test_sim_tower_packages,
test_sim_tower_applications).
"""
from __future__ import annotations

import io
import re
import zipfile
from datetime import datetime, timezone

import paramiko

from sim_tower_support import ALERT_FILTER, HOST_PASSWORD, QUERIES, TOWER_PASSWORD, alert_rule_update
from voyager.encoding import encode_host_password
from voyager.plan.demo import build_demo_plan
from voyager.sim import Simulator
from voyager.sim.testing import deployed
from voyager.sim.tower.models import ENCODED_DEFAULT_ROOT_PASSWORD
from voyager.sim.walkthrough import Walk

Q_LICENSE = ("query deployedLicense {\n  deploys(first: 1) {\n    id\n    license {\n      id\n      license_serial\n"
             "      maintenance_end_date\n      maintenance_start_date\n      max_chunk_num\n      max_cluster_num\n"
             "      max_vm_num\n      used_vm_num\n      sign_date\n      expire_date\n      software_edition\n"
             "      type\n      vendor\n      __typename\n    }\n    __typename\n  }\n}\n")
Q_SETTINGS = ("mutation updateClusterSettings($data: ClusterSettingsUpdateInput!, $where: "
              "ClusterSettingsWhereUniqueInput!) {\n  updateClusterSettings(where: $where, data: $data) {\n    id\n"
              "    default_ha\n    default_ha_priority\n    enabled_iscsi\n    default_storage_policy\n"
              "    default_storage_policy_replica_num\n    default_storage_policy_ec_k\n"
              "    default_storage_policy_ec_m\n    default_storage_policy_thin_provision\n"
              "    default_storage_encryption\n    __typename\n  }\n}\n")
Q_RULES = ("query globalAlertRules($where: GlobalAlertRuleWhereInput, $orderBy: GlobalAlertRuleOrderByInput, "
           "$skip: Int, $first: Int) {\n  globalAlertRules(where: $where, orderBy: $orderBy, skip: $skip, first: "
           "$first) {\n    message\n    thresholds {\n      severity\n      __typename\n    }\n    object\n    id\n"
           "    disabled\n    name\n    alert_rules {\n      id\n      customized\n      disabled\n      thresholds {\n"
           "        severity\n        value\n        __typename\n      }\n      __typename\n    }\n    __typename\n"
           "  }\n  globalAlertRulesConnection(where: $where) {\n    aggregate {\n      count\n      __typename\n"
           "    }\n    __typename\n  }\n}\n")
Q_RULE = ("mutation updateGlobalAlertRule($data: GlobalAlertRuleUpdateInput!, $where: GlobalAlertRuleWhereUniqueInput!)"
          " {\n  updateGlobalAlertRule(data: $data, where: $where) {\n    id\n    disabled\n    thresholds {\n"
          "      value\n      severity\n      __typename\n    }\n    alert_rules {\n      id\n      disabled\n"
          "      customized\n      thresholds {\n        value\n        severity\n        __typename\n      }\n"
          "      cluster {\n        id\n        name\n        __typename\n      }\n      __typename\n    }\n"
          "    __typename\n  }\n}\n")
# API-FACTS "Monitoring dashboards": view -> [(title, metric)]
DASHBOARDS = {
    "Cluster": [("集群 CPU 使用率 %", "cluster_cpu_usage_percent"), ("集群 内存 使用率 %", "cluster_memory_usage_percent"),
                ("集群 已使用数据空间", "zbs_cluster_provisioned_data_space_bytes")],
    "Host": [("主机 CPU 使用率 %", "host_cpu_overall_usage_percent"),
             ("分配给运行（含暂停）虚拟机逻辑核数量", "elf_host_vcpus_provisioned_running"),
             ("主机 CPU 温度", "host_cpu_temperature_celsius"), ("主机 内存 使用率 %", "host_memory_usage_percent"),
             ("缓存命中率 - 读", "zbs_chunk_read_cache_hit_ratio"), ("缓存命中率 - 写", "zbs_chunk_write_cache_hit_ratio"),
             ("已使用数据空间（物理）", "zbs_chunk_used_data_space_bytes")],
    "VM": [("虚拟机 CPU 使用率 Top N", "elf_vm_cpu_overall_usage_percent"),
           ("虚拟机 CPU 就绪等待时间占比 Top N", "elf_vm_cpu_overall_steal_time_percent"),
           ("虚拟机 内存 使用率 Top N", "elf_vm_memory_usage_percent"),
           ("虚拟机写带宽 Top N", "elf_vm_disk_overall_write_speed_bps"),
           ("虚拟机 读写延迟 Top N", "elf_vm_disk_overall_avg_read_write_latency_ns")],
}
INSPECTION_ITEMS = [
    "master_redundancy_check", "cluster_mem_usage_check", "cluster_cpu_usage_check", "host_power_is_on",
    "host_disk_is_healthy", "ipmi_account_is_valid", "host_management_network_can_ping",
    "host_storage_network_can_ping", "zbs_cluster_data_space_use_rate", "elf_host_ha_status", "zk_status_check",
]


class TowerWalk:
    """The CloudTower half of the walkthrough (steps 04-08), plain requests."""

    def __init__(self, walk: Walk, ip: str) -> None:
        self.walk = walk
        self.ip = ip
        self.token: str | None = None

    def post(self, path: str, *, auth: bool = True, **kwargs):
        headers = {"Authorization": self.token} if auth and self.token else {}
        base = self.walk.endpoints["https"]
        resp = self.walk.http.post(base + path, headers={"Host": self.ip, **headers}, timeout=30, verify=False,
                                   **kwargs)
        assert resp.status_code == 200, f"{path}: {resp.status_code} {resp.text[:300]}"
        return resp

    def gql(self, op: str, query: str, variables: dict, *, auth: bool = True) -> dict:
        body = self.post("/api", auth=auth, json={"operationName": op, "variables": variables, "query": query}).json()
        assert not body.get("errors"), body
        return body["data"]

    def rest(self, op: str, body) -> object:
        resp = self.post(f"/v2/api/{op}", json=body)
        assert resp.headers["x-tower-request-id"]
        return resp.json()


def ssh(endpoints, ip: str, user: str, password: str) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect("127.0.0.1", port=endpoints["ssh"][ip], username=user, password=password,
                   look_for_keys=False, allow_agent=False, timeout=10)
    return client


def run(client: paramiko.SSHClient, command: str, stdin: str = "") -> tuple[int, str]:
    i, o, e = client.exec_command(command, timeout=30)
    i.write(stdin)
    i.channel.shutdown_write()
    out = o.read().decode()
    return o.channel.recv_exit_status(), out + e.read().decode()


def test_walkthrough_against_the_simulator():
    plan = build_demo_plan()
    vip, tower_ip, ct = plan.cluster.vip, plan.cloudtower.ip, plan.cloudtower
    with Simulator(plan, speed=0) as sim:
        walk = Walk(sim.endpoints, plan, timeout=30, poll=0.01)

        # 01 准备阶段: scan every host (and the cluster scan), 02 部署集群 and its status
        scans = walk.scan()
        assert sorted(scans) == [h.mgmt_ip for h in plan.hosts]
        walk.deploy(scans)

        # 03 配置集群: fisheye root, session, VIP, serial, DNS, NTP, IPMI, business VDS and VLANs
        assert walk.configure() == vip
        serial = walk.facts["serial"]
        assert walk.facts["ipmi_valid"] == len(plan.hosts)
        # 批量配置主机密码: log in as smartx with the default password, set the planned ones
        for host in plan.hosts:
            with ssh(sim.endpoints, host.mgmt_ip, "smartx", HOST_PASSWORD) as client:
                lines = f"root:{host.admin_password.reveal()}\n{host.ssh_user}:{host.ssh_password.reveal()}\n"
                assert run(client, "sudo chpasswd", lines) == (0, "")
            ssh(sim.endpoints, host.mgmt_ip, host.ssh_user, host.ssh_password.reveal()).close()
            ssh(sim.endpoints, host.mgmt_ip, "root", host.admin_password.reveal()).close()
        # 上传虚拟机工具 (SVT)
        walk.upload(vip, "SMTX_VMTOOLS-3.2.0-2501210639.iso", 8 * 1024 * 1024 + 99, svt=True)

        # 04 部署 CloudTower: is the ISO there already? upload it, create the VM, wait for its agent,
        # configure its network, run the installer over SSH, wait for 443
        iso_name = f"cloudtower-v{ct.version}.oe2003.x86_64.iso"
        assert iso_name not in {i["name"] for i in walk.v2(vip, "GET", "/api/v2/images")["images"]}
        iso = walk.upload(vip, iso_name, 3 * 8 * 1024 * 1024 + 12345)
        tower_vm = walk.cloudtower_vm(vip, iso["image_path"])
        walk.install_tower()
        tower = TowerWalk(walk, tower_ip)
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        assert tower.gql("createRootUser", QUERIES["createRootUser"],
                         {"root_password": ENCODED_DEFAULT_ROOT_PASSWORD, "now": now}, auth=False)["createUser"]["id"]
        org_id = tower.gql("createOrganization", QUERIES["createOrganization"], {"data": {"name": ct.organization}},
                           auth=False)["createOrganization"]["id"]
        setup = tower.gql("checkTowerIsSetup", QUERIES["checkTowerIsSetup"], {}, auth=False)
        assert setup["organizations"][0]["name"] == ct.organization and setup["userCreated"]["created"]
        login = walk.http.post(sim.endpoints["http"] + "/v2/api/login", headers={"Host": tower_ip}, timeout=30,
                               json={"username": "root", "source": "LOCAL", "password": TOWER_PASSWORD})
        assert login.status_code == 200 and login.json()["task_id"] is None
        tower.token = login.json()["data"]["token"]
        ntp = tower.gql("updateCloudTowerNtpUrl", QUERIES["updateCloudTowerNtpUrl"],
                        {"data": {"ntp_service_url": ",".join(plan.ntp)}})
        assert ntp["updateCloudTowerNtpUrl"]["ntp_service_url"] == ";".join(plan.ntp)
        with ssh(sim.endpoints, tower_ip, "cloudtower", TOWER_PASSWORD) as client:  # 配置 cloudtower dns
            resolv = "".join(f"nameserver {d}\n" for d in plan.dns)
            assert run(client, f"sudo sh -c 'cat > /etc/resolv.conf <<EOF\n{resolv}EOF'")[0] == 0
            assert run(client, "cat /etc/resolv.conf") == (0, resolv)
        lic = tower.gql("deployedLicense", Q_LICENSE, {})["deploys"][0]["license"]
        assert lic["type"] == "TRIAL" and re.fullmatch(r"[0-9a-f-]{36}", lic["license_serial"])

        # 05 关联 CloudTower: organization id, datacenter, connect the cluster by its VIP
        orgs = tower.rest("get-organizations", {})
        assert [o["id"] for o in orgs] == [org_id]
        dc = tower.rest("create-datacenter", {"organization_id": org_id, "name": ct.datacenter})
        assert dc["data"]["organization"]["id"] == org_id
        conn = tower.rest("connect-cluster", {"datacenter_id": dc["data"]["id"], "username": "root", "ip": vip,
                                              "password": plan.cluster.admin_password.reveal()})
        assert conn["data"]["connect_state"] == "INITIALIZING" and conn["task_id"]
        cluster = walk.wait("cluster connection", lambda: tower.rest("get-clusters", {})[0],
                            lambda c: c["connect_state"] == "CONNECTED")
        assert cluster["local_id"] == serial and cluster["name"] == plan.cluster.name
        cid = cluster["id"]

        # 06 通过 CloudTower 配置集群: storage policy, dashboards, alert rule, rack topology
        data = {"default_storage_policy": "REPLICA_2_THIN_PROVISION", "default_storage_policy_replica_num": 2,
                "default_storage_policy_ec_k": None, "default_storage_policy_ec_m": None,
                "default_storage_policy_thin_provision": True}
        settings = tower.gql("updateClusterSettings", Q_SETTINGS,
                             {"data": data, "where": {"id": cluster["settings"]["id"]}})["updateClusterSettings"]
        assert settings["default_storage_policy"] == "REPLICA_2_THIN_PROVISION"
        hosts = tower.rest("get-hosts", {"where": {"cluster": {"id": cid}}})
        assert len(hosts) == len(plan.hosts)
        for view_name, graphs in DASHBOARDS.items():
            assert tower.rest("get-views", {"where": {"cluster": {"id": cid}, "name": view_name}}) == []
            view = tower.rest("create-view", [{"time_unit": "HOUR", "time_span": 2, "cluster_id": cid,
                                               "name": view_name}])[0]["data"]
            for title, metric in graphs:
                graph = {"type": "AREA", "resource_type": view_name.lower(), "view_id": view["id"], "title": title,
                         "cluster_id": cid, "metric_name": metric,
                         "connect_id": {"Cluster": [cid], "Host": [h["id"] for h in hosts], "VM": []}[view_name]}
                if view_name == "VM":
                    graph.update(metric_type="TOPK", metric_count="5")
                tower.rest("create-graph", [graph])
        assert len(tower.rest("get-graphs", {"where": {"cluster": {"id": cid}}})) == 15
        rules = tower.gql("globalAlertRules", Q_RULES, {"skip": 0, "first": 50, "where": ALERT_FILTER,
                                                        "orderBy": "id_ASC"})["globalAlertRules"]
        rule = next(r for r in rules if r["name"] == "zbs_cluster_data_space_use_rate")
        n = len(plan.hosts)
        notice = int((((n - 1) / n) - 0.05) * 100)
        updated = tower.gql("updateGlobalAlertRule", Q_RULE, alert_rule_update(rule, notice))["updateGlobalAlertRule"]
        assert {t["severity"]: t["value"] for t in updated["alert_rules"][0]["thresholds"]}["NOTICE"] == 61
        zone = tower.rest("get-zone-topoes", {"where": {"cluster": {"id": cid}}})[0]
        racks = {}
        for host in plan.hosts:
            if host.rack not in racks:
                racks[host.rack] = tower.rest("create-rack-topo", [{"cluster_id": cid, "zone_topo_id": zone["id"],
                                                                    "height": 42, "name": host.rack}])[0]["data"]
        node_list = tower.rest("get-node-topoes", {"where": {"cluster": {"id": cid}}})
        nodes = {n["host"]["management_ip"]: n for n in node_list}
        for host in plan.hosts:
            brick = tower.rest("create-brick-topo", [{"cluster_id": cid, "rack_topo_id": racks[host.rack]["id"],
                                                      "height": 2, "name": host.name, "position": host.unit}])[0]
            tower.rest("move-node-topo", [{"where": {"id": nodes[host.mgmt_ip]["id"]},
                                           "data": {"brick_topo_id": brick["data"]["id"],
                                                    "position": {"row": 1, "column": 1}}}])
        assert all(n["brick_topo"] for n in tower.rest("get-node-topoes", {}))

        # 07 其他管理组件 (optional; the demo plans both): the two documented upload starts
        obs_file = "Observability-X86_64-v1.4.2-release.20250926-24.tar.gz"
        upload = tower.post("/api/ovm-operator/api/v3/chunkedUploads", json={"origin_file_name": obs_file}).json()
        assert upload["status"] == "UPLOADING" and upload["offset"] == "0" and upload["origin_file_name"] == obs_file
        task_data = {"status": "INITIALIZING", "current_chunk": 1, "chunk_size": 4194304,
                     "resource_type": "CLOUDTOWER_APPLICATION_PACKAGE", "size": 426394976,
                     "args": {"name": "smtx-backup-dr-x86_64-2.2.1.tar.gz", "package_name": "iomesh-backup"},
                     "started_at": "2025-12-09T04:49:01.038Z"}
        q_upload = ("mutation createUploadTask($data: UploadTaskCreateInput!) {\n  createUploadTask(data: $data) {\n"
                    "    id\n    current_chunk\n    chunk_size\n    __typename\n  }\n}\n")
        task = tower.gql("createUploadTask", q_upload, {"data": task_data})["createUploadTask"]
        assert task["current_chunk"] == 1 and task["chunk_size"] == 4194304

        # 08 集群巡检: job, export request, export status, download
        job = tower.post("/api/inspector/api/v3/jobs", json={"version": "1.1.1-rc.11", "cluster_uuids": [serial],
                                                            "user_defined_items_names": INSPECTION_ITEMS}).json()
        filename = tower.post(f"/api/inspector/api/v3/jobs/{job['id']}:exportReport", params={"format": "word"},
                              json={"options": [{"cluster_uuid": serial, "items_names": INSPECTION_ITEMS,
                                                 "graph_duration_months": 6}]}).json()["filename"]

        def export_status():
            resp = walk.http.get(sim.endpoints["https"] + "/api/inspector/api/v3/export/status", verify=False,
                                 params={"filename": filename}, timeout=30,
                                 headers={"Host": tower_ip, "Authorization": tower.token})
            return resp.json()["status"]

        walk.wait("inspection export", export_status, lambda s: s == "EXPORT_SUCCEEDED")
        report = walk.http.get(sim.endpoints["https"] + "/api/inspector/api/v1/export/download", verify=False,
                               params={"filename": filename}, timeout=30,
                               headers={"Host": tower_ip, "Authorization": tower.token})
        assert report.status_code == 200 and zipfile.ZipFile(io.BytesIO(report.content)).testzip() is None

        # 其他 API: storage policy uuid, management and business VDS, the ISO's iSCSI path
        policies = walk.v2(vip, "GET", "/api/v2/storage_policies")
        assert policies[0]["name"] == "default" and policies[0]["uuid"]
        vdses = {v["name"]: v for v in walk.v2(vip, "GET", "/api/v2/network/vds")}
        assert {plan.networks.mgmt.vds, plan.networks.business.vds} <= set(vdses)
        images = {i["name"]: i for i in walk.v2(vip, "GET", "/api/v2/images")["images"]}
        assert images[iso_name]["path"] == iso["image_path"]
        assert walk.v2(vip, "GET", f"/api/v2/vms/{tower_vm}")["vm_name"] == ct.vm_name

        status = sim.status()
    assert status["deployed"] is True and status["hosts"] == len(plan.hosts)
    assert status["vds"] == 3  # management, storage, business
    assert status["vlans"] >= len(plan.networks.business.vlans)
    assert status["vms"] == 1 and status["images"] == 2
    assert (status["organizations"], status["datacenters"], status["connected_clusters"]) == (1, 1, 1)
    assert status["uploads_in_progress"] == 0


def test_inspection_needs_a_connected_cluster():
    """Without a connected cluster the inspection job is refused (the walk above depends on step 05)."""
    plan = build_demo_plan()
    with Simulator(plan, speed=0, ssh=False) as sim:
        http, walk = deployed(sim, plan)
        iso = walk.upload(plan.cluster.vip, "cloudtower-v4.7.1.oe2003.x86_64.iso", 1024)
        walk.cloudtower_vm(plan.cluster.vip, iso["image_path"])
        sim.world.tower_preinstall()
        sim.world.tower_start_installer()
        tower = TowerWalk(walk, plan.cloudtower.ip)
        tower.gql("createRootUser", QUERIES["createRootUser"],
                  {"root_password": ENCODED_DEFAULT_ROOT_PASSWORD, "now": "2025-09-30T18:42:47.920Z"}, auth=False)
        tower.token = walk.http.post(sim.endpoints["http"] + "/v2/api/login", headers={"Host": plan.cloudtower.ip},
                                     json={"username": "root", "password": TOWER_PASSWORD}).json()["data"]["token"]
        resp = walk.http.post(sim.endpoints["https"] + "/api/inspector/api/v3/jobs", verify=False,
                              headers={"Host": plan.cloudtower.ip, "Authorization": tower.token},
                              json={"version": "1.1.1-rc.11", "cluster_uuids": [sim.world.cluster.serial],
                                    "user_defined_items_names": INSPECTION_ITEMS})
        assert resp.status_code == 404 and resp.json()["code"] == 5


def test_the_whole_walkthrough_leaves_a_deployed_and_connected_cluster(tmp_path):
    """The simulator's own scripted walk (``python -m voyager.sim.walkthrough``), and a rerun meets the same world."""
    plan = build_demo_plan()
    state = tmp_path / "walk.json"
    with Simulator(plan, speed=0, state_file=state) as sim:
        walk = Walk(sim.endpoints, plan, timeout=30, poll=0.01)
        status = walk.run()
        assert walk.facts["ipmi_valid"] == 3
    assert status == {"deployed": True, "hosts": 3, "vds": 3, "vlans": 4, "images": 2, "vms": 1,
                      "organizations": 1, "datacenters": 1, "connected_clusters": 1,
                      "views": 0, "graphs": 0, "racks": 0, "bricks": 0, "uploads_in_progress": 0}
    # nothing the simulator wrote (state file, SSH host keys) holds a password or a token
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == ["walk.json", "walk.json.ssh-host-keys"], written
    secrets = {TOWER_PASSWORD, HOST_PASSWORD, ENCODED_DEFAULT_ROOT_PASSWORD, encode_host_password(HOST_PASSWORD),
               plan.cluster.admin_password.reveal(), plan.cloudtower.admin_password.reveal(), walk.token,
               walk.tower_token}
    for path in tmp_path.iterdir():
        text = path.read_text(encoding="utf-8")
        for secret in secrets:
            assert secret and secret not in text, (path.name, secret[:2])
    # what a rerun of failed checks meets: the same world
    with Simulator(plan, speed=0, ssh=False, state_file=state) as sim:
        assert sim.status() == status
        assert sim.world.tower_ready()
