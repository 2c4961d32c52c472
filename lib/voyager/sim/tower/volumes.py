"""CloudTower: VM volumes and ``/create-vm`` — the disk-image route to a test VM
(official OpenAPI spec 4.6.0; API-FACTS: "``/create-vm`` from an uploaded image"). The
walkthrough's step 09 imports an OVF (:mod:`voyager.sim.tower.vms`), and the suites keep
doing so; this is the spec's other way to make a VM from a disk image.

How the spec builds a VM from a disk image:

1. ``/upload-elf-file`` (served by :mod:`voyager.sim.tower.vms`) uploads the image: an
   ``UploadTask`` of ``resource_type`` ``VM_VOLUME_QCOW2`` / ``VM_VOLUME_RAW`` /
   ``VM_VOLUME_VMDK`` (by the file's extension);
2. ``/import-vm-volume [ImportVmVolumeParams {upload_task_id, name, storage_policy,
   cluster_id}]`` -> ``[{task_id, data: VmVolume}]`` makes a VM volume of it;
3. ``/create-vm [VmCreationParams]`` with ``vm_disks.mount_disks [{vm_volume_id, bus, boot}]``
   -> ``[{task_id, data: Vm}]``. ``MountDisksParams`` take a ``vm_volume_id``: an
   ``ElfImage`` or ``ContentLibraryImage`` can only be a CD-ROM (``VmCdRomParams``), so a
   disk made from an uploaded image is a VM volume.

Also ``/get-vm-volumes`` and ``/delete-vm-volume {where}`` -> ``[{task_id, data: {id}}]``.

Rules (inferred ones marked [INF]):

* import: the upload must be finished (``SUCCESSED``), a ``VM_VOLUME_*`` of the cluster given
  and not used yet (by ``/import-vm`` or another volume). The volume is listed at once
  (``entityAsyncStatus: CREATING``) and ready when ``IMPORT_VM_VOLUME`` ends; a failed import
  removes it and frees the upload. Its ``size`` is the uploaded bytes [INF: the image's virtual
  size is not read]; ``path`` ``/usr/share/smartx/volumes/<local_id>`` [INF]. It carries the
  image's guest account (:func:`voyager.sim.ssh.workload.guest_account_from_image`).
* create: a connected cluster; ``host_id`` (optional) one of its hosts; each NIC on a VLAN of it
  (an ``ip_address`` there is configured by the guest agent once it runs [INF]);
  ``vm_disks``: ``mount_disks`` ready volumes not mounted elsewhere, ``mount_new_create_disks``
  new blank volumes (listed, mounted), ``mount_cd_roms`` empty drives — an ``elf_image_id`` /
  ``content_library_image_id`` is a 404: the simulated CloudTower keeps no image library; at
  least one disk or CD-ROM, each ``boot`` number once. ``memory`` is in ``memory_unit``
  (``ByteUnit``, ``B`` when absent [INF]); ``vcpu`` is ``cpu_sockets`` × ``cpu_cores`` and must
  equal it when given [INF]; ``status`` ``RUNNING`` or ``STOPPED`` (others 400 [INF]). The VM is
  listed at once (``STOPPED``) and starts when ``CREATE_VM`` ends with ``status: RUNNING``; a
  failed creation removes it, unmounts its volumes and drops its new blank ones. It boots from
  its lowest ``boot`` number: a volume imported from an image is an installed guest (guest agent,
  SSH with the image's account once its NIC has an address, like an imported OVF); anything
  else makes a plain VM whose guest agent never runs.
* delete: a mounted volume is refused (400 ``VM_VOLUME_MOUNTED`` [INF]); the others are gone
  when ``DELETE_VM_VOLUME`` ends. Deleting a VM deletes its disks: its volumes leave the list.
"""
from __future__ import annotations

import uuid
from typing import Any, Optional

from werkzeug.routing import Map, Rule

from voyager.sim.backend.errors import SimError
from voyager.sim.tower.common import FAILED, SUCCESSED, TowerError, cuid, iso, to_bytes
from voyager.sim.tower.rest import TowerRestFrontend
from voyager.sim.tower.schema import FIELDS
from voyager.sim.tower.views import TowerView
from voyager.sim.tower.where import query

IMPORT_TASK, CREATE_TASK, DELETE_TASK = "IMPORT_VM_VOLUME", "CREATE_VM", "DELETE_VM_VOLUME"
IMAGE_UPLOADS = ("VM_VOLUME_QCOW2", "VM_VOLUME_RAW", "VM_VOLUME_VMDK")
VOLUME_PATH = "/usr/share/smartx/volumes/{}"  # [INF]


class TowerVolumes:
    """``tower.volumes``: VM volumes and the VMs ``/create-vm`` makes from them."""

    def __init__(self, tower) -> None:
        self.tower = tower
        # {id, local_id, name, cluster_id, size, policy, created_at, task_id, source: image|blank,
        #  upload_id, guest_accounts, vm_local_id (the VM it is mounted on)}
        self.volumes: list[dict[str, Any]] = []
        for key in (IMPORT_TASK, CREATE_TASK, DELETE_TASK):
            tower.finishers[key] = self._finished

    @property
    def world(self):
        return self.tower.world

    # -- volumes ------------------------------------------------------------------------------------
    def _live(self) -> list[dict[str, Any]]:
        """The volumes, without those whose VM was deleted (a VM goes with its disks)."""
        vms = self.world.vms.vms
        kept = [v for v in self.volumes if not v["vm_local_id"] or v["vm_local_id"] in vms]
        if len(kept) != len(self.volumes):
            self.volumes = kept
            self.tower.changed()
        return self.volumes

    def _ready(self, volume: dict[str, Any]) -> bool:
        task = self.tower.task(volume["task_id"])
        return task is None or task["status"] == SUCCESSED

    def render(self, volume: dict[str, Any]) -> dict[str, Any]:
        """A ``VmVolume`` (OpenAPI)."""
        return {
            "cluster": TowerView(self.tower).nested_cluster(volume["cluster_id"]), "description": None,
            "elf_storage_policy": volume["policy"],
            "entityAsyncStatus": None if self._ready(volume) else "CREATING", "guest_size_usage": None,
            "guest_used_size": None, "id": volume["id"], "labels": [], "local_created_at": iso(volume["created_at"]),
            "local_id": volume["local_id"], "lun": None, "mounting": bool(volume["vm_local_id"]),
            "name": volume["name"], "path": VOLUME_PATH.format(volume["local_id"]), "sharing": False,
            "size": volume["size"], "type": "KVM_VOLUME", "unique_logical_size": None, "unique_size": None,
            "used_size": None, "used_size_usage": None, "vm_disks": [],
        }

    def listed(self) -> list[dict[str, Any]]:
        return [self.render(v) for v in self._live()]

    def _volume(self, volume_id: Any) -> Optional[dict[str, Any]]:
        return next((v for v in self._live() if v["id"] == volume_id), None)

    def import_volume(self, params: dict[str, Any]) -> dict[str, Any]:
        cluster = self.tower.connected_cluster(params["cluster_id"])
        workloads = self.tower.workloads
        upload = workloads.upload(params["upload_task_id"])
        if upload is None:
            raise TowerError(f"UploadTask {params['upload_task_id']} not found", status=404,
                             code="UPLOAD_TASK_NOT_FOUND")
        if upload["status"] != SUCCESSED:
            raise TowerError(f"UploadTask {upload['id']} is not a finished upload", code="UPLOAD_NOT_READY")
        if upload["resource_type"] not in IMAGE_UPLOADS:
            raise TowerError(f"UploadTask {upload['id']} holds {upload['resource_type']}, not a disk image "
                             f"({', '.join(IMAGE_UPLOADS)})", code="UPLOAD_NOT_A_VOLUME")
        if upload["cluster_id"] != cluster["id"]:
            raise TowerError(f"UploadTask {upload['id']} was uploaded to another cluster", code="VALIDATION")
        if upload["consumed_by"]:
            raise TowerError(f"UploadTask {upload['id']} was already imported", code="UPLOAD_ALREADY_USED")
        volume = {"id": cuid(), "local_id": str(uuid.uuid4()), "name": params["name"], "cluster_id": cluster["id"],
                  "size": upload["size"], "policy": params["storage_policy"], "created_at": self.tower.clock.now(),
                  "source": "image", "upload_id": upload["id"], "guest_accounts": upload.get("guest_accounts"),
                  "vm_local_id": None}
        task = self.tower.create_task(IMPORT_TASK, f"Import VM volume {volume['name']}", cluster_id=cluster["id"],
                                      resource_type="VmVolume", resource_id=volume["id"],
                                      resource_mutation="importVmVolume")
        volume["task_id"] = task["id"]
        upload["consumed_by"] = volume["id"]
        self.volumes.append(volume)
        self.tower.changed()
        return volume

    def delete(self, where: Any) -> list[tuple[str, str]]:
        chosen = query(self.listed(), {"where": where}, FIELDS["get-vm-volumes"])
        mounted = [v["name"] for v in chosen if v["mounting"]]
        if mounted:
            raise TowerError(f"VM volume {mounted[0]} is mounted on a VM: delete the VM or unmount it first",
                             code="VM_VOLUME_MOUNTED")
        out = []
        for view in chosen:
            task = self.tower.create_task(DELETE_TASK, f"Delete VM volume {view['name']}",
                                          cluster_id=view["cluster"]["id"], resource_type="VmVolume",
                                          resource_id=view["id"], resource_mutation="deleteVmVolume")
            out.append((view["id"], task["id"]))
        self.tower.changed()
        return out

    # -- /create-vm ------------------------------------------------------------------------------------
    def _disks(self, vm_disks: dict[str, Any], cluster_id: str, vm_name: str, now: float) -> tuple[list, list]:
        """``(devices sorted by boot, new blank volumes)``; a device is ``(boot, fisheye disk, volume)``."""
        devices: list[tuple[int, dict[str, Any], Optional[dict[str, Any]]]] = []
        blank: list[dict[str, Any]] = []
        for mount in vm_disks.get("mount_disks") or []:
            volume = self._volume(mount["vm_volume_id"])
            if volume is None or volume["cluster_id"] != cluster_id:
                raise TowerError(f"VmVolume {mount['vm_volume_id']} not found in cluster {cluster_id}", status=404,
                                 code="VM_VOLUME_NOT_FOUND")
            if not self._ready(volume):
                raise TowerError(f"VmVolume {volume['name']} is still being created", code="VM_VOLUME_NOT_READY")
            if volume["vm_local_id"] or any(v is volume for _, _, v in devices):
                raise TowerError(f"VmVolume {volume['name']} is already mounted", code="VM_VOLUME_MOUNTED")
            devices.append((mount["boot"], {"type": "disk", "size_in_byte": volume["size"], "name": volume["name"],
                                            "bus": mount["bus"].lower()}, volume))
        for mount in vm_disks.get("mount_new_create_disks") or []:
            spec = mount["vm_volume"]
            volume = {"id": cuid(), "local_id": str(uuid.uuid4()), "name": spec["name"], "cluster_id": cluster_id,
                      "size": to_bytes(spec["size"], spec.get("size_unit"), "vm_volume.size"),
                      "policy": spec["elf_storage_policy"], "created_at": now, "source": "blank", "upload_id": None,
                      "guest_accounts": None, "vm_local_id": None}
            blank.append(volume)
            devices.append((mount["boot"], {"type": "disk", "size_in_byte": volume["size"], "name": volume["name"],
                                            "bus": mount["bus"].lower()}, volume))
        for cdrom in vm_disks.get("mount_cd_roms") or []:
            for key, kind in (("elf_image_id", "ElfImage"), ("content_library_image_id", "ContentLibraryImage")):
                if cdrom.get(key):
                    raise TowerError(f"{kind} {cdrom[key]} not found (the simulated CloudTower keeps no image "
                                     f"library)", status=404, code="IMAGE_NOT_FOUND")
            devices.append((cdrom["boot"], {"type": "cdrom", "path": ""}, None))
        if not devices:
            raise TowerError(f"VM {vm_name} needs at least one disk or CD-ROM (vm_disks)", code="VALIDATION")
        boots = [boot for boot, _, _ in devices]
        if len(set(boots)) != len(boots):
            raise TowerError(f"vm_disks: boot numbers must differ ({sorted(boots)})", code="VALIDATION")
        return sorted(devices, key=lambda d: d[0]), blank

    def create_vm(self, params: dict[str, Any]) -> tuple[dict[str, Any], str]:
        """``(the Vm as listed, the CREATE_VM task id)``."""
        workloads = self.tower.workloads
        cluster = self.tower.connected_cluster(params["cluster_id"])
        sockets, cores = params["cpu_sockets"], params["cpu_cores"]
        if sockets <= 0 or cores <= 0:
            raise TowerError("cpu_sockets and cpu_cores must be positive", code="VALIDATION")
        vcpu = params.get("vcpu", sockets * cores)
        if vcpu != sockets * cores:
            raise TowerError(f"vcpu {vcpu} must be cpu_sockets × cpu_cores ({sockets * cores})", code="VALIDATION")
        if params["status"] not in ("RUNNING", "STOPPED"):
            raise TowerError(f"status must be RUNNING or STOPPED, not {params['status']}", code="VALIDATION")
        memory = to_bytes(params["memory"], params.get("memory_unit"), "memory")
        nics = workloads.vm_nics(params["vm_nics"])
        host = workloads.host(params["host_id"]) if params.get("host_id") else None
        now = self.tower.clock.now()
        devices, blank = self._disks(params["vm_disks"], cluster["id"], params["name"], now)
        boot_volume = devices[0][2]
        installed = bool(boot_volume and boot_volume["source"] == "image")
        body = {"vm_name": params["name"], "description": params.get("description") or "", "vcpu": vcpu,
                "memory": memory, "cpu": {"topology": {"sockets": sockets, "cores": cores}}, "nics": nics,
                "firmware": params["firmware"], "ha": params["ha"], "disks": [d for _, d, _ in devices],
                "status": "stopped", "node_ip": (host.storage_ip or host.mgmt_ip) if host else None}
        try:
            vm = self.world.vms.add_imported(body, boot_volume["guest_accounts"] if installed else None, now,
                                             profile="linux" if installed else "plain")
        except SimError as exc:
            raise TowerError(f"{exc.msg}: {exc.detail}", code="VALIDATION") from None
        vm_id = self.tower.tower_id("vm", vm["uuid"])
        rendered = self.tower.workloads.rendered_vm(vm["uuid"])
        task = self.tower.create_task(CREATE_TASK, f"Create VM {params['name']}", cluster_id=cluster["id"],
                                      resource_type="Vm", resource_id=vm_id, resource_mutation="createVm",
                                      args={"vm_local_id": vm["uuid"], "start": params["status"] == "RUNNING",
                                            "blank": [v["id"] for v in blank]})
        for volume in blank:
            volume["task_id"] = task["id"]
            self.volumes.append(volume)
        for _, _, volume in devices:
            if volume is not None:
                volume["vm_local_id"] = vm["uuid"]
        self.tower.changed()
        return rendered, task["id"]

    # -- task completion ---------------------------------------------------------------------------------
    def _finished(self, task: dict[str, Any]) -> None:
        ok = task["status"] == SUCCESSED
        key = task["key"]
        if key == IMPORT_TASK and task["status"] == FAILED:
            volume = next((v for v in self.volumes if v["id"] == task["resource_id"]), None)
            if volume is not None:
                self.volumes.remove(volume)
                upload = self.tower.workloads.upload(volume["upload_id"])
                if upload is not None:
                    upload["consumed_by"] = None
        elif key == DELETE_TASK and ok:
            self.volumes = [v for v in self.volumes if v["id"] != task["resource_id"]]
        elif key == CREATE_TASK:
            args, vms = task["args"], self.world.vms
            if args["vm_local_id"] not in vms.vms:
                return
            if ok:
                if args.get("start"):
                    vms.start_now(args["vm_local_id"], task["finished_at"])
                return
            vms.remove(args["vm_local_id"])
            self.volumes = [v for v in self.volumes if v["id"] not in args.get("blank", [])]
            for volume in self.volumes:
                if volume["vm_local_id"] == args["vm_local_id"]:
                    volume["vm_local_id"] = None

    # -- state ---------------------------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        return {"volumes": self.volumes}

    def load_state(self, state: dict[str, Any]) -> None:
        self.volumes = list(state.get("volumes") or [])


class TowerVolumesFrontend(TowerRestFrontend):
    kinds = ("tower",)
    url_map = Map([Rule(f"/v2/api/{op}", methods=["POST"], endpoint="op_" + op.replace("-", "_")) for op in (
        "import-vm-volume", "get-vm-volumes", "delete-vm-volume", "create-vm")])

    @property
    def volumes(self) -> TowerVolumes:
        return self.tower.volumes

    def op_import_vm_volume(self, request, machine):
        def one(params: Any) -> dict[str, Any]:
            volume = self.volumes.import_volume(params)
            return {"task_id": volume["task_id"], "data": self.volumes.render(volume)}

        return self._call(request, lambda body: self._mirror(body, one))

    def op_get_vm_volumes(self, request, machine):
        def run(body: Any) -> list[dict[str, Any]]:
            self.tower.advance()
            return self._list("get-vm-volumes", body, self.volumes.listed())

        return self._call(request, run)

    def op_delete_vm_volume(self, request, machine):
        def run(body: Any) -> list[dict[str, Any]]:
            return [{"task_id": task_id, "data": {"id": volume_id}}
                    for volume_id, task_id in self.volumes.delete(body["where"])]

        return self._call(request, run)

    def op_create_vm(self, request, machine):
        def one(params: Any) -> dict[str, Any]:
            view, task_id = self.volumes.create_vm(params)
            return {"task_id": task_id, "data": view}

        return self._call(request, lambda body: self._mirror(body, one))


FRONTENDS = [TowerVolumesFrontend]
