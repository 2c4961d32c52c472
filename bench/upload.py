"""Benchmark: the suite's own uploader against the simulator, beside curl.

Starts ``voyager sim --plan demo --speed 0`` in a subprocess, deploys and
configures the demo cluster, writes a file of ``--size-mib`` MiB and uploads it
three times to the cluster's ISO endpoint (``/api/v2/images/upload`` over
https, through the VIP as the suite does):

1. **ours** — ``voyager.steps.upload.ensure_image(fisheye, ISO, media)``, the
   code path of step 04 (parallel connections, streamed multipart, md5 in a
   worker); ``peak_rss_mib`` is this process's peak resident set (``VmHWM``)
   right after it, before anything else is done;
2. **curl sequential** — one ``curl`` process posting every chunk in order on
   one kept-alive connection (``--next`` per chunk, read from a config file so
   the session token is not on a command line);
3. **curl four streams** — four such ``curl`` processes at once, chunk ``i``
   sent by process ``i % 4``.

Each run uses its own upload volume; curl sends the same chunks (the file
split at the volume's ``chunk_size``) to the same endpoint. MiB/s = file size /
wall time from the first chunk to the last answer (ours includes its existence
check, volume creation and final listing). ``md5_ok``: the md5 the simulator
computed for our upload equals the file's; the curl uploads are checked too
(``curl_md5_ok``). ``sim_parallel_speedup`` = curl four streams / curl
sequential, i.e. how much faster the simulator ingests four streams than one.
``cpu_ceiling``: the fastest our upload could be on this machine's cores if our
client spent only the md5 it must compute (measured here) and the simulator what
it spent during our upload, beside the speed each ratio target needs; the same bound
with the least the simulator spent per GiB in any round (``ours_max_any_streams``, in
practice curl's one stream) holds whatever number of connections we chose.
Prints progress to stderr and one JSON object on its last line:

    python3 bench/upload.py --size-mib 2048 [--connections 4] [--repeat 1] [--tmp DIR]

Addresses: loopback only (the demo plan's 127.x addresses, served by the simulator).
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from simproc import MIB, configured_sim, cpu_seconds, proc_status

from voyager.clients import Endpoints, FisheyeClient, HttpClient  # noqa: E402
from voyager.steps import upload  # noqa: E402
from voyager.steps.media import MediaFile  # noqa: E402


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def own_cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def write_source(path: Path, size: int) -> str:
    """A file of ``size`` bytes, distinct content per MiB; returns its md5."""
    md5 = hashlib.md5()
    seed = hashlib.sha256(b"voyager-bench").digest() * (MIB // 32)
    with open(path, "wb") as fh:
        left, i = size, 0
        while left > 0:
            block = (i.to_bytes(8, "big") + seed[8:])[:min(MIB, left)]
            fh.write(block)
            md5.update(block)
            left -= len(block)
            i += 1
    return md5.hexdigest()


def md5_cpu_s_per_gib(mib: int = 256) -> float:
    """CPU seconds this machine's md5 (hashlib: OpenSSL) takes per GiB, hashing from memory:
    the least our uploader must spend, since it verifies the upload by the file's md5."""
    block = hashlib.sha256(b"md5-probe").digest() * (MIB // 32)
    digest = hashlib.md5()
    t0 = time.thread_time()
    for _ in range(mib):
        digest.update(block)
    return (time.thread_time() - t0) * 1024 / mib


def ceiling(result: dict, md5_cost: float, cores: int, sim_least: float) -> dict:
    """Whether the speed targets fit in this machine's CPU (see bench/README.md): our uploader
    and the simulator share ``cores``; at best our client spends only the md5 it must compute,
    and the simulator what it spent per GiB during our upload. ``ours_max_mib_per_s`` is then
    the fastest our upload can be; each target needs at least ``needed_mib_per_s``.
    ``ours_max_any_streams_mib_per_s`` is the same bound with the least the simulator spent
    per GiB in any round of this run, whichever uploader and number of streams (one curl
    stream, in practice): no choice of connections can beat it."""
    sim = result["cpu_s_per_gib"]["ours"]["sim"]
    best = cores * 1024 / (md5_cost + sim)
    any_streams = cores * 1024 / (md5_cost + sim_least)
    needed = {"vs_curl_sequential": 1.2 * result["curl_sequential_mib_per_s"],
              "vs_curl_parallel4": 0.8 * result["curl_parallel4_mib_per_s"]}
    return {"cores": cores, "md5_cpu_s_per_gib": round(md5_cost, 2), "sim_cpu_s_per_gib": sim,
            "sim_least_cpu_s_per_gib": round(sim_least, 2),
            "ours_max_mib_per_s": round(best, 1), "ours_max_any_streams_mib_per_s": round(any_streams, 1),
            "needed_mib_per_s": {k: round(v, 1) for k, v in needed.items()},
            "fits": {k: best >= v for k, v in needed.items()},
            "fits_any_streams": {k: any_streams >= v for k, v in needed.items()}}


def split(path: Path, chunk_size: int, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    parts = []
    with open(path, "rb") as src:
        i = 0
        while True:
            part = folder / f"chunk-{i:05d}"
            with open(part, "wb") as dst:
                copied = 0
                while copied < chunk_size:
                    block = src.read(min(MIB, chunk_size - copied))
                    if not block:
                        break
                    dst.write(block)
                    copied += len(block)
            if copied == 0:
                part.unlink()
                break
            parts.append(part)
            i += 1
    return parts


class Bench:
    def __init__(self, sim_map: dict, plan, tmp: Path) -> None:
        self.plan = plan
        self.vip = plan.cluster.vip
        self.https_port = int(sim_map["https"].rsplit(":", 1)[1])
        self.tmp = tmp
        self.endpoints = Endpoints.simulated(sim_map, plan, known_certs=tmp / "known_certs.json")
        self.fisheye = FisheyeClient(self.endpoints, self.vip)
        self.fisheye.login(plan.cluster.admin_user, plan.cluster.admin_password)
        answer = HttpClient(self.endpoints, self.vip, "fisheye").request(
            "POST", "/api/v3/sessions", json={"username": plan.cluster.admin_user,
                                              "password": plan.cluster.admin_password, "encrypted": False})
        self.token = answer.json()["token"]  # for curl (a second session of the same user)

    def ours(self, path: Path, name: str, connections: int) -> tuple[float, dict]:
        linked = self.tmp / name
        os.link(path, linked)
        try:
            t0 = time.monotonic()
            image, _ = upload.ensure_image(self.fisheye, upload.ISO, MediaFile(linked, linked.stat().st_size),
                                           connections=connections)
            return time.monotonic() - t0, image
        finally:
            linked.unlink()

    def curl(self, parts: list[Path], size: int, name: str, streams: int) -> tuple[float, str]:
        vol = self.fisheye.post("/api/v2/images/upload/volume", params={"name": name, "size": size, "device": "nfs"})
        configs = []
        for k in range(streams):
            lines = []
            for i in range(k, len(parts), streams):
                if lines:
                    lines.append("next")
                lines += [
                    "insecure", "silent", "show-error",
                    f'connect-to = "{self.vip}:443:127.0.0.1:{self.https_port}"',
                    f'header = "x-smartx-token: {self.token}"',
                    f'form = "file=@{parts[i]};type=application/octet-stream;filename={name}"',
                    'output = "/dev/null"', 'write-out = "%{http_code} %{num_connects}\\n"',
                    f'url = "https://{self.vip}/api/v2/images/upload?zbs_volume_id={vol["zbs_volume_id"]}'
                    f'&chunk_num={i}&image_uuid={vol["image_uuid"]}"',
                ]
            config = self.tmp / f"curl-{name}-{k}.conf"
            config.write_text("\n".join(lines) + "\n")
            config.chmod(0o600)
            configs.append(config)
        t0 = time.monotonic()
        procs = [subprocess.Popen(["curl", "-K", str(c)], stdout=subprocess.PIPE, text=True) for c in configs]
        answers = [line.split() for p in procs for line in p.communicate()[0].splitlines()]
        seconds = time.monotonic() - t0
        for c in configs:
            c.unlink()
        bad = [code for code, _ in answers if code != "200"]
        if bad or len(answers) != len(parts):
            raise SystemExit(f"curl ({streams} streams): answers {bad[:5]} / {len(answers)} chunks")
        connects = sum(int(n) for _, n in answers)
        if connects != streams:  # each curl process keeps its one connection for all its chunks
            raise SystemExit(f"curl ({streams} streams) opened {connects} connections")
        image = next(i for i in upload.listed_images(self.fisheye, upload.ISO) if i["uuid"] == vol["image_uuid"])
        return seconds, image.get("md5") or ""

    def drop(self, image_uuid: str) -> None:
        self.fisheye.delete(f"/api/v2/images/{image_uuid}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=2048)
    parser.add_argument("--connections", type=int, default=upload.DEFAULT_CONNECTIONS)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each uploader; the best time counts")
    parser.add_argument("--tmp", type=Path, default=None, help="folder for the file and its chunks")
    args = parser.parse_args(argv)
    if shutil.which("curl") is None:
        raise SystemExit("curl is not installed (apt-get install -y curl)")
    size = args.size_mib * MIB
    tmp = Path(tempfile.mkdtemp(prefix="voyager-bench-upload-", dir=args.tmp))
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, tmp, True)
        proc, sim_map, plan, walk = stack.enter_context(configured_sim())
        source = tmp / "source.bin"
        log(f"writing {args.size_mib} MiB ...")
        md5 = write_source(source, size)
        os.sync()  # no write-back of the source competes with the first uploader
        bench = Bench(sim_map, plan, tmp)
        probe = upload.Volume.from_answer(bench.fisheye.post(
            "/api/v2/images/upload/volume", params={"name": "probe.iso", "size": 1, "device": "nfs"}))
        bench.drop(probe.image_uuid)  # only asked for the chunk size
        parts = split(source, probe.chunk_size, tmp / "chunks")
        os.sync()
        runs: dict[str, list[dict]] = {"ours": [], "curl1": [], "curl4": []}
        rss, rss_before = None, proc_status("self")["VmRSS"]
        for r in range(args.repeat):  # interleaved rounds: a load change on the machine hits all three
            for what in runs:
                sim0, self0, kids0 = cpu_seconds(proc.pid), own_cpu(resource.RUSAGE_SELF), \
                    own_cpu(resource.RUSAGE_CHILDREN)
                if what == "ours":
                    seconds, image = bench.ours(source, f"bench-ours-{r}.iso", args.connections)
                    rss = rss or proc_status("self")["VmHWM"]
                    ok, client = image["md5"] == md5, own_cpu(resource.RUSAGE_SELF) - self0
                    bench.drop(image["uuid"])
                else:
                    streams = int(what[-1])
                    seconds, got = bench.curl(parts, size, f"bench-{what}-{r}.iso", streams)
                    ok, client = got == md5, own_cpu(resource.RUSAGE_CHILDREN) - kids0
                runs[what].append({"seconds": seconds, "ok": ok, "client_cpu": client,
                                   "sim_cpu": cpu_seconds(proc.pid) - sim0})
                log(f"round {r + 1} {what}: {args.size_mib / seconds:.1f} MiB/s, client CPU {client:.1f} s, "
                    f"simulator CPU {runs[what][-1]['sim_cpu']:.1f} s, load {os.getloadavg()[0]:.1f}")
        sim_rss = proc_status(proc.pid)["VmHWM"]
        bench.endpoints.close()

    def best(what: str) -> dict:
        return min(runs[what], key=lambda run: run["seconds"])

    def rate(what: str) -> float:
        return round(args.size_mib / best(what)["seconds"], 1)

    result = {
        "size_mib": args.size_mib,
        "mib_per_s": rate("ours"),
        "curl_sequential_mib_per_s": rate("curl1"),
        "curl_parallel4_mib_per_s": rate("curl4"),
        "peak_rss_mib": round(rss, 1),
        "rss_before_upload_mib": round(rss_before, 1),
        "md5_ok": all(run["ok"] for run in runs["ours"]),
        "connections": args.connections,
        "repeat": args.repeat,
        "curl_md5_ok": all(run["ok"] for run in runs["curl1"] + runs["curl4"]),
        "sim_peak_rss_mib": round(sim_rss, 1),
        "cpu_s_per_gib": {what: {"client": round(best(what)["client_cpu"] * 1024 / args.size_mib, 1),
                                 "sim": round(best(what)["sim_cpu"] * 1024 / args.size_mib, 1)} for what in runs},
        "all_mib_per_s": {what: [round(args.size_mib / run["seconds"], 1) for run in runs[what]] for what in runs},
    }
    result["vs_curl_sequential"] = round(result["mib_per_s"] / result["curl_sequential_mib_per_s"], 2)
    result["vs_curl_parallel4"] = round(result["mib_per_s"] / result["curl_parallel4_mib_per_s"], 2)
    result["sim_parallel_speedup"] = round(result["curl_parallel4_mib_per_s"] / result["curl_sequential_mib_per_s"], 2)
    sim_least = min(run["sim_cpu"] for rounds in runs.values() for run in rounds) * 1024 / args.size_mib
    result["cpu_ceiling"] = ceiling(result, md5_cpu_s_per_gib(), os.cpu_count() or 1, sim_least)
    print(json.dumps(result))
    return 0 if result["md5_ok"] and result["curl_md5_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
