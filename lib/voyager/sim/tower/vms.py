"""CloudTower: test workload VMs (walkthrough steps 09-11, "待补充" there; the
calls are those of the official OpenAPI spec 4.6.0).

Backend (``tower.workloads``, persisted with CloudTower's state):

* ``/upload-elf-file`` (multipart ``file`` = one chunk, ``cluster_id``,
  ``name``, ``size``, ``size_unit``, ``upload_task_id`` after the first chunk)
  -> ``UploadTask``. [INF] Chunks are ``CHUNK_SIZE`` bytes (the last one
  shorter); ``current_chunk`` counts the chunks received, so a resumed upload
  sends chunk ``current_chunk`` next; ``SUCCESSED`` once ``size`` bytes
  arrived. ``drop-chunk:<name glob>:N`` refuses N chunks (500); a refused first
  chunk leaves no task (the request that would have created it failed as a whole).
  An invalid first chunk (400) leaves none either.
* ``/parse-ovf`` (multipart ``file`` = the OVF descriptor, ``cluster_id``) ->
  ``ParsedOVF`` (:mod:`voyager.ovf`).
* ``/import-vm [VmImportParams]`` -> ``[{task_id, data: Vm}]`` (the VM as imported,
  also when its task fails at once): the VM exists at once (``STOPPED``; on the ``host_id`` given, NICs on the VLANs'
  ``connect_vlan_id``), its disks made from the ``upload_tasks`` (each used
  once), its guest accounts read from its first disk image
  (:mod:`voyager.sim.ssh.workload`). ``vcpu`` / ``memory`` (in ``memory_unit``, a
  ``ByteUnit``; ``B`` when absent [INF]) override the OVF's. A NIC's ``ip_address`` is
  configured once the guest agent runs [INF]. When the ``IMPORT_VM`` task succeeds it starts
  (``status: RUNNING``); a failed import leaves no VM.
* ``/migrate-vm {where, data: {host_id}}`` -> ``[{task_id, data}]``: a running VM
  moves to another host when ``MIGRATE_VM`` ends (``node_ip`` changes then); it
  pauses ``workload.MIGRATION_PAUSE`` real seconds just before.
* ``/delete-vm {where}`` -> ``[{task_id, data: {id}}]``: gone when ``DELETE_VM`` ends.
* ``/get-upload-tasks`` (listed with the package uploads by ``component_rest``), ``/cancel-upload-task {where}`` -> ``[ids]``
  (the uploads and what they hold are removed).
* ``/enter-maintenance-mode-precheck {where}`` -> ``{task_id}``: fails when the
  host is not in a connected cluster of at least 3 hosts.
  ``/enter-maintenance-mode`` and ``/exit-maintenance-mode {where}`` [INF: not
  in the 4.6.0 spec] -> ``[{task_id, data: Host}]``: entering moves the host's
  running VMs to the other hosts (each pausing like a migration) and ends in
  ``host_state.state = MAINTENANCE_MODE``; exiting returns it to ``IN_USE``.
"""
from __future__ import annotations

from typing import Any, Optional

from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request

from voyager.ovf import OvfError, parse_descriptor
from voyager.sim.ssh import workload
from voyager.sim.backend.cluster import is_ipv4
from voyager.sim.backend.errors import SimError
from voyager.sim.tower.common import SUCCESSED, TowerError, cuid, iso, to_bytes
from voyager.sim.tower.rest import TowerRestFrontend
from voyager.sim.tower.schema import FIELDS
from voyager.sim.tower.views import TowerView
from voyager.sim.tower.where import query

CHUNK_SIZE = 4 * 1024 * 1024
VOLUME_TYPES = {".vmdk": "VM_VOLUME_VMDK", ".qcow2": "VM_VOLUME_QCOW2", ".raw": "VM_VOLUME_RAW",
                ".img": "VM_VOLUME_RAW", ".ovf": "OVF"}


class TowerWorkloads:
    def __init__(self, tower) -> None:
        self.tower = tower
        self.uploads: list[dict[str, Any]] = []
        self.maintenance: dict[str, dict[str, Any]] = {}  # tower host id -> host_state
        for key in ("IMPORT_VM", "MIGRATE_VM", "DELETE_VM", "ENTER_MAINTENANCE_MODE_PRECHECK",
                    "ENTER_MAINTENANCE_MODE", "EXIT_MAINTENANCE_MODE"):
            tower.finishers[key] = self._finished

    @property
    def world(self):
        return self.tower.world

    # -- lookups ------------------------------------------------------------------------------
    def local_id(self, kind: str, tower_id: Any) -> Optional[str]:
        prefix = f"{kind}:"
        return next((k[len(prefix):] for k, v in self.tower.local_ids.items() if v == tower_id and k.startswith(prefix)),
                    None)

    def _cluster(self, cluster_id: Any) -> dict[str, Any]:
        return self.tower.connected_cluster(cluster_id)

    def host(self, host_id: Any):
        """The simulated host of tower host id ``host_id`` in the deployed cluster (404 otherwise)."""
        local = self.local_id("host", host_id)
        host = self.world.host_by_uuid(local) if local else None
        if host is None or self.world.cluster is None or host.mgmt_ip not in self.world.cluster.host_ips:
            raise TowerError(f"Host {host_id} not found", status=404, code="HOST_NOT_FOUND")
        return host

    # -- uploads ------------------------------------------------------------------------------
    def upload_chunk(self, form: dict[str, str], data: bytes) -> dict[str, Any]:
        task_id = form.get("upload_task_id")
        if task_id:
            task = self.upload(task_id)
            if task is None:
                raise TowerError(f"UploadTask {task_id} not found", status=404, code="UPLOAD_TASK_NOT_FOUND")
            if task["status"] == SUCCESSED:
                raise TowerError(f"UploadTask {task_id} is already complete", code="UPLOAD_TASK_FINISHED")
        else:
            self._cluster(form.get("cluster_id"))
            name = (form.get("name") or "").strip()
            if not name:
                raise TowerError('"name" is required', code="VALIDATION")
            try:
                size = int(form.get("size") or "")
            except ValueError:
                raise TowerError('"size" must be the file size in bytes', code="VALIDATION") from None
            if (form.get("size_unit") or "B").upper() not in ("B", "BYTE"):
                raise TowerError("size_unit must be B", code="VALIDATION")
            if size <= 0:
                raise TowerError('"size" must be positive', code="VALIDATION")
            ext = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
            now = self.tower.clock.now()
            task = {"id": cuid(), "name": name, "size": size, "chunk_size": CHUNK_SIZE, "current_chunk": 0,
                    "received": 0, "status": "UPLOADING", "resource_type": VOLUME_TYPES.get(ext, "VM_VOLUME_RAW"),
                    "cluster_id": form["cluster_id"], "started_at": now, "finished_at": None, "updated_at": now,
                    "guest_accounts": workload.guest_account_from_image(data), "consumed_by": None}
        last = task["received"] + len(data) >= task["size"]
        if not data or (len(data) != task["chunk_size"] and not last) or task["received"] + len(data) > task["size"]:
            raise TowerError(f"chunk {task['current_chunk']} of {task['name']} must be {task['chunk_size']} bytes "
                             f"(the last one {task['size'] - task['received']})", code="INVALID_CHUNK")
        if self.world.faults.take("drop-chunk", task["name"]):
            self.tower.changed()
            # the first chunk creates the task: when it is not stored, no task is left either
            raise TowerError(f"simulated failure storing chunk {task['current_chunk']} (drop-chunk fault)",
                             status=500, code="UPLOAD_FAILED")
        if not task_id:
            self.uploads.append(task)
        task["received"] += len(data)
        task["current_chunk"] += 1
        task["updated_at"] = self.tower.clock.now()
        if task["received"] == task["size"]:
            task["status"] = SUCCESSED
            task["finished_at"] = task["updated_at"]
        self.tower.changed()
        return task

    def upload(self, task_id: Any) -> Optional[dict[str, Any]]:
        return next((u for u in self.uploads if u["id"] == task_id), None)

    def render_upload(self, task: dict[str, Any]) -> dict[str, Any]:
        return {"id": task["id"], "args": {"name": task["name"], "cluster_id": task["cluster_id"], "size": task["size"]},
                "chunk_size": task["chunk_size"], "current_chunk": task["current_chunk"],
                "finished_at": iso(task["finished_at"]) if task["finished_at"] else None,
                "resource_type": task["resource_type"], "size": task["size"],
                "started_at": iso(task["started_at"]), "status": task["status"], "updatedAt": iso(task["updated_at"])}

    def cancel_uploads(self, where: Any) -> list[str]:
        chosen = query([self.render_upload(u) for u in self.uploads], {"where": where}, FIELDS["get-upload-tasks"])
        ids = {u["id"] for u in chosen}
        self.uploads = [u for u in self.uploads if u["id"] not in ids]
        self.tower.changed()
        return sorted(ids)

    # -- import ------------------------------------------------------------------------------------
    def parse_ovf(self, form: dict[str, str], data: bytes) -> dict[str, Any]:
        self._cluster(form.get("cluster_id"))
        try:
            return parse_descriptor(data).parsed_ovf()
        except OvfError as exc:
            raise TowerError(f"invalid OVF: {exc}", code="INVALID_OVF") from None

    def import_vm(self, params: Any) -> tuple[dict[str, Any], str]:
        """``(the Vm as listed, the IMPORT_VM task id)``."""
        if not isinstance(params, dict):
            raise TowerError("each VmImportParams must be an object", code="VALIDATION")
        for key in ("name", "cluster_id", "upload_tasks", "parsed_ovf"):
            if params.get(key) in (None, "", []):
                raise TowerError(f'"{key}" is required', code="VALIDATION")
        self._cluster(params["cluster_id"])
        parsed = params["parsed_ovf"]
        uploads = []
        for task_id in params["upload_tasks"]:
            task = self.upload(task_id)
            if task is None or task["status"] != SUCCESSED:
                raise TowerError(f"UploadTask {task_id} is not a finished upload", code="UPLOAD_NOT_READY")
            if task["consumed_by"]:
                raise TowerError(f"UploadTask {task_id} was already imported", code="UPLOAD_ALREADY_USED")
            uploads.append(task)
        disks = parsed.get("disks") or []
        if len(disks) != len(uploads):
            raise TowerError(f"parsed_ovf has {len(disks)} disks but {len(uploads)} upload_tasks were given",
                             code="VALIDATION")
        nics = self.vm_nics(params.get("vm_nics"))
        host = self.host(params["host_id"]) if params.get("host_id") else None
        vcpu = int(params.get("vcpu") or parsed.get("vcpu") or 1)
        memory = (to_bytes(params["memory"], params.get("memory_unit"), "memory") if params.get("memory")
                  else int(parsed.get("memory") or 0))
        cpu = parsed.get("cpu") or {"sockets": vcpu, "cores": 1}
        body = {"vm_name": params["name"], "description": params.get("description") or parsed.get("description") or "",
                "vcpu": vcpu, "memory": memory,
                "cpu": {"topology": {"sockets": int(params.get("cpu_sockets") or cpu.get("sockets") or vcpu),
                                     "cores": int(params.get("cpu_cores") or cpu.get("cores") or 1)}},
                "nics": nics, "firmware": parsed.get("firmware") or "BIOS", "ha": params.get("ha", True),
                "disks": [{"type": "disk", "size_in_byte": int(d["size"]), "name": d.get("name")} for d in disks],
                "status": "stopped", "node_ip": (host.storage_ip or host.mgmt_ip) if host else None}
        try:
            vm = self.world.vms.add_imported(body, uploads[0]["guest_accounts"] if uploads else None,
                                             self.tower.clock.now())
        except SimError as exc:
            raise TowerError(f"{exc.msg}: {exc.detail}", code="VALIDATION") from None
        vm_id = self.tower.tower_id("vm", vm["uuid"])
        rendered = self.rendered_vm(vm["uuid"])
        for task in uploads:
            task["consumed_by"] = vm_id
        start = (params.get("status") or "RUNNING") == "RUNNING"
        task = self.tower.create_task("IMPORT_VM", f"Import VM {params['name']}", cluster_id=params["cluster_id"],
                                      resource_type="Vm", resource_id=vm_id, resource_mutation="importVm",
                                      args={"vm_local_id": vm["uuid"], "start": start})
        self.tower.changed()
        return rendered, task["id"]

    def rendered_vm(self, vm_local_id: str) -> dict[str, Any]:
        """The ``Vm`` as listed now. Taken before the VM's task is created: reading the cluster
        ticks the world, and at speed 0 that would already end (and, with a fault, undo) the task."""
        return next(v for v in TowerView(self.tower).vms() if v["local_id"] == vm_local_id)

    def vm_nics(self, nics: Any) -> list[dict[str, Any]]:
        """``VmImportNicParams`` / ``VmNicParams`` as the VM table takes NICs: each on the VLAN
        ``connect_vlan_id``; an ``ip_address`` given here is configured by the guest agent once it
        runs [INF] (as a later ``PUT /api/v2/vms/{uuid}`` would)."""
        out = []
        for nic in nics or []:
            local = self.local_id("vlan", nic.get("connect_vlan_id"))
            if local is None or self.world.network.vlan(local) is None:
                raise TowerError(f"Vlan {nic.get('connect_vlan_id')} not found", status=404, code="VLAN_NOT_FOUND")
            if nic.get("ip_address") and not nic.get("subnet_mask"):
                raise TowerError("vm_nics: subnet_mask is required with ip_address", code="VALIDATION")
            for key in ("ip_address", "subnet_mask", "gateway"):
                if nic.get(key) and not is_ipv4(nic[key]):
                    raise TowerError(f"vm_nics: {key} {nic[key]!r} is not an IPv4 address", code="VALIDATION")
            out.append({"vlan_uuid": local, "model": (nic.get("model") or "VIRTIO").lower(),
                        "ip_address": nic.get("ip_address") or None, "subnet_mask": nic.get("subnet_mask") or None,
                        "gateway": nic.get("gateway") or ""})
        return out

    # -- migration and deletion ----------------------------------------------------------------------
    def select_vms(self, where: Any) -> list[dict[str, Any]]:
        return query(TowerView(self.tower).vms(), {"where": where}, FIELDS["get-vms"])

    def migrate(self, body: Any) -> list[tuple[dict[str, Any], str]]:
        if not isinstance(body, dict) or not isinstance(body.get("where"), dict):
            raise TowerError("VmMigrateParams needs where", code="VALIDATION")
        target = self.host((body.get("data") or {}).get("host_id"))
        out = []
        for view in self.select_vms(body["where"]):
            vm = self.world.vms.get(view["local_id"])
            if vm["status"] != "running":
                raise TowerError(f"VM {vm['vm_name']} is not running: live migration needs a running VM",
                                 code="VM_NOT_RUNNING")
            target_ip = target.storage_ip or target.mgmt_ip
            if vm["node_ip"] == target_ip:
                raise TowerError(f"VM {vm['vm_name']} already runs on host {target.hostname}", code="SAME_HOST")
            task = self.tower.create_task("MIGRATE_VM", f"Migrate VM {vm['vm_name']} to {target.hostname}",
                                          cluster_id=view["cluster"]["id"], resource_type="Vm", resource_id=view["id"],
                                          resource_mutation="migrateVm",
                                          args={"vm_local_id": vm["uuid"], "node_ip": target_ip})
            self._pause(vm, task)
            out.append((view, task["id"]))
        self.tower.changed()
        return out

    def _pause(self, vm: dict[str, Any], task: dict[str, Any]) -> None:
        total = task["pending_for"] + task["executing_for"]
        vm.setdefault("migrations", []).append({"created": task["created_at"], "task_id": task["id"],
                                                "pause_at": max(0.0, total - workload.MIGRATION_PAUSE),
                                                "pause": workload.MIGRATION_PAUSE})
        vm["migrations"] = vm["migrations"][-8:]

    def delete(self, body: Any) -> list[tuple[str, str]]:
        if not isinstance(body, dict) or not isinstance(body.get("where"), dict):
            raise TowerError("VmDeleteParams needs where", code="VALIDATION")
        out = []
        for view in self.select_vms(body["where"]):
            task = self.tower.create_task("DELETE_VM", f"Delete VM {view['name']}", cluster_id=view["cluster"]["id"],
                                          resource_type="Vm", resource_id=view["id"], resource_mutation="deleteVm",
                                          args={"vm_local_id": view["local_id"]})
            out.append((view["id"], task["id"]))
        self.tower.changed()
        return out

    # -- maintenance mode ----------------------------------------------------------------------------
    def _one_host(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("where"), dict):
            raise TowerError("the parameters need where (HostWhereInput)", code="VALIDATION")
        hosts = query(TowerView(self.tower).hosts(), {"where": body["where"]}, FIELDS["get-hosts"])
        if len(hosts) != 1:
            raise TowerError(f"where must select exactly one host ({len(hosts)} selected)", code="VALIDATION")
        return hosts[0]

    def precheck(self, body: Any) -> str:
        host = self._one_host(body)
        others = [h for h in TowerView(self.tower).hosts() if h["id"] != host["id"]]
        task = self.tower.create_task("ENTER_MAINTENANCE_MODE_PRECHECK", f"Precheck maintenance of {host['name']}",
                                      cluster_id=host["cluster"]["id"], resource_type="Host", resource_id=host["id"],
                                      resource_mutation="enterMaintenanceModePrecheck",
                                      args={"other_hosts": len(others)})
        if len(others) < 2:
            task["fail"] = True
        self.tower.changed()
        return task["id"]

    def maintenance_task(self, body: Any, enter: bool) -> tuple[dict[str, Any], str]:
        host = self._one_host(body)
        state = self.maintenance.get(host["id"])
        if enter and state:
            raise TowerError(f"Host {host['name']} is already {state['state']}", code="HOST_IN_MAINTENANCE")
        if not enter and not state:
            raise TowerError(f"Host {host['name']} is not in maintenance mode", code="HOST_NOT_IN_MAINTENANCE")
        key = "ENTER_MAINTENANCE_MODE" if enter else "EXIT_MAINTENANCE_MODE"
        task = self.tower.create_task(key, f"{key.lower().replace('_', ' ')} {host['name']}",
                                      cluster_id=host["cluster"]["id"], resource_type="Host", resource_id=host["id"],
                                      resource_mutation="enterMaintenanceMode" if enter else "exitMaintenanceMode",
                                      args={"host_local_id": host["local_id"]})
        if enter:
            self.maintenance[host["id"]] = {"state": "ENTERING_MAINTENANCE_MODE", "maintenance_job_id": task["id"],
                                            "enter_maintenance_time": iso(task["created_at"])}
            sim_host = self.world.host_by_uuid(host["local_id"])
            others = [self.world.hosts[ip] for ip in self.world.cluster.host_ips if ip != sim_host.mgmt_ip]
            movers = [vm for vm in self.world.vms.vms.values()
                      if vm["status"] == "running" and vm["node_ip"] in (sim_host.storage_ip, sim_host.mgmt_ip)]
            for k, vm in enumerate(movers):
                dest = others[k % len(others)]
                task["args"].setdefault("moves", {})[vm["uuid"]] = dest.storage_ip or dest.mgmt_ip
                self._pause(vm, task)
        self.tower.changed()
        return host, task["id"]

    def host_state(self, host_id: str) -> Optional[dict[str, Any]]:
        state = self.maintenance.get(host_id)
        return dict(state) if state else None

    # -- task completion -------------------------------------------------------------------------------
    def _finished(self, task: dict[str, Any]) -> None:
        ok = task["status"] == SUCCESSED
        args = task["args"]
        vms = self.world.vms
        key = task["key"]
        if key == "IMPORT_VM":
            if args["vm_local_id"] not in vms.vms:
                return
            if not ok:
                vms.remove(args["vm_local_id"])
            elif args.get("start"):
                vms.start_now(args["vm_local_id"], task["finished_at"])
        elif key == "MIGRATE_VM" and ok and args["vm_local_id"] in vms.vms:
            vms.vms[args["vm_local_id"]]["node_ip"] = args["node_ip"]
        elif key == "DELETE_VM" and ok and args["vm_local_id"] in vms.vms:
            vms.remove(args["vm_local_id"])
        elif key == "ENTER_MAINTENANCE_MODE_PRECHECK" and not ok:
            task["error_code"] = "HOST_MAINTENANCE_PRECHECK_FAILED"
            task["error_message"] = "a cluster needs at least 3 hosts for one to enter maintenance mode"
        elif key == "ENTER_MAINTENANCE_MODE":
            host_id = task["resource_id"]
            if not ok:
                self.maintenance.pop(host_id, None)
                return
            for vm_uuid, node_ip in (args.get("moves") or {}).items():
                if vm_uuid in vms.vms:
                    vms.vms[vm_uuid]["node_ip"] = node_ip
            self.maintenance[host_id]["state"] = "MAINTENANCE_MODE"
        elif key == "EXIT_MAINTENANCE_MODE" and ok:
            self.maintenance.pop(task["resource_id"], None)

    # -- state -------------------------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        return {"uploads": self.uploads, "maintenance": self.maintenance}

    def load_state(self, state: dict[str, Any]) -> None:
        self.uploads = list(state.get("uploads") or [])
        self.maintenance = dict(state.get("maintenance") or {})


def _form(request: Request) -> tuple[dict[str, str], bytes]:
    """The form fields and the ``file`` part's bytes (the request schema, checked first, requires it)."""
    return {k: v for k, v in request.form.items()}, request.files["file"].read()


class TowerVmsFrontend(TowerRestFrontend):
    kinds = ("tower",)
    url_map = Map([Rule(f"/v2/api/{op}", methods=["POST"], endpoint="op_" + op.replace("-", "_")) for op in (
        "upload-elf-file", "parse-ovf", "import-vm", "cancel-upload-task", "migrate-vm",
        "delete-vm", "enter-maintenance-mode-precheck", "enter-maintenance-mode", "exit-maintenance-mode")])

    @property
    def workloads(self) -> TowerWorkloads:
        return self.tower.workloads

    def op_upload_elf_file(self, request, machine):
        def run(_: Any) -> dict[str, Any]:
            form, data = _form(request)
            return self.workloads.render_upload(self.workloads.upload_chunk(form, data))

        return self._call(request, run, multipart=True)

    def op_parse_ovf(self, request, machine):
        def run(_: Any) -> dict[str, Any]:
            form, data = _form(request)
            return self.workloads.parse_ovf(form, data)

        return self._call(request, run, multipart=True)

    def op_import_vm(self, request, machine):
        def one(params: Any) -> dict[str, Any]:
            view, task_id = self.workloads.import_vm(params)
            return {"task_id": task_id, "data": view}

        return self._call(request, lambda body: self._mirror(body, one))

    def op_cancel_upload_task(self, request, machine):
        def run(body: Any) -> list[str]:
            if not isinstance(body, dict) or not isinstance(body.get("where"), dict):
                raise TowerError("CancelUploadTaskParams needs where", code="VALIDATION")
            return self.workloads.cancel_uploads(body["where"])

        return self._call(request, run)

    def op_migrate_vm(self, request, machine):
        def run(body: Any) -> list[dict[str, Any]]:
            return [{"task_id": task_id, "data": view} for view, task_id in self.workloads.migrate(body)]

        return self._call(request, run)

    def op_delete_vm(self, request, machine):
        def run(body: Any) -> list[dict[str, Any]]:
            return [{"task_id": task_id, "data": {"id": vm_id}} for vm_id, task_id in self.workloads.delete(body)]

        return self._call(request, run)

    def op_enter_maintenance_mode_precheck(self, request, machine):
        return self._call(request, lambda body: {"task_id": self.workloads.precheck(body)})

    def op_enter_maintenance_mode(self, request, machine):
        def run(body: Any) -> list[dict[str, Any]]:
            host, task_id = self.workloads.maintenance_task(body, enter=True)
            return [{"task_id": task_id, "data": host}]

        return self._call(request, run)

    def op_exit_maintenance_mode(self, request, machine):
        def run(body: Any) -> list[dict[str, Any]]:
            host, task_id = self.workloads.maintenance_task(body, enter=False)
            return [{"task_id": task_id, "data": host}]

        return self._call(request, run)


FRONTENDS = [TowerVmsFrontend]
