"""The pytest plugin behind ``pytest suites/ --plan=PLAN.xlsx`` (and ``--sim``).

Registered from the root ``conftest.py``. It is inert unless suite tests
(``<rootdir>/suites/``) are collected: ``pytest tests_unit`` sees only its
options. For a suite run it

* loads the plan (``--plan``, or with ``--sim`` alone the demo plan written to
  the state dir) and stops at once with a usage message when neither is given;
* opens the run state and the outcome ledger in the state dir
  (``voyager.state``, ``voyager.ledger``), refusing to resume when the plan
  changed unless ``--plan-changed=accept``;
* parametrizes the ``host`` and ``vlan`` arguments of suite tests over the
  plan's hosts and business VLANs (ids ``[demo-node-01]``, ``[VLAN-1120]``);
* holds an exclusive lock on the state dir for the whole session (one run per
  state dir, ``voyager.runlock``) and refuses ``-n/--numprocesses`` (the steps
  are ordered);
* registers every collected check in the ledger, so that ``--lf`` reruns every
  check that has not passed (failed, errored, skipped because of a prerequisite,
  never run): the plugin owns ``--lf`` for a suite session and selects from the
  ledger itself (``voyager.rerun``), and tells pytest-dependency that
  prerequisites which passed in an earlier run are satisfied; the session fails
  while any check in its scope is still open (``voyager.rerun``, which also
  writes the ledger's end-of-session summary);
* lets a ``dependency`` marker name a parametrized test without its parameter
  (``depends=["test_host_scanned"]`` = every ``test_host_scanned[...]``).

``--sim-host IP:KEY=VALUE[:KEY=VALUE...]`` (repeatable) makes one simulated
host differ from the plan: ``missing_nics=ens224,ens192``, ``down_nics=ens161``,
``deployed=true``, ``version=6.1.0``.
"""
from __future__ import annotations

import gc
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Optional

import pytest

from voyager import rerun
from voyager.run_context import RUN_KEY, get_run
# the delivery report's options and its installation over pytest-html
pytest_plugins = ["voyager.report.options"]

USAGE = (
    "smtx-voyager 验收套件需要一份规划表或内置模拟器，请这样运行：\n"
    "  pytest suites/ --plan=规划设计表.xlsx          在真实集群上按规划表部署并验收\n"
    "  pytest suites/ --sim                           在内置模拟器上用演示规划表完整演练\n"
    "  pytest suites/ --plan=规划设计表.xlsx --sim    在内置模拟器上演练这份规划表\n"
    "失败后修正问题，加上 --lf 只重跑失败的检查及因其跳过的检查。\n"
    "(The acceptance suites need --plan PATH and/or --sim; see pytest --help, group voyager.)"
)

XDIST_REFUSED = (
    "验收套件的各个步骤有先后顺序（扫描 → 部署 → 配置 …），不能用 -n/--numprocesses 并行运行；"
    "请去掉 -n 参数后重新运行。(The acceptance suites are ordered: run them without -n.)")

SIM_HOST_KEYS = {"missing_nics": "list", "down_nics": "list", "deployed": "bool", "version": "str"}

PARAM_FIXTURES = ("host", "vlan")


@dataclass
class Options:
    plan: Optional[Path] = None
    sim: bool = False
    sim_speed: Optional[float] = None
    sim_faults: str = ""
    sim_hosts: dict[str, dict[str, Any]] = field(default_factory=dict)
    state_dir: Optional[Path] = None
    media_dir: Optional[Path] = None
    ca_bundle: Optional[Path] = None
    ssh_strict: bool = False
    plan_changed: str = "refuse"

    @classmethod
    def from_config(cls, config: pytest.Config) -> "Options":
        def path(name: str) -> Optional[Path]:
            value = config.getoption(name)
            return Path(value).expanduser() if value else None

        return cls(
            plan=path("voyager_plan"),
            sim=bool(config.getoption("voyager_sim")),
            sim_speed=config.getoption("voyager_sim_speed"),
            sim_faults=config.getoption("voyager_sim_faults") or "",
            sim_hosts=parse_sim_hosts(config.getoption("voyager_sim_hosts") or []),
            state_dir=path("voyager_state_dir"),
            media_dir=path("voyager_media_dir"),
            ca_bundle=path("voyager_ca_bundle"),
            ssh_strict=bool(config.getoption("voyager_ssh_strict")),
            plan_changed=config.getoption("voyager_plan_changed") or "refuse",
        )


def parse_sim_hosts(values: list[str]) -> dict[str, dict[str, Any]]:
    """``["127.10.20.12:missing_nics=ens224"]`` -> ``{"127.10.20.12": {"missing_nics": ["ens224"]}}``."""
    result: dict[str, dict[str, Any]] = {}
    for raw in values:
        ip, sep, rest = raw.partition(":")
        if not sep or not ip.strip() or not rest.strip():
            raise pytest.UsageError(
                f"--sim-host {raw!r} 格式错误，应为 IP:键=值[:键=值...]，"
                f"例如 127.10.20.12:missing_nics=ens224")
        host = result.setdefault(ip.strip(), {})
        for part in rest.split(":"):
            key, eq, value = part.partition("=")
            key = key.strip()
            if not eq or key not in SIM_HOST_KEYS:
                raise pytest.UsageError(
                    f"--sim-host {raw!r}: 不认识的设置 {part!r}；可用：{', '.join(SIM_HOST_KEYS)}")
            kind = SIM_HOST_KEYS[key]
            if kind == "list":
                host.setdefault(key, []).extend(v for v in re.split(r"[,+\s]+", value) if v)
            elif kind == "bool":
                if value.strip().lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise pytest.UsageError(f"--sim-host {raw!r}: {key} 只能是 true 或 false")
                host[key] = value.strip().lower() in ("true", "1", "yes")
            else:
                host[key] = value.strip()
    return result


def safe_dirname(name: str) -> str:
    cleaned = re.sub(r"[^\w.-]+", "_", name or "").strip("._")
    return cleaned or "cluster"


# --------------------------------------------------------------------------- options
def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    group = parser.getgroup("voyager", "smtx-voyager 部署与验收 (suites/)")
    group.addoption("--plan", dest="voyager_plan", metavar="PATH",
                    help="规划设计表 (.xlsx)。The planning workbook to deploy and accept.")
    group.addoption("--sim", dest="voyager_sim", action="store_true", default=False,
                    help="在进程内启动内置模拟器；不带 --plan 时使用演示规划表。"
                         "Run against the embedded simulator (demo plan without --plan).")
    group.addoption("--sim-speed", dest="voyager_sim_speed", type=float, default=None,
                    metavar="S", help="模拟器时间倍率，0 = 立即完成（默认：模拟器的默认速度）。")
    group.addoption("--sim-faults", dest="voyager_sim_faults", default="", metavar="SPEC",
                    help="模拟器故障注入，KIND:TARGET:COUNT 逗号分隔，COUNT = 生效次数。"
                         "KIND：fail-job（任务描述，如 NETWORK_CREATE_VDS、DEPLOY_CLUSTER；"
                         "可加资源名，如 'fail-job:VM_UPDATE voyager-test-*:1'）；"
                         "http-500 / http-reset / slow（[方法 ]路径通配，如 'http-500:POST /api/v2/network/vds:1'，"
                         "不写方法则所有方法；GraphQL 操作写成 /api#操作名，如 http-500:/api#createRootUser:1）；"
                         "drop-chunk（镜像或安装包文件名通配）；"
                         "ssh-fail（SSH 命令通配，命令失败，如 ssh-fail:chpasswd*:1）；"
                         "ssh-drop（SSH 命令通配，连接中断）；inspect-fail（巡检项名）；"
                         "slow-storage（主机管理 IP 或名称：其上测试虚拟机的 fio 变慢）。"
                         "运行结束时终端摘要列出每条规则的触发次数。")
    group.addoption("--sim-host", dest="voyager_sim_hosts", action="append", default=[],
                    metavar="IP:KEY=VALUE",
                    help="让一台模拟主机与规划不同（可重复）：IP:missing_nics=ens224[,ens192]"
                         "[:down_nics=...][:deployed=true][:version=6.1.0]。")
    group.addoption("--state-dir", dest="voyager_state_dir", metavar="DIR",
                    help="运行状态、结果台账、接口记录与演示规划表的目录（默认 .voyager/<集群名称>）；"
                         "报告总在 reports/<集群名称>/。")
    group.addoption("--media-dir", dest="voyager_media_dir", metavar="DIR",
                    help="ISO 与安装包所在目录（默认：规划表所在目录）。")
    group.addoption("--ca-bundle", dest="voyager_ca_bundle", metavar="PATH",
                    help="用此 CA 证书完整校验 TLS（默认对规划地址首次信任并记录指纹）。")
    group.addoption("--ssh-strict", dest="voyager_ssh_strict", action="store_true",
                    default=False, help="拒绝未知的 SSH 主机密钥。")
    group.addoption("--plan-changed", dest="voyager_plan_changed", default="refuse",
                    choices=("refuse", "accept"),
                    help="规划表自上次运行后有改动时：refuse（默认，停止并列出改动）或 accept（接受并继续）。")
    rerun.add_options(parser, pluginmanager)


# --------------------------------------------------------------------------- run context
class VoyagerRun:
    """Everything the plugin knows about the current suite run."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.options = Options.from_config(config)
        self.rootpath = Path(config.rootpath)
        self.suites_dir = self.rootpath / "suites"
        self.active = False
        self.plan = None
        self.plan_path: Optional[Path] = None
        self.state_dir: Optional[Path] = None
        self.run_state = None
        self.ledger = None
        self.sim = None
        self.selected: set[str] = set()
        self.lock = None
        self.lock_restored = False  # run.lock was deleted or replaced mid-run and locked again
        self.lock_lost = False  # ... and another run holds it now: this run stopped
        self.lf_applied = False  # --lf given: the ledger selects (voyager.rerun), not pytest's lfplugin
        self.lf_selection: Optional[rerun.Selection] = None
        self.evidence_file: Optional[Path] = None
        self._evidence_log = None
        self._scope = None
        self._suite_paths: dict[str, bool] = {}

    # -- suite detection ---------------------------------------------------
    def is_suite_path(self, path: Path) -> bool:
        key = str(path)
        known = self._suite_paths.get(key)
        if known is None:  # asked three times per check: resolve each file once
            try:
                Path(path).resolve().relative_to(self.suites_dir.resolve())
                known = True
            except ValueError:
                known = False
            self._suite_paths[key] = known
        return known

    def args_target_suites(self) -> bool:
        invocation = Path(self.config.invocation_params.dir)
        for arg in self.config.args:
            p = Path(str(arg).split("::", 1)[0])
            p = p if p.is_absolute() else invocation / p
            if self.is_suite_path(p):
                return True
        return False

    # -- activation --------------------------------------------------------
    def activate(self) -> None:
        """Load the plan, open the state dir, the run state and the ledger."""
        if self.active:
            return
        opts = self.options
        if not opts.plan and not opts.sim:
            raise pytest.UsageError(USAGE)
        from voyager.ledger import Ledger
        from voyager.runlock import RunLock, StateDirBusy, remove_stale_temp_files
        from voyager.state import PlanChangedError, open_state

        try:
            self.plan, self.plan_path = self._load_plan()
        except OSError as exc:  # the demo plan could not be written into the state dir
            raise pytest.UsageError(f"无法写入 {getattr(exc, 'filename', None) or self.state_dir}"
                                    f"（{exc.strerror or exc}）；请检查状态目录的权限，"
                                    "或用 --state-dir 指定一个可写的目录") from None
        planned = {h.mgmt_ip for h in self.plan.hosts}
        unknown = sorted(set(opts.sim_hosts) - planned)
        if unknown:
            raise pytest.UsageError(
                f"--sim-host 的地址 {', '.join(unknown)} 不是规划中的主机管理地址"
                f"（规划：{', '.join(sorted(a for a in planned if a))}）")
        self._install_redaction()
        if opts.sim_speed is not None and opts.sim_speed < 0:
            raise pytest.UsageError(f"--sim-speed 不能为负数（给的是 {opts.sim_speed}）；0 = 立即完成，默认约 0.04")
        self.lock = RunLock(self.state_dir)
        try:
            self.lock.acquire()
            remove_stale_temp_files(self.state_dir)  # of a killed run's atomic writes
        except StateDirBusy as exc:
            raise pytest.UsageError(str(exc)) from None
        except OSError as exc:
            self.lock.release()
            raise pytest.UsageError(f"状态目录 {self.state_dir} 无法写入（{exc.strerror or exc}）；"
                                    "请检查该目录的权限，或用 --state-dir 指定一个可写的目录") from None
        try:
            self.run_state = open_state(self.state_dir, self.plan,
                                        accept_changes=opts.plan_changed == "accept")
            self.ledger = Ledger.load(self.state_dir, self.plan.fingerprint())
            if opts.sim:
                check_sim_setup(self.state_dir, opts.sim_faults)
        except (PlanChangedError, ValueError) as exc:
            self.lock.release()
            raise pytest.UsageError(str(exc)) from None
        self.active = True
        from voyager.report.html import register as register_html

        register_html(self.config, self)  # title, run facts and acceptance criteria in the HTML report

    def _install_redaction(self) -> None:
        """Every secret of the plan is redacted from logs and from every test and
        collection report of the session (tracebacks included)."""
        from voyager.redact import REDACTOR, install_logging, report_redaction_plugin

        REDACTOR.add_plan(self.plan)
        install_logging()
        if not self.config.pluginmanager.has_plugin("voyager-redact"):
            self.config.pluginmanager.register(report_redaction_plugin(), "voyager-redact")

    def _load_plan(self):
        opts = self.options
        if opts.plan:
            plan_path = opts.plan if opts.plan.is_absolute() else Path(
                self.config.invocation_params.dir) / opts.plan
            if not plan_path.is_file():
                raise pytest.UsageError(f"找不到规划表文件：{plan_path}\n\n{USAGE}")
            from voyager.plan import PlanError, read_plan

            try:
                plan = read_plan(plan_path)
            except PlanError as exc:
                raise pytest.UsageError(f"规划表无法读取：{exc}") from None
            self.state_dir = self._state_dir(plan.cluster.name)
            return plan, plan_path
        # --sim without --plan: the demo plan, written to the state dir so the
        # engineer can open it and so the serial write-back has a file to go to.
        from voyager.plan import read_plan, write_plan
        from voyager.plan.demo import DEMO_CLUSTER, build_demo_plan

        self.state_dir = self._state_dir(DEMO_CLUSTER)
        demo_path = self.state_dir / "demo-plan.xlsx"
        if not demo_path.exists():
            write_plan(build_demo_plan(), demo_path)
        return read_plan(demo_path), demo_path

    def _state_dir(self, cluster_name: Optional[str]) -> Path:
        if self.options.state_dir:
            d = self.options.state_dir
            if not d.is_absolute():
                d = Path(self.config.invocation_params.dir) / d
        else:
            d = self.rootpath / ".voyager" / safe_dirname(cluster_name or "")
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise pytest.UsageError(f"无法创建状态目录 {d}（{exc.strerror or exc}）；"
                                    "请检查权限，或用 --state-dir 指定一个可写的目录") from None
        return d

    def deactivate(self) -> None:
        """End of the session: the ledger's snapshot complete, the lock released
        (the ledger is left alone when another run took the state dir)."""
        if self.ledger is not None and not self.lock_lost:
            self.ledger.compact()
        if self.lock is not None:
            self.lock.release()

    @property
    def evidence_log(self):
        """The session's evidence log (``voyager.evidence.EvidenceLog``), named after
        the session's start as the ledger records it (``report.carryover``)."""
        if self._evidence_log is None and self.state_dir is not None:
            from voyager.evidence import EvidenceLog
            from voyager.report.carryover import evidence_name

            name = evidence_name(self.config) or f"{datetime.now().strftime('%Y%m%d-%H%M%S-%f')}.log"
            self._evidence_log = EvidenceLog(self.state_dir / "evidence" / name)
        return self._evidence_log

    def check_lock(self) -> None:
        """Before each suite check: the state dir's lock file is still this run's
        (``voyager.runlock``); locked again when it was deleted, and the session
        stops when another run holds it now."""
        from voyager.runlock import LockLost

        try:
            if not self.lock.check():
                self.lock_restored = True
        except LockLost as exc:
            self.lock_lost = True
            pytest.exit(str(exc), returncode=pytest.ExitCode.INTERRUPTED)

    def in_scope(self, nodeid: str) -> bool:
        """Is this check inside the session's arguments (``pytest suites/``: every
        suite check; ``pytest suites/test_01_prepare.py``: that module's)?"""
        from voyager.report.carryover import scope_matcher

        if self._scope is None:
            self._scope = scope_matcher(self.config)
        return self._scope(nodeid)

    def register_checks(self, items: list[pytest.Item]) -> None:
        """Every collected suite check into the ledger (``pending`` until it runs)."""
        from voyager.ledger import dependency_names

        checks = []
        for item in items:
            marker = item.get_closest_marker("dependency")
            checks.append((item.nodeid, dependency_names(item.nodeid, marker.kwargs.get("name"))
                           if marker is not None else {}))
        whole = not self.lf_applied and not any("::" in str(a) for a in self.config.args)
        modules = {item.nodeid.split("::", 1)[0] for item in items} if whole else ()
        self.ledger.register(checks, complete_modules=modules)  # a check never seen is pending: open
        self.ledger.compact()


def check_sim_setup(state_dir: Path, faults: str) -> None:
    """A bad ``--sim-faults`` spec or a simulator world file that cannot be
    loaded is a clear error at start (ValueError, Chinese, naming the rule or the
    file), not an error in every test."""
    from voyager.sim.backend.faults import parse_faults
    from voyager.sim.backend.persistence import StateFileError, load_state

    parse_faults(faults)  # FaultSpecError (a ValueError) quotes the bad rule

    path = Path(state_dir) / "sim-world.json"
    if not path.exists():
        return
    try:
        load_state(path)
    except StateFileError as exc:
        raise ValueError(f"{exc}（或把它移到别处，模拟器将从全新的环境开始）") from None


# --------------------------------------------------------------------------- hooks
@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    rerun.refuse_lf_without_cache(config)  # -p no:cacheprovider --lf: Chinese, not argparse's English
    run = VoyagerRun(config)
    config.stash[RUN_KEY] = run
    config.addinivalue_line("markers", "voyager_optional: 可选步骤，不计入阶段完成的前提")
    from voyager.report.carryover import register as register_carryover

    register_carryover(config)  # a --lf run's report also shows the checks it did not rerun
    if run.args_target_suites():
        if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
            raise pytest.UsageError(XDIST_REFUSED)
        # before the cacheprovider's (trylast) configure: its lfplugin must not select
        run.lf_applied = rerun.take_over(config)
        run.activate()
        default_report_paths(config, run)


def default_report_paths(config: pytest.Config, run: "VoyagerRun") -> None:
    """A suite run always leaves its deliverables under ``reports/<cluster>/``
    (``voyager.report.layout``: a folder per run with its HTML and JUnit XML,
    the cumulative ``report.html``, the plan's Allure results), whatever
    ``--state-dir`` says; ``--html`` / ``--junitxml`` / ``--alluredir`` given by
    the engineer are respected. Runs before pytest-html's, junitxml's and
    allure's own ``pytest_configure`` (tryfirst)."""
    from voyager.report.layout import apply_defaults, reports_root

    apply_defaults(config, reports_root(config, run.rootpath) / safe_dirname(run.plan.cluster.name or ""))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    run = get_run(metafunc.config)
    wanted = [f for f in PARAM_FIXTURES if f in metafunc.fixturenames]
    if not wanted or not run.is_suite_path(Path(metafunc.definition.path)):
        return
    try:
        run.activate()
    except pytest.UsageError:
        return  # reported once, after collection (pytest_collection_modifyitems)
    plan = run.plan
    if "host" in wanted:
        metafunc.parametrize("host", plan.hosts, ids=[host_id(h) for h in plan.hosts],
                             scope="function")
    if "vlan" in wanted:
        vlans = plan.networks.business.vlans
        metafunc.parametrize("vlan", vlans, ids=[vlan_id(v) for v in vlans], scope="function")


def host_id(host) -> str:
    return host.name or host.mgmt_ip or f"host-{host.index}"


def vlan_id(vlan) -> str:
    return vlan.name or (f"VLAN-{vlan.vlan}" if vlan.vlan is not None else f"row-{vlan.row}")


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    run = get_run(config)
    suite_items = [i for i in items if run.is_suite_path(Path(i.path))]
    if not suite_items:
        return
    run.activate()
    rerun.refuse_late_lf(config, run)  # suites reached through another path: pytest's lfplugin selected
    run.register_checks(suite_items)
    from voyager.dependencies import expand_parametrized_dependencies

    expand_parametrized_dependencies(suite_items, run.ledger)
    if run.lf_applied:
        run.lf_selection = rerun.select(config, items, suite_items, run.ledger)


def pytest_report_collectionfinish(config: pytest.Config) -> list[str]:
    selection = get_run(config).lf_selection
    return [selection.line()] if selection is not None else []


def pytest_collection_finish(session: pytest.Session) -> None:
    run = get_run(session.config)
    if run.active:
        run.selected = {item.nodeid for item in session.items}
        # Everything imported so far (pytest, the plugins, matplotlib, graphql, the suites: ~250k
        # objects) lives until the end: the garbage collector's full passes need not scan it again
        # (each costs ~0.3 s here; Python runs several in a session, pytest five more at its end)
        gc.freeze()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem):
    """Every exchange a suite test makes (setup, call, teardown) is recorded as
    evidence against its node id, and written to the session's evidence log when
    the test ends (a killed run keeps the evidence of the checks it finished)."""
    run = get_run(item.config)
    if not run.active or not run.is_suite_path(Path(item.path)):
        yield
        return
    from voyager.evidence import RECORDER
    from voyager.report.facts import FACTS

    with RECORDER.step(item.nodeid), FACTS.step(item.nodeid):
        yield
    if run.evidence_log is not None:
        run.evidence_log.write_step(item.nodeid)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    run = get_run(item.config)
    if run.active and run.is_suite_path(Path(item.path)):
        run.check_lock()
        from voyager.dependencies import satisfy_from_ledger

        satisfy_from_ledger(item, run.ledger, run.selected)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    run = get_run(item.config)
    if not run.active or not run.is_suite_path(Path(item.path)):
        return
    report = outcome.get_result()
    marker = item.get_closest_marker("dependency")
    from voyager.report.carryover import describe_item

    run.ledger.record_phase(
        item.nodeid, report.when, report.outcome, longrepr=report.longrepr,
        duration=report.duration,
        dependency_name=marker.kwargs.get("name") if marker else None,
        dependency_marked=marker is not None,
        report=describe_item(item) if report.when == "teardown" else None,
    )


def pytest_sessionfinish(session: pytest.Session, exitstatus) -> None:
    run = get_run(session.config)
    if not run.active or run.state_dir is None:
        return
    run.evidence_file = run.evidence_log.finish()
    if run.lock_lost:
        return  # another run holds the state dir now: its ledger, not ours
    run.ledger.compact()
    rerun.exit_status(session, run)


def pytest_unconfigure(config: pytest.Config) -> None:
    run = config.stash.get(RUN_KEY, None)
    if run is not None and run.active:
        run.deactivate()
        # pytest's unraisable-exception plugin ends the session with five full collections, to
        # surface finalizers' errors: one here does that (its hook is still installed), and the
        # objects it leaves are frozen so that pytest's passes do not scan them again
        gc.collect()
        gc.freeze()


def pytest_report_header(config: pytest.Config) -> list[str]:
    run = get_run(config)
    if not run.active:
        return []
    lines = [
        f"voyager: 规划表 {run.plan_path or '(内存中的演示规划表)'} · 集群 {run.plan.cluster.name} · "
        f"指纹 {run.plan.fingerprint()}",
        f"voyager: 状态目录 {run.state_dir}" + (" · 模拟器模式" if run.options.sim else " · 真实环境"),
    ]
    if run.lf_applied:
        lines.append("voyager: --lf 由结果台账选择要重跑的检查（所有尚未通过的：失败、因前置失败跳过、尚未运行）")
    return lines


def fault_lines(sim) -> list[str]:
    """What the simulator's injected faults (``--sim-faults``) did in this session: one
    line per rule, with how often it fired (a rule that never fired hit nothing)."""
    rules = sim.faults.summary() if sim is not None else []
    if not rules:
        return []
    return ["模拟器注入的故障（--sim-faults）："] + [
        f"  {r['kind']}:{r['target']}:{r['count']} 已触发 {r['fired']} 次" for r in rules]


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    run = get_run(config)
    if run.active and run.ledger is not None and not run.lock_lost:
        rerun.write_summary(terminalreporter, run)
    if run.active:
        for line in fault_lines(run.sim):
            terminalreporter.write_line(line)
    if run.active and run.lock_restored:
        terminalreporter.write_line(f"注意：本次运行中状态目录的锁文件 {run.state_dir / 'run.lock'} 被删除或替换过，"
                                    "已重新加锁（不要删除运行中的锁文件）")
