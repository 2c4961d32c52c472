"""Benchmark: the simulator's memory while an image (2 GiB by default) is uploaded in 8 MiB chunks.

Starts ``voyager sim --plan demo --speed 0`` in a subprocess, deploys and
configures the demo cluster over HTTP, then uploads a generated file (never
written to disk) through ``/api/v2/images/upload/volume`` + ``/api/v2/images/upload``
and reads the simulator process's ``VmRSS`` before and ``VmHWM`` (peak resident
set) after from ``/proc/<pid>/status``. Prints one JSON object; exit status 1
when the simulator's peak resident set (``VmHWM``, the whole process since it
started) reaches the limit (200 MiB) or the md5 differs.

    python3 bench/sim_upload_memory.py [--size-mib 2048] [--order sequential|pairs|reverse] [--streams 1]

``--order pairs`` sends each pair of chunks swapped (1, 0, 3, 2, ...), ``reverse``
the last chunk first: the simulator writes every chunk at its offset whatever
the order. ``--streams N`` sends the chunks on N parallel connections (chunk
``i`` on connection ``i % N``).
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import struct
import sys
import threading
import time

from simproc import MIB, configured_sim, proc_status

from voyager.sim.testing import SimHttp  # noqa: E402

LIMIT_MIB = 200
VIP = "127.10.20.10"


def chunk_of(i: int, total: int, chunk: int, base: bytes) -> bytes:
    """Chunk i of the generated file (distinct content per chunk, nothing stored)."""
    return (struct.pack(">Q", i) + base[8:])[:min(chunk, total - i * chunk)]


def order_of(n: int, mode: str) -> list[int]:
    if mode == "sequential":
        return list(range(n))
    if mode == "reverse":
        return list(range(n - 1, -1, -1))
    out = []
    for i in range(0, n, 2):
        out += [i + 1, i] if i + 1 < n else [i]
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=2048)
    parser.add_argument("--order", choices=("sequential", "pairs", "reverse"), default="sequential")
    parser.add_argument("--streams", type=int, default=1)
    args = parser.parse_args(argv)
    total = args.size_mib * MIB
    with configured_sim() as (proc, endpoints, plan, walk):
        http = SimHttp(endpoints)
        http.token = walk.token
        vol = http.post(VIP, "/api/v2/images/upload/volume",
                        params={"name": "cloudtower-bench.iso", "size": total, "device": "nfs", "task_id": 2}).json()["data"]
        chunk = vol["chunk_size"]
        base = os.urandom(chunk)
        by_index = {}
        md5 = hashlib.md5()
        for i in range((total + chunk - 1) // chunk):
            md5.update(chunk_of(i, total, chunk, base))
        before = proc_status(proc.pid)
        order = order_of(len(vol["to_upload"]), args.order)
        failures = []

        def send(mine):
            client = SimHttp(endpoints)  # its own session: its own connection
            client.token = walk.token
            for i in mine:
                data = chunk_of(i, total, chunk, base)
                r = client.post(VIP, "/api/v2/images/upload",
                                params={"zbs_volume_id": vol["zbs_volume_id"], "chunk_num": i,
                                        "image_uuid": vol["image_uuid"]},
                                files={"file": ("cloudtower-bench.iso", io.BytesIO(data), "application/octet-stream")})
                if r.status_code != 200:
                    failures.append(f"chunk {i}: HTTP {r.status_code} {r.text[:200]}")
                    return
                by_index[i] = True

        t0 = time.monotonic()
        threads = [threading.Thread(target=send, args=(order[k::args.streams],)) for k in range(args.streams)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.monotonic() - t0
        if failures:
            raise SystemExit(failures[0])
        after = proc_status(proc.pid)
        images = http.get(VIP, "/api/v2/images").json()["data"]["images"]
        got = next(im for im in images if im["uuid"] == vol["image_uuid"])["md5"]
    growth = after["VmHWM"] - before["VmRSS"]
    result = {
        "file_mib": args.size_mib, "chunk_mib": chunk / MIB, "chunks": len(by_index), "order": args.order,
        "streams": args.streams,
        "seconds": round(seconds, 1), "throughput_mib_s": round(args.size_mib / seconds, 1),
        "rss_before_mib": round(before["VmRSS"], 1), "peak_hwm_after_mib": round(after["VmHWM"], 1),
        "peak_growth_mib": round(growth, 1), "limit_mib": LIMIT_MIB, "md5_ok": got == md5.hexdigest(),
    }
    result["ok"] = result["md5_ok"] and after["VmHWM"] < LIMIT_MIB
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
