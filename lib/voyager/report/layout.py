"""Where a suite run's deliverables go.

``reports/<集群名称>/`` is the handover folder and holds only deliverables:

* ``<YYYYmmdd-HHMMSS>/`` — one folder per run: ``report.html`` (that run),
  ``junit.xml`` and ``artifacts/`` (payloads and other files the checks attach);
* ``report.html`` — the cumulative report: every check of the suite with its
  final result and the run it came from (``voyager.report.cumulative``);
* ``allure-results/`` — the Allure results of every run of the plan, so Allure
  shows retries and history.

Run state, ledger, evidence logs, the report history, the demo plan and its
backups live in the state dir (default ``.voyager/<集群名称>/``), never here.
``--html`` / ``--junitxml`` / ``--alluredir`` given by the engineer are respected.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Optional

import pytest

LAYOUT_KEY = pytest.StashKey["ReportLayout"]()
CUMULATIVE_NAME = "report.html"
RUN_REPORT_NAME = "report.html"
JUNIT_NAME = "junit.xml"
ARTIFACTS = "artifacts"
ALLURE_DIR = "allure-results"
ARTIFACT_SCHEME = "voyager-artifact:"


@dataclass
class ReportLayout:
    root: Path  # reports/<cluster>/
    run_id: str
    started: datetime

    @property
    def run_dir(self) -> Path:
        return self.root / self.run_id

    @property
    def cumulative(self) -> Path:
        return self.root / CUMULATIVE_NAME

    @property
    def allure_dir(self) -> Path:
        return self.root / ALLURE_DIR

    @property
    def artifacts_dir(self) -> Path:
        return self.run_dir / ARTIFACTS

    @classmethod
    def create(cls, root: Path, now: Optional[datetime] = None) -> "ReportLayout":
        """A new run folder name under ``root`` (``-2``, ``-3`` … when a run of the
        same second exists already: a run never overwrites another)."""
        started = (now or datetime.now()).astimezone()
        base = started.strftime("%Y%m%d-%H%M%S")
        run_id, n = base, 1
        while (Path(root) / run_id).exists():
            n += 1
            run_id = f"{base}-{n}"
        return cls(Path(root), run_id, started)

    def artifact(self, name: str, content: str) -> str:
        """Write ``content`` to ``<run>/artifacts/<name>``; returns the link
        placeholder each report resolves relative to itself (:func:`resolve_links`)."""
        safe = re.sub(r"[^\w.\-]+", "_", name).strip("._") or "artifact"
        path = self.artifacts_dir / safe
        from voyager.fsutil import atomic_write

        atomic_write(path, content)
        return f"{ARTIFACT_SCHEME}{self.run_id}/{ARTIFACTS}/{safe}"


    def artifact_file(self, name: str, data: bytes) -> str:
        """Write ``data`` (a binary artifact, e.g. a chart) to ``<run>/artifacts/<name>``;
        returns its link placeholder (see :meth:`artifact`)."""
        safe = re.sub(r"[^\w.\-]+", "_", name).strip("._") or "artifact"
        self.artifacts_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.artifacts_dir / f".{safe}.tmp"
        tmp.write_bytes(data)
        tmp.replace(self.artifacts_dir / safe)
        return f"{ARTIFACT_SCHEME}{self.run_id}/{ARTIFACTS}/{safe}"


def resolve_links(html_text: str, report_dir: Path, root: Path) -> str:
    """Artifact placeholders (``voyager-artifact:<run>/artifacts/x``) as links
    relative to the report at ``report_dir`` (files under ``root``)."""
    def repl(match: re.Match) -> str:
        target = Path(root) / match.group(1)
        return os.path.relpath(target, report_dir).replace(os.sep, "/")

    return re.sub(re.escape(ARTIFACT_SCHEME) + r"([^\\\"'<>\s]+)", repl, html_text)


def reports_root(config: pytest.Config, rootpath: Path) -> Path:
    """``--reports-dir`` (relative to the invocation dir), else ``<rootdir>/reports``."""
    given = config.getoption("voyager_reports_dir", None)
    if not given:
        return Path(rootpath) / "reports"
    path = Path(given).expanduser()
    return path if path.is_absolute() else Path(config.invocation_params.dir) / path


def get_layout(config: pytest.Config) -> Optional[ReportLayout]:
    return config.stash.get(LAYOUT_KEY, None)


def apply_defaults(config: pytest.Config, root: Path) -> Optional[ReportLayout]:
    """Set the run's report paths unless the engineer gave them: per-run HTML
    (self-contained) and JUnit XML in the run folder, Allure results in the
    plan's results folder. Must run before pytest-html, junitxml and allure
    read their options (the suite plugin's tryfirst ``pytest_configure``).
    ``--collect-only`` runs nothing and leaves no report."""
    if config.option.collectonly:
        return None
    layout = config.stash.get(LAYOUT_KEY, None) or ReportLayout.create(root)
    config.stash[LAYOUT_KEY] = layout
    opt = config.option
    if hasattr(opt, "htmlpath") and not opt.htmlpath:
        opt.htmlpath = str(layout.run_dir / RUN_REPORT_NAME)
        opt.self_contained_html = True
    if hasattr(opt, "xmlpath") and not opt.xmlpath:
        opt.xmlpath = str(layout.run_dir / JUNIT_NAME)
    if hasattr(opt, "allure_report_dir") and not opt.allure_report_dir:
        opt.allure_report_dir = str(layout.allure_dir)
    return layout
