"""Fisheye front-ends for networks (VDS/VLAN) and VMs.

* ``GET  /api/v2/network/vds`` → list; ``POST`` → ``{job_id}`` (NETWORK_CREATE_VDS);
  ``GET /api/v2/network/vds/{uuid}``; ``GET|POST /api/v2/network/vds/{uuid}/vlans``
  (list ``{entities, total}``; creation is synchronous and returns the VLAN).
* ``GET  /api/v2/vms`` → list [INF]; ``POST`` → ``{job_id}`` (VM_CREATE, the
  job's KVM_VM resource holds the uuid); ``GET|PUT|DELETE /api/v2/vms/{uuid}``
  (PUT with ``nics`` → VM_UPDATE job, DELETE → VM_DELETE job);
  ``POST /api/v2/vms/{uuid}/start|stop|reboot`` → job.
"""
from __future__ import annotations

from werkzeug.routing import Map, Rule

from voyager.sim.backend.errors import form_error
from voyager.sim.fisheye.base import locked, ok, require_fields
from voyager.sim.fisheye.core import FisheyeFrontend

VM_FIELDS = {"vm_name": (str,), "vcpu": (int,), "memory": (int,), "nics": (list,), "disks": (list,)}


class FisheyeNetwork(FisheyeFrontend):
    url_map = Map([
        Rule("/api/v2/network/vds", methods=["GET"], endpoint="list_vds"),
        Rule("/api/v2/network/vds", methods=["POST"], endpoint="create_vds"),
        Rule("/api/v2/network/vds/<vds_uuid>", methods=["GET"], endpoint="get_vds"),
        Rule("/api/v2/network/vds/<vds_uuid>/vlans", methods=["GET"], endpoint="list_vlans"),
        Rule("/api/v2/network/vds/<vds_uuid>/vlans", methods=["POST"], endpoint="create_vlan"),
    ])

    def list_vds(self, request, machine):
        with self.world.lock:
            net = self.world.network
            return ok([net.render_vds(v) for v in net.vdses.values()])

    @locked
    def create_vds(self, request, machine):
        body = self.json_body(request)
        require_fields(body, {"name": (str,), "bond_mode": (str,), "hosts_associated": (list,)})
        if not body["name"].strip():
            raise form_error("name", "must not be empty")
        for i, entry in enumerate(body["hosts_associated"]):
            require_fields(entry, {"host_uuid": (str,), "nics_associated": (list,)}, f"hosts_associated[{i}].")
        return ok({"job_id": self.world.network.create_vds_job(body)})

    def get_vds(self, request, machine, vds_uuid):
        with self.world.lock:
            net = self.world.network
            return ok(net.render_vds(net.get_vds(vds_uuid)))

    def list_vlans(self, request, machine, vds_uuid):
        with self.world.lock:
            net = self.world.network
            entities = [net.render_vlan(v) for v in net.vlans_of(vds_uuid)]
            return ok({"entities": entities, "total": len(entities)})

    @locked
    def create_vlan(self, request, machine, vds_uuid):
        body = self.json_body(request)
        require_fields(body, {"name": (str,), "vlan_id": (int,)})
        if not body["name"].strip():
            raise form_error("name", "must not be empty")
        net = self.world.network
        return ok(net.render_vlan(net.create_vlan(vds_uuid, body)))


class FisheyeVms(FisheyeFrontend):
    url_map = Map([
        Rule("/api/v2/vms", methods=["GET"], endpoint="list_vms"),
        Rule("/api/v2/vms", methods=["POST"], endpoint="create_vm"),
        Rule("/api/v2/vms/<vm_uuid>", methods=["GET"], endpoint="get_vm"),
        Rule("/api/v2/vms/<vm_uuid>", methods=["PUT"], endpoint="update_vm"),
        Rule("/api/v2/vms/<vm_uuid>", methods=["DELETE"], endpoint="delete_vm"),
        Rule("/api/v2/vms/<vm_uuid>/<any(start, stop, reboot):action>", methods=["POST"], endpoint="power"),
    ])

    def list_vms(self, request, machine):
        with self.world.lock:
            vms = self.world.vms
            return ok([vms.render(vm) for vm in vms.vms.values()])

    @locked
    def create_vm(self, request, machine):
        body = self.json_body(request)
        require_fields(body, VM_FIELDS)
        if not body["vm_name"].strip():
            raise form_error("vm_name", "must not be empty")
        if body["vcpu"] < 1:
            raise form_error("vcpu", "must be at least 1")
        if body["memory"] <= 0:
            raise form_error("memory", "must be positive")
        for i, nic in enumerate(body["nics"]):
            require_fields(nic, {"vlan_uuid": (str,)}, f"nics[{i}].")
        for i, disk in enumerate(body["disks"]):
            require_fields(disk, {"type": (str,)}, f"disks[{i}].")
        return ok({"job_id": self.world.vms.create_job(body)})

    def get_vm(self, request, machine, vm_uuid):
        with self.world.lock:
            vms = self.world.vms
            return ok(vms.render(vms.get(vm_uuid)))

    @locked
    def update_vm(self, request, machine, vm_uuid):
        body = self.json_body(request)
        require_fields(body, {"nics": (list,)})
        return ok({"job_id": self.world.vms.update_job(vm_uuid, body)})

    @locked
    def delete_vm(self, request, machine, vm_uuid):
        return ok({"job_id": self.world.vms.power_job(vm_uuid, "delete")})

    @locked
    def power(self, request, machine, vm_uuid, action):
        return ok({"job_id": self.world.vms.power_job(vm_uuid, action)})


FRONTENDS = [FisheyeNetwork, FisheyeVms]
