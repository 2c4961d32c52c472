"""fio JSON parsing, totals, thresholds, the fio command, and the charts' figures
against the kept fio JSON (voyager.steps.perf, voyager.report.charts)."""
from __future__ import annotations

import copy
import json

import pytest

from voyager.report.charts import TOTAL, chart_series, perf_charts
from voyager.steps import perf


def _side(iops: float, bw_kib: int, p50: int, p99: int, p999: int) -> dict:
    """A read/write section as fio 3.x writes it (values in ns for latencies)."""
    return {
        "io_bytes": bw_kib * 1024 * 60, "io_kbytes": bw_kib * 60, "bw_bytes": bw_kib * 1024, "bw": bw_kib,
        "iops": iops, "runtime": 60001, "total_ios": int(iops * 60), "short_ios": 0, "drop_ios": 0,
        "slat_ns": {"min": 1843, "max": 1022335, "mean": 6021.55, "stddev": 4011.8, "N": int(iops * 60)},
        "clat_ns": {"min": 86272, "max": 43515903, "mean": p50 * 1.1, "stddev": 401234.5, "N": int(iops * 60),
                    "percentile": {"1.000000": 136192, "5.000000": 181248, "10.000000": 214016,
                                   "20.000000": 268288, "30.000000": 321536, "40.000000": 382976,
                                   "50.000000": p50, "60.000000": 544768, "70.000000": 659456,
                                   "80.000000": 839680, "90.000000": 1187840, "95.000000": 1548288,
                                   "99.000000": p99, "99.500000": 3358720, "99.900000": p999,
                                   "99.950000": 9371648, "99.990000": 20054016}},
        "lat_ns": {"min": 90213, "max": 43531118, "mean": p50 * 1.12, "stddev": 401551.2, "N": int(iops * 60)},
        "bw_min": int(bw_kib * 0.8), "bw_max": int(bw_kib * 1.2), "bw_agg": 100.0, "bw_mean": float(bw_kib),
        "bw_dev": 2210.4, "bw_samples": 240, "iops_min": int(iops * 0.8), "iops_max": int(iops * 1.2),
        "iops_mean": iops, "iops_stddev": 552.6, "iops_samples": 240,
    }


ZERO = {"io_bytes": 0, "io_kbytes": 0, "bw_bytes": 0, "bw": 0, "iops": 0.0, "runtime": 0, "total_ios": 0,
        "short_ios": 0, "drop_ios": 0, "slat_ns": {"min": 0, "max": 0, "mean": 0.0, "stddev": 0.0, "N": 0},
        "clat_ns": {"min": 0, "max": 0, "mean": 0.0, "stddev": 0.0, "N": 0},
        "lat_ns": {"min": 0, "max": 0, "mean": 0.0, "stddev": 0.0, "N": 0}, "bw_min": 0, "bw_max": 0,
        "bw_agg": 0.0, "bw_mean": 0.0, "bw_dev": 0.0, "bw_samples": 0, "iops_min": 0, "iops_max": 0,
        "iops_mean": 0.0, "iops_stddev": 0.0, "iops_samples": 0}


def _job(name: str, rw: str, bs: str, section: dict, groupid: int) -> dict:
    reading = rw in ("read", "randread")
    return {
        "jobname": name, "groupid": groupid, "error": 0, "eta": 0, "elapsed": 71,
        "job options": {"name": name, "stonewall": "", "rw": rw, "bs": bs, "iodepth": "16", "numjobs": "2"},
        "read": section if reading else copy.deepcopy(ZERO), "write": copy.deepcopy(ZERO) if reading else section,
        "trim": copy.deepcopy(ZERO), "sync": {"total_ios": 0, "lat_ns": {"min": 0, "max": 0, "mean": 0.0,
                                                                          "stddev": 0.0, "N": 0}},
        "job_runtime": 120002, "usr_cpu": 4.52, "sys_cpu": 13.93, "ctx": 1611093, "majf": 0, "minf": 86,
        "iodepth_level": {"1": 0.1, "2": 0.1, "4": 0.1, "8": 0.1, "16": 99.9, "32": 0.0, ">=64": 0.0},
        "iodepth_submit": {"0": 0.0, "4": 100.0, "8": 0.0, "16": 0.0, "32": 0.0, "64": 0.0, ">=64": 0.0},
        "iodepth_complete": {"0": 0.0, "4": 99.9, "8": 0.1, "16": 0.1, "32": 0.0, "64": 0.0, ">=64": 0.0},
        "latency_ns": {"2": 0.0, "4": 0.0, "10": 0.0, "20": 0.0, "50": 0.0, "100": 0.0, "250": 0.0, "500": 0.0,
                       "750": 0.0, "1000": 0.0},
        "latency_us": {"2": 0.0, "4": 0.0, "10": 0.0, "20": 0.0, "50": 0.0, "100": 0.02, "250": 21.4,
                       "500": 35.5, "750": 18.9, "1000": 9.1},
        "latency_ms": {"2": 11.2, "4": 2.9, "10": 0.8, "20": 0.1, "50": 0.01, "100": 0.0, "250": 0.0, "500": 0.0,
                       "750": 0.0, "1000": 0.0, "2000": 0.0, ">=2000": 0.0},
        "latency_depth": 16, "latency_target": 0, "latency_percentile": 100.0, "latency_window": 0,
    }


def fio_document() -> dict:
    """A whole ``fio --output-format=json`` document (fio 3.29) for the four profiles."""
    return {
        "fio version": "fio-3.29", "timestamp": 1764615600, "timestamp_ms": 1764615600123,
        "time": "Mon Dec  1 19:00:00 2025",
        "global options": {"ioengine": "libaio", "direct": "1", "filename": "voyager-fio.dat", "size": "2G",
                           "time_based": "", "ramp_time": "10", "runtime": "60", "group_reporting": ""},
        "jobs": [
            _job("4k-randread", "randread", "4k", _side(30125.383, 120501, 880640, 2899968, 4947968), 0),
            _job("4k-randwrite", "randwrite", "4k", _side(7012.5, 28050, 4046848, 12124160, 19791872), 1),
            _job("1m-seqread", "read", "1M", _side(655.2, 670925, 10682368, 31588352, 51118080), 2),
            _job("1m-seqwrite", "write", "1M", _side(261.0, 267264, 27131904, 80216064, 129236992), 3),
        ],
        "disk_util": [{"name": "vda", "read_ios": 1846921, "write_ios": 436702, "read_merges": 0,
                       "write_merges": 12, "read_ticks": 1893221, "write_ticks": 1711036,
                       "in_queue": 3604257, "util": 99.93}],
    }


def test_parse_real_fio_schema():
    text = "fio: this platform does not support process shared mutexes, forcing use of threads\n" + json.dumps(
        fio_document(), indent=2)
    figures = perf.parse_fio_json(text)
    assert set(figures) == set(perf.PROFILE_NAMES)
    rr = figures["4k-randread"]
    assert rr.iops == pytest.approx(30125.383)
    assert rr.bw_mib == pytest.approx(120501 / 1024)
    assert rr.p50_ms == pytest.approx(0.88064)
    assert rr.p99_ms == pytest.approx(2.899968)
    assert rr.p99_9_ms == pytest.approx(4.947968)
    sw = figures["1m-seqwrite"]  # a write profile reads the "write" section, not the zero "read" one
    assert sw.iops == pytest.approx(261.0) and sw.bw_mib == pytest.approx(261.0)
    assert sw.p99_ms == pytest.approx(80.216064)


@pytest.mark.parametrize("mutate, words", [
    (lambda d: d["jobs"].pop(0), "4k-randread"),
    (lambda d: d["jobs"][1].update(error=5), "error=5"),
    (lambda d: d["jobs"][2]["read"]["clat_ns"].pop("percentile"), "1m-seqread"),
])
def test_parse_refuses_incomplete_documents(mutate, words):
    doc = fio_document()
    mutate(doc)
    with pytest.raises(perf.FioOutputError, match=words):
        perf.parse_fio_json(json.dumps(doc))


def test_parse_refuses_non_json():
    with pytest.raises(perf.FioOutputError, match="JSON"):
        perf.parse_fio_json("fio: failed to open file\n")


def test_totals_sum_throughput_and_take_the_worst_latency():
    a = perf.Figures(100, 10, 1, 2, 3)
    b = perf.Figures(300, 30, 2, 1, 5)
    total = perf.totals({"vm1": {"p": a}, "vm2": {"p": b}})["p"]
    assert (total.iops, total.bw_mib) == (400, 40)
    assert (total.p50_ms, total.p99_ms, total.p99_9_ms) == (2, 2, 5)


def test_thresholds_defaults_config_and_overrides():
    table = perf.thresholds()
    assert table["4k-randread"]["iops"] == perf.DEFAULT_THRESHOLDS["4k-randread"]["iops"]
    table = perf.thresholds({"4k-randread": {"iops": 8000}}, ["1m-seqwrite.p99_ms=150", "4k-randread.iops=9000"])
    assert table["4k-randread"]["iops"] == 9000  # the option wins over the config
    assert table["1m-seqwrite"]["p99_ms"] == 150
    assert table["4k-randwrite"] == perf.DEFAULT_THRESHOLDS["4k-randwrite"]


@pytest.mark.parametrize("override, words", [
    ("4k-randread.iops", "格式"), ("8k-randread.iops=1", "没有性能场景"), ("4k-randread.speed=1", "没有指标"),
    ("4k-randread.iops=fast", "不是数字"),
])
def test_threshold_overrides_are_checked(override, words):
    with pytest.raises(perf.ThresholdError, match=words):
        perf.thresholds(None, [override])


def test_check_marks_each_figure_against_its_limit():
    figures = perf.Figures(iops=4000, bw_mib=20, p50_ms=1, p99_ms=25, p99_9_ms=40)
    verdicts = {v.metric: v for v in perf.check(figures, perf.DEFAULT_THRESHOLDS["4k-randread"])}
    assert not verdicts["iops"].ok and verdicts["iops"].expected == "≥ 5,000"
    assert verdicts["bw_mib"].ok
    assert verdicts["p50_ms"].ok
    assert not verdicts["p99_ms"].ok and verdicts["p99_ms"].expected == "≤ 20.00"
    assert verdicts["p99_9_ms"].ok


def test_fio_command_and_config():
    job = perf.FioJob.from_config({"runtime": 30, "iodepth": 4, "1m-seqread": {"iodepth": 2, "numjobs": 3}})
    cmd = job.command()
    assert cmd.startswith("fio --output-format=json ")
    for word in ("--direct=1", "--runtime=30", "--ramp_time=10", "--size=2G", "--time_based",
                 "--group_reporting", "--name=4k-randread", "--rw=randread", "--name=1m-seqwrite", "--bs=1M"):
        assert word in cmd
    profiles = {p.name: p for p in job.profiles}
    assert profiles["4k-randread"].iodepth == 4
    assert (profiles["1m-seqread"].iodepth, profiles["1m-seqread"].numjobs) == (2, 3)
    assert job.seconds == 4 * 40
    assert cmd.count("--stonewall") == 4


def test_charts_draw_the_figures_of_the_kept_fio_json(tmp_path):
    """What the charts and the report table show equals what the kept fio JSON says."""
    results = perf.PerfResults()
    kept = {}
    for k, vm in enumerate(("voyager-test-01", "voyager-test-02")):
        doc = fio_document()
        doc["jobs"][0]["read"]["iops"] += 1000 * k
        path = tmp_path / f"{vm}.fio.json"
        path.write_text(json.dumps(doc), encoding="utf-8")
        kept[vm] = path
        results.add(vm, path.read_text(encoding="utf-8"))
    table = results.table()
    series = chart_series(table)
    for vm, path in kept.items():
        again = perf.parse_fio_json(path.read_text(encoding="utf-8"))
        for profile, figures in again.items():
            for metric, value in figures.as_dict().items():
                assert series[metric][profile][vm] == value
                assert table["vms"][vm][profile][metric] == value
    assert series["iops"]["4k-randread"][TOTAL] == pytest.approx(2 * 30125.383 + 1000)
    paths = perf_charts(table, tmp_path / "charts")
    assert [p.name for p in paths] == ["perf-iops.svg", "perf-bandwidth.svg", "perf-latency.svg"]
    for p in paths:  # SVG whose Chinese stays text (drawn by the viewer's fonts, never boxes)
        svg = p.read_text(encoding="utf-8")
        assert svg.lstrip().startswith("<?xml") and "<svg" in svg
        assert "每台虚拟机" in svg or "完成延迟百分位" in svg
        assert "Noto Sans CJK SC" in svg and "sans-serif" in svg


class _RunState:
    """The two reads FioRuns and perf make of the run state."""

    def __init__(self, facts: dict):
        self.facts = facts

    def get(self, section, key=None, default=None):
        return (self.facts.get(section) or {}).get(key, default) if key else self.facts.get(section, default)


class _Ready:
    def __init__(self):
        self.ensured = []

    def ensure(self, specs):
        self.ensured.append([s.name for s in specs])


def test_the_report_check_alone_shows_the_kept_results_and_runs_fio_only_where_none_is_kept(tmp_path):
    """只重跑性能报告检查：有保留结果（同一 fio 命令）的虚拟机沿用之，仍在进行中的（运行状态有记录）或没有保留的才重新运行 fio。"""
    from types import SimpleNamespace

    from fixtures.perf import FioRuns

    kept = tmp_path / "fio-results"
    kept.mkdir()
    job = perf.FioJob.from_config({})
    output = json.dumps(fio_document())
    for name in ("vm-a", "vm-b"):
        (kept / f"{name}.json").write_text(json.dumps({"command": job.command(), "output": output}), encoding="utf-8")
    (kept / "vm-c.json").write_text(json.dumps({"command": "fio --other", "output": output}), encoding="utf-8")
    run_state = _RunState({perf.STATE: {"vm-b": {perf.FIO_KEY: {"command": job.command()}}}})  # vm-b's in flight
    specs = [SimpleNamespace(name=n) for n in ("vm-a", "vm-b", "vm-c", "vm-d")]
    runs = FioRuns(specs, None, SimpleNamespace(fio={}), tmp_path / "artifacts" / "fio", set(), _Ready(), run_state,
                   charts_dir=tmp_path / "charts", kept_dir=kept)
    ran = []
    runs._one = lambda spec: ran.append(spec.name)  # no guest here: record which VMs would run fio
    runs.run()
    assert sorted(ran) == ["vm-b", "vm-c", "vm-d"]  # in flight, another command, nothing kept
    assert set(runs.results.figures) == {"vm-a"} and (tmp_path / "artifacts" / "fio" / "vm-a.fio.json").exists()
    assert "沿用先前运行中完成的 fio 结果" in runs.how["vm-a"] and "合计" in runs.how
    charts = runs.charts()  # drawn by the spawned process
    assert charts and all(path.exists() and path.parent == tmp_path / "charts" for path in charts)
