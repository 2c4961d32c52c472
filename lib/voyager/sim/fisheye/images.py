"""Fisheye front-end for images and chunked uploads (ISO and SVT/VMTools).

* ``GET    /api/v2/images`` → ``{images: [...]}`` (ISO images; [INF] unfinished upload
  volumes too, ``resource_state: "uploading"`` with their ``to_upload``)
* ``POST   /api/v2/images/upload/volume?name&size&description&device=nfs&task_id``
  → ``{image_uuid, zbs_volume_id, chunk_size, image_path, to_upload}``
* ``POST   /api/v2/images/upload?zbs_volume_id&chunk_num&image_uuid``
  (multipart field ``file``) → ``{chunk_num, to_upload}``
* ``DELETE /api/v2/images/{uuid}`` aborts an upload or deletes an image
* ``POST   /api/v2/svt_image/create_volume?name&size``,
  ``POST   /api/v2/svt_image/upload_template?zbs_volume_id&chunk_num&image_uuid``
  and ``GET /api/v2/svt_image`` (``{images: [...]}``, [INF]) do the same for SVT.

The chunk body streams straight to its place in the volume's data file (see
:mod:`voyager.sim.backend.images`); the handler holds the world lock only around
bookkeeping, never while bytes flow, so parallel chunks are written in parallel.
"""
from __future__ import annotations

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule

from voyager.sim.backend.errors import SimError, form_error
from voyager.sim.fisheye.base import int_arg, locked, ok, str_arg
from voyager.sim.fisheye.core import FisheyeFrontend
from voyager.sim.web.frontend import drain


class FisheyeImages(FisheyeFrontend):
    url_map = Map([
        Rule("/api/v2/images", methods=["GET"], endpoint="list_images"),
        Rule("/api/v2/images/upload/volume", methods=["POST"], endpoint="create_iso_volume"),
        Rule("/api/v2/images/upload", methods=["POST"], endpoint="upload_iso_chunk"),
        Rule("/api/v2/images/<image_uuid>", methods=["DELETE"], endpoint="delete_image"),
        Rule("/api/v2/svt_image", methods=["GET"], endpoint="list_svt"),
        Rule("/api/v2/svt_image/create_volume", methods=["POST"], endpoint="create_svt_volume"),
        Rule("/api/v2/svt_image/upload_template", methods=["POST"], endpoint="upload_svt_chunk"),
    ])

    def list_images(self, request, machine):
        with self.world.lock:
            return ok({"images": self.world.images.listing("iso")})

    def list_svt(self, request, machine):
        with self.world.lock:
            return ok({"images": self.world.images.listing("svt")})

    @locked
    def create_iso_volume(self, request, machine):
        device = request.args.get("device")
        if device not in (None, "", "nfs"):
            raise form_error("device", "only nfs is supported")
        return ok(self.world.images.create_volume(str_arg(request, "name"), int_arg(request, "size"),
                                                  description=request.args.get("description") or "", kind="iso"))

    @locked
    def create_svt_volume(self, request, machine):
        return ok(self.world.images.create_volume(str_arg(request, "name"), int_arg(request, "size"), kind="svt"))

    def upload_iso_chunk(self, request, machine):
        return self._upload(request, "iso")

    def upload_svt_chunk(self, request, machine):
        return self._upload(request, "svt")

    def _upload(self, request, kind):
        zbs_volume_id = str_arg(request, "zbs_volume_id")
        image_uuid = str_arg(request, "image_uuid")
        chunk_num = int_arg(request, "chunk_num")
        if request.mimetype != "multipart/form-data":
            raise form_error("file", "the chunk must be sent as multipart/form-data")
        with self.world.lock:
            receiver = self.world.images.begin_chunk(image_uuid, zbs_volume_id, chunk_num, kind=kind)
        request._get_file_stream = receiver.stream_factory  # the parser streams into the receiver
        try:
            files = request.files
        except SimError:
            receiver.abort()
            drain(request)
            raise
        except (HTTPException, ValueError, OSError):
            receiver.abort()
            drain(request)
            raise form_error("file", "malformed multipart body") from None
        return ok(receiver.finish(len(files.getlist("file")) == 1 and len(files) == 1))

    @locked
    def delete_image(self, request, machine, image_uuid):
        self.world.images.delete(image_uuid)
        return ok({})


FRONTENDS = [FisheyeImages]
