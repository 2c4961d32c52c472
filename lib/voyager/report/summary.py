"""The first screen (and first printed page) of the delivery report: who and
what was delivered, the versions and serials found, the plan, the target,
when, totals per stage 01-11 and the verdict."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Optional

from voyager.report.check import esc, outcome_label, stage_of
from voyager.report.i18n import stage_name, t

STAGES = [f"{n:02d}" for n in range(1, 12)]
COUNTED = ("passed", "failed", "error", "skipped")
WORST = ("error", "failed", "skipped", "xfailed", "xpassed", "passed")


@dataclass
class StageTotals:
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # stage -> outcome -> n

    def add(self, nodeid: str, outcome: str) -> None:
        stage = self.counts.setdefault(stage_of(nodeid), {})
        stage[outcome] = stage.get(outcome, 0) + 1

    def total(self, outcome: Optional[str] = None) -> int:
        return sum(n for c in self.counts.values() for o, n in c.items() if outcome in (None, o))

    @classmethod
    def of(cls, results: Iterable[tuple[str, str]]) -> "StageTotals":
        totals = cls()
        for nodeid, outcome in results:
            totals.add(nodeid, outcome)
        return totals


def final_outcomes(tests: dict[str, list[dict[str, Any]]]) -> list[tuple[str, str]]:
    """``[(nodeid, outcome)]`` from pytest-html's test data, the worst row of
    each check (a failed call and a teardown error count once)."""
    out = []
    for nodeid, rows in tests.items():
        results = [str(r.get("result", "")).lower() for r in rows] or ["notrun"]
        out.append((nodeid, min(results, key=lambda o: WORST.index(o) if o in WORST else 0)))
    return out


def delivery_facts(run: Any) -> dict[str, Any]:
    """What the summary shows about the delivery, from the plan and the run
    state (serials and versions the checks read)."""
    plan = run.plan
    state = run.run_state
    hosts_state = (state.section("hosts") if state is not None else {}) or {}
    cluster_state = (state.section("cluster") if state is not None else {}) or {}
    tower_state = (state.section("cloudtower") if state is not None else {}) or {}
    unknown = t("unknown")
    hosts, versions = [], []
    for h in plan.hosts:
        seen = hosts_state.get(h.mgmt_ip) or {}
        version = (seen.get("version") or "") + (seen.get("patch_version") or "") if seen.get("version") else ""
        if version and version not in versions:
            versions.append(version)
        hosts.append({"name": h.name or "", "ip": h.mgmt_ip or "", "sn": seen.get("sn") or h.sn or unknown,
                      "version": version or unknown})
    ct = plan.cloudtower
    tower = None
    if ct and ct.ip:
        tower = {"url": f"https://{ct.ip}",
                 "version": tower_state.get("version") or (ct.version and f"{ct.version}（规划）") or unknown,
                 "serial": tower_state.get("serial") or ct.serial or t("not_deployed")}
    components = []
    for comp in (plan.obs, plan.backup_service, plan.er):
        if comp is not None and getattr(comp, "version", None):
            components.append(f"{getattr(comp, 'vm_name', None) or type(comp).__name__} {comp.version}")
    doc = plan.document
    return {
        "customer": doc.customer or unknown, "project": doc.project or unknown,
        "datacenter": doc.datacenter or (ct.datacenter if ct else None) or unknown,
        "cluster": plan.cluster.name or "", "vip": plan.cluster.vip or unknown,
        "hosts": hosts, "smtx_version": "、".join(versions) or unknown,
        "serial": cluster_state.get("serial") or plan.cluster.serial or unknown,
        "tower": tower, "components": "、".join(components) or unknown,
        "plan": t("sum.plan.value", name=Path(run.plan_path).name if run.plan_path else t("sum.plan.demo"),
                  fingerprint=plan.fingerprint()),
        "sim": bool(run.options.sim),
    }


def duration_text(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def render(facts: dict[str, Any], totals: StageTotals, *, start: datetime, end: datetime,
           kind: str, runs: Optional[list[str]] = None) -> str:
    """The summary section's HTML."""
    def row(key: str, value_html: str, cls: str = "") -> str:
        return f'<tr class="{cls}"><th>{esc(key)}</th><td>{value_html}</td></tr>'

    target = t("sum.target.sim") if facts["sim"] else t("sum.target.live")
    host_rows = "".join(
        f"<tr><td>{esc(h['name'])}</td><td>{esc(h['ip'])}</td><td>{esc(h['sn'])}</td>"
        f"<td>{esc(h['version'])}</td></tr>" for h in facts["hosts"])
    host_table = (f'<table class="hosts-table"><thead><tr><th>{esc(t("sum.host.name"))}</th>'
                  f'<th>{esc(t("sum.host.ip"))}</th><th>{esc(t("sum.host.sn"))}</th>'
                  f'<th>{esc(t("sum.host.version"))}</th></tr></thead><tbody>{host_rows}</tbody></table>')
    tower = facts["tower"]
    tower_html = esc(t("sum.tower.value", **tower)) if tower else esc(t("unknown"))
    rows = [
        row(t("sum.customer"), esc(facts["customer"])),
        row(t("sum.project"), esc(facts["project"])),
        row(t("sum.datacenter"), esc(facts["datacenter"])),
        row(t("sum.cluster"), esc(facts["cluster"]), "cluster-name"),
        row(t("sum.vip"), esc(facts["vip"])),
        row(t("sum.hosts", n=len(facts["hosts"])), host_table, "hosts"),
        row(t("sum.smtx_version"), esc(facts["smtx_version"]), "smtx-version"),
        row(t("sum.serial"), esc(facts["serial"]), "cluster-serial"),
        row(t("sum.tower"), tower_html, "tower"),
        row(t("sum.components"), esc(facts["components"])),
        row(t("sum.plan"), esc(facts["plan"]), "plan"),
        row(t("sum.target"), esc(target), "target sim" if facts["sim"] else "target live"),
        row(t("sum.time"), esc(t("sum.time.value", start=start.strftime("%Y-%m-%d %H:%M:%S"),
                                 end=end.strftime("%Y-%m-%d %H:%M:%S"),
                                 duration=duration_text((end - start).total_seconds())))),
    ]
    if runs:
        rows.append(row(t("sum.runs"), esc("、".join(runs)), "runs"))
    head = "".join(f"<th>{esc(x)}</th>" for x in (
        t("sum.stage"), t("sum.checks"), *(outcome_label(o) for o in COUNTED)))
    stage_rows = []
    for stage in sorted(set(STAGES) | set(totals.counts)):
        c = totals.counts.get(stage, {})
        n = sum(c.values())
        cls = "empty" if not n else ("bad" if c.get("failed") or c.get("error") else "good")
        cells = "".join(f'<td class="n {o}">{c.get(o, 0)}</td>' for o in COUNTED)
        stage_rows.append(f'<tr class="stage {cls}" data-stage="{stage}"><th>{stage} {esc(stage_name(stage))}</th>'
                          f'<td class="n checks">{n}</td>{cells}</tr>')
    all_cells = "".join(f'<td class="n {o}">{totals.total(o)}</td>' for o in COUNTED)
    stage_rows.append(f'<tr class="stage-total"><th>{esc(t("sum.total"))}</th>'
                      f'<td class="n checks">{totals.total()}</td>{all_cells}</tr>')
    bad = totals.total("failed") + totals.total("error")
    open_ = totals.total() - totals.total("passed") - bad
    if bad:
        verdict, vcls = t("verdict.fail", n=bad), "fail"
    elif open_ or not totals.total():
        verdict, vcls = t("verdict.incomplete", n=open_), "incomplete"
    else:
        verdict, vcls = t("verdict.pass"), "pass"
    return (f'<section class="delivery-summary" data-kind="{esc(kind)}">'
            f'<h2>{esc(t("sum.heading"))}</h2>'
            f'<p class="verdict {vcls}"><b>{esc(t("sum.verdict"))}：</b>{esc(verdict)}</p>'
            f'<table class="summary-table">{"".join(rows)}</table>'
            f'<h3>{esc(t("sum.stages"))}</h3>'
            f'<table class="stages-table"><thead><tr>{head}</tr></thead><tbody>{"".join(stage_rows)}</tbody></table>'
            "</section>")
