"""Performance charts for the delivery report (matplotlib, Agg backend, SVG).

``perf_charts(table, out_dir)`` draws, from :meth:`voyager.steps.perf.PerfResults.table`:

* ``perf-iops.svg`` — one panel per fio profile, a bar per VM plus the total (IOPS);
* ``perf-bandwidth.svg`` — the same for bandwidth (MiB/s);
* ``perf-latency.svg`` — one panel per profile, p50 / p99 / p99.9 latency (ms)
  grouped per VM.

The charts are SVG with their text kept as text (``svg.fonttype: none``): the
browser or viewer that opens the report draws the Chinese titles and labels
with its own fonts (the ``font-family`` list names the common CJK fonts, then
``sans-serif``). A PNG would carry the fonts of the machine that ran the suite,
and a delivery laptop or CI machine without a CJK font would print boxes.

Each bar is labelled with the figure it draws, taken from the same table the
report rows show (a test compares them with the kept fio JSON). Returns the
paths written.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: charts go to files
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)

from voyager.steps.perf import format_figure  # noqa: E402

LATENCIES = (("p50_ms", "p50"), ("p99_ms", "p99"), ("p99_9_ms", "p99.9"))
TOTAL = "合计 total"
# the viewer's fonts draw the text: the CJK fonts of common desktops first, then DejaVu Sans
# (what matplotlib measures the layout with when none of them is installed here)
CJK_FONTS = ("Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei", "PingFang SC", "WenQuanYi Micro Hei",
             "SimHei")
CHART_STYLE = {"svg.fonttype": "none", "font.family": ["sans-serif"],
               "font.sans-serif": [*CJK_FONTS, "DejaVu Sans"]}


def _profiles(table: dict[str, Any]) -> list[str]:
    names: list[str] = []
    for figures in table["vms"].values():
        names += [n for n in figures if n not in names]
    return names


PANEL_W, PANEL_H = 6.0, 3.6  # inches per panel
# margins in inches, fixed instead of fig.tight_layout() (which lays the figure out by drawing it
# once more, half the time of a chart, and measures the text with this machine's fonts, not the
# viewer's): room for the suptitle, the rotated VM names, the tick labels and a panel title
TOP_IN, BOTTOM_IN, LEFT_IN, RIGHT_IN, ROW_GAP_IN, COL_GAP_IN = 0.55, 0.85, 0.95, 0.15, 1.15, 1.0


def _grid(panels: int):
    """A figure with one panel per profile, two per row; returns (figure, flat list of axes)."""
    cols = min(2, panels)
    rows = (panels + cols - 1) // cols
    width, height = PANEL_W * cols, PANEL_H * rows
    fig, axes = plt.subplots(rows, cols, figsize=(width, height), squeeze=False)
    axes_h = (height - TOP_IN - BOTTOM_IN - ROW_GAP_IN * (rows - 1)) / rows
    axes_w = (width - LEFT_IN - RIGHT_IN - COL_GAP_IN * (cols - 1)) / cols
    fig.subplots_adjust(left=LEFT_IN / width, right=1 - RIGHT_IN / width, bottom=BOTTOM_IN / height,
                        top=1 - TOP_IN / height, hspace=ROW_GAP_IN / axes_h, wspace=COL_GAP_IN / axes_w)
    flat = [ax for row in axes for ax in row]
    for ax in flat[panels:]:
        ax.set_visible(False)
    return fig, flat


def chart_series(table: dict[str, Any]) -> dict[str, dict[str, dict[str, float]]]:
    """What the charts draw: ``{chart: {profile: {bar label: value}}}`` (charts ``iops``,
    ``bw_mib`` with a ``total`` bar, ``p50_ms``/``p99_ms``/``p99_9_ms`` per VM)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for metric in ("iops", "bw_mib", "p50_ms", "p99_ms", "p99_9_ms"):
        out[metric] = {}
        for profile in _profiles(table):
            values = {vm: table["vms"][vm].get(profile, {}).get(metric, 0.0) for vm in table["vms"]}
            if metric in ("iops", "bw_mib"):
                values[TOTAL] = table["total"].get(profile, {}).get(metric, 0.0)
            out[metric][profile] = values
    return out


def _bars(table: dict[str, Any], metric: str, title: str, unit: str, path: Path) -> Path:
    profiles = _profiles(table)
    fig, axes = _grid(len(profiles))
    series = chart_series(table)[metric]
    for ax, profile in zip(axes, profiles):
        labels = list(series[profile])
        values = list(series[profile].values())
        vms = labels[:-1]
        bars = ax.bar(range(len(labels)), values, color=["#4C78A8"] * len(vms) + ["#F58518"])
        for bar, value in zip(bars, values):
            ax.annotate(format_figure(value), (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=7)
        ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=7)
        ax.set_title(profile, fontsize=9)
        ax.set_ylabel(unit, fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.savefig(path)
    plt.close(fig)
    return path


def _latency(table: dict[str, Any], path: Path) -> Path:
    profiles = _profiles(table)
    vms = list(table["vms"])
    fig, axes = _grid(len(profiles))
    width = 0.8 / len(LATENCIES)
    series = chart_series(table)
    for ax, profile in zip(axes, profiles):
        for k, (metric, label) in enumerate(LATENCIES):
            values = [series[metric][profile][vm] for vm in vms]
            xs = [i + (k - 1) * width for i in range(len(vms))]
            bars = ax.bar(xs, values, width, label=label)
            for bar, value in zip(bars, values):
                ax.annotate(format_figure(value), (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                            ha="center", va="bottom", fontsize=6)
        ax.set_xticks(range(len(vms)), vms, rotation=30, ha="right", fontsize=7)
        ax.set_title(profile, fontsize=9)
        ax.set_ylabel("ms", fontsize=8)
        ax.legend(fontsize=7)
    fig.suptitle("完成延迟百分位 clat percentiles (ms)", fontsize=10)
    fig.savefig(path)
    plt.close(fig)
    return path


def perf_charts(table: dict[str, Any], out_dir: Path) -> list[Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with plt.rc_context(CHART_STYLE), warnings.catch_warnings():
        # measuring CJK text with a font that lacks it warns; the viewer draws it, not matplotlib
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font", category=UserWarning)
        return [
            _bars(table, "iops", "IOPS（每台虚拟机与合计 per VM and total）", "IOPS", out / "perf-iops.svg"),
            _bars(table, "bw_mib", "带宽（每台虚拟机与合计 per VM and total）", "MiB/s", out / "perf-bandwidth.svg"),
            _latency(table, out / "perf-latency.svg"),
        ]
