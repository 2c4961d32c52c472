"""The machines reachable over SSH and what differs between them.

``PROFILES`` is the machine registry, keyed by the world's machine kind
(``world.machine(ip, 22).kind``): who may log in, who may ``sudo``, the host
name, read-only virtual files and extra programs. Adding a machine type (the
test VMs of a later step) is one entry here.

* ``host`` — a planned SMTX OS host. Accounts ``root`` and ``smartx`` with the
  passwords of the deployment payload (``P@ssw0rd!123`` by default). **Before
  deployment every login is refused**: the walkthrough only logs in after
  "初始化集群", when the deployment has set the accounts' passwords; an
  installed-but-undeployed host keeps sshd running (the port answers) but the
  simulator knows no password for it. ``smartx`` may ``sudo`` without a password.
* ``tower`` — the CloudTower VM once its IP is configured: account
  ``cloudtower`` (``HC!r0cks``, passwordless sudo), ``preinstall.sh`` and the
  installer (walkthrough step 04). The installer's ``nohup.out`` is
  ``/home/cloudtower/nohup.out`` (the login directory, where ``nohup`` puts it).
* ``vm`` — other VMs with an IP (test workloads): their accounts come from the
  world (baked into their disk image, :mod:`voyager.sim.ssh.workload`); every
  non-root account may sudo without a password; ``fio``, ``ping`` and
  ``pgrep`` are installed (figures derived from the simulated hardware); the
  files their background runs write are the user's (``rm`` / ``>`` replace them).

A :class:`Session` is one SSH channel's view of its machine: working
directory, files (``world.files(ip)`` plus the profile's virtual files),
accounts (``world.check_login`` / ``world.set_password``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from voyager.sim.ssh.shell import Proc, UsageError, normalize
from voyager.sim.ssh.workload import fio_program, output_files, pgrep_program, ping_program, release_output

TOWER_USER = "cloudtower"
PREINSTALL = "/usr/share/smartx/tower/preinstall.sh"
INSTALLER = "/usr/share/smartx/tower/installer/binary/installer"
NOHUP_LOG = f"/home/{TOWER_USER}/nohup.out"
SUCCESS_LINE = "Install Operation Center Successfully"
FAILURE_LINE = "Install Operation Center Failed"
OS_RELEASE = ('NAME="openEuler"\nVERSION="20.03 (LTS-SP3)"\nID="openEuler"\nVERSION_ID="20.03"\n'
              'PRETTY_NAME="openEuler 20.03 (LTS-SP3)"\nANSI_COLOR="0;31"\n')
BIN_DIRS = ("/bin", "/usr/bin", "/sbin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin")


# -- the CloudTower VM's programs -----------------------------------------------------------------
def _preinstall(proc: Proc, args: list[str]) -> int:
    if not proc.is_root:
        raise UsageError("preinstall.sh: this script must be run as root")
    status, output = proc.session.world.tower_preinstall()
    proc.write(output)
    return status


def _installer(proc: Proc, args: list[str]) -> int:
    if not args or args[0] != "deploy":
        raise UsageError("Usage: installer deploy\n\nOperation Center installer of CloudTower.")
    if not proc.is_root:
        raise UsageError("installer: permission denied: run it as root (sudo)")
    world = proc.session.world
    if not world.tower_start_installer():
        raise UsageError(f"installer: a deployment is already running or has finished; see {NOHUP_LOG}")
    if proc.background:
        return 0
    while True:  # foreground: the command returns when the installer does
        log = world.tower_install_log()
        if SUCCESS_LINE in log or FAILURE_LINE in log:
            proc.write(log)
            return 0 if SUCCESS_LINE in log else 1
        time.sleep(0.1)


def _tower_files(session: "Session") -> dict[str, Callable[[], str]]:
    files: dict[str, Callable[[], str]] = {
        PREINSTALL: lambda: "#!/bin/sh\n# CloudTower pre-installation checks (simulated)\n",
        INSTALLER: lambda: "\x7fELF\x02\x01\x01 (binary)\n",
    }
    if session.world.tower_install_log():
        world, ip = session.world, session.ip
        files[NOHUP_LOG] = lambda: world.files(ip).get(NOHUP_LOG, "") + world.tower_install_log()
    return files


# -- profiles -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Profile:
    sudoers: Callable[[Any, str, str], bool]  # (world, ip, user) -> may sudo
    hostname: Callable[[Any, str], str]
    login_allowed: Callable[[Any, str], bool] = lambda world, ip: True
    sudo_nopasswd: bool = True
    programs: dict[str, Callable[[Proc, list[str]], int]] = field(default_factory=dict)  # absolute path -> fn
    commands: dict[str, Callable[[Proc, list[str]], int]] = field(default_factory=dict)  # on PATH: name -> fn
    scripts: dict[str, Callable[[Proc, list[str]], int]] = field(default_factory=dict)  # run with `sh PATH`
    virtual_files: Callable[["Session"], dict[str, Callable[[], str]]] = lambda session: {}
    # files background programs write: readable like virtual files, but their owner's to replace or remove
    output_files: Callable[["Session"], dict[str, Callable[[], str]]] = lambda session: {}
    release_output: Callable[["Session", str], None] = lambda session, path: None


def _vm_name(world, ip: str) -> str:
    vm = world.vms.vm_by_ip(ip)
    return (vm or {}).get("vm_name") or "localhost"


PROFILES: dict[str, Profile] = {
    "host": Profile(
        sudoers=lambda world, ip, user: user == "smartx",
        hostname=lambda world, ip: world.hosts[ip].hostname,
        login_allowed=lambda world, ip: bool(world.hosts[ip].deployed),
    ),
    "tower": Profile(
        sudoers=lambda world, ip, user: user == TOWER_USER,
        hostname=_vm_name,
        programs={INSTALLER: _installer},
        scripts={PREINSTALL: _preinstall},
        virtual_files=_tower_files,
    ),
    "vm": Profile(
        sudoers=lambda world, ip, user: user != "root",
        hostname=_vm_name,
        commands={"fio": fio_program, "ping": ping_program, "pgrep": pgrep_program},
        output_files=output_files,
        release_output=release_output,
    ),
}


class Session:
    """One SSH channel: ``user`` logged into machine ``ip`` of ``kind``."""

    def __init__(self, world, ip: str, kind: str, user: str) -> None:
        self.world = world
        self.ip = ip
        self.kind = kind
        self.user = user
        self.profile = PROFILES[kind]
        self.cwd = self.home(user)

    # -- accounts ----------------------------------------------------------------------------
    def users(self) -> list[str]:
        return self.world.users(self.ip)

    def uid(self, user: str) -> int:
        others = sorted(u for u in self.users() if u != "root")
        return 0 if user == "root" else 1000 + (others.index(user) if user in others else 0)

    def home(self, user: str) -> str:
        return "/root" if user == "root" else f"/home/{user}"

    def is_sudoer(self, user: str) -> bool:
        return user == "root" or self.profile.sudoers(self.world, self.ip, user)

    def sudo_nopasswd(self, user: str) -> bool:
        return self.profile.sudo_nopasswd

    def check_password(self, user: str, password: str) -> bool:
        return self.world.check_login(self.ip, user, password)

    def set_password(self, user: str, password: str) -> None:
        if not self.world.set_password(self.ip, user, password):
            raise UsageError(f"passwd: Authentication token manipulation error ({user})")

    def hostname(self) -> str:
        return self.profile.hostname(self.world, self.ip)

    # -- programs ------------------------------------------------------------------------------
    def program(self, name: str, builtins: dict[str, Callable]) -> Optional[Callable[[Proc, list[str]], int]]:
        if "/" not in name:
            return self.profile.commands.get(name) or builtins.get(name)
        path = self.resolve(name)
        if path in self.profile.programs:
            return self.profile.programs[path]
        directory, base = path.rsplit("/", 1)
        if (directory or "/") in BIN_DIRS and base in self.profile.commands:
            return self.profile.commands[base]
        if (directory or "/") in BIN_DIRS and base in builtins:
            return builtins[base]
        if self.is_file(path):
            return _not_executable(name)
        return None

    def script(self, path: str) -> Optional[Callable[[Proc, list[str]], int]]:
        return self.profile.scripts.get(path)

    # -- files -----------------------------------------------------------------------------------
    def resolve(self, name: str) -> str:
        return normalize(self.cwd, name, self.home(self.user))

    def _virtual(self) -> dict[str, Callable[[], str]]:
        files = {"/etc/hostname": lambda: self.hostname() + "\n", "/etc/os-release": lambda: OS_RELEASE}
        files.update(self.profile.virtual_files(self))
        files.update(self.profile.output_files(self))
        return files

    def is_file(self, path: str) -> bool:
        return path in self.world.files(self.ip) or path in self._virtual() or path == "/dev/null"

    def is_dir(self, path: str) -> bool:
        fixed = {"/", "/etc", "/tmp", "/root", "/home", "/dev", "/usr", "/usr/bin", "/bin"}
        fixed.update(self.home(u) for u in self.users())
        if path in fixed:
            return True
        prefix = path.rstrip("/") + "/"
        return any(p.startswith(prefix) for p in list(self.world.files(self.ip)) + list(self._virtual()))

    def children(self, path: str) -> list[str]:
        prefix = path.rstrip("/") + "/"
        names = {p[len(prefix):].split("/", 1)[0] for p in list(self.world.files(self.ip)) + list(self._virtual())
                 if p.startswith(prefix)}
        return sorted(names)

    def read_file(self, path: str, user: str) -> str | OSError:
        if path == "/dev/null":
            return ""
        if user != "root" and (path == "/root" or path.startswith("/root/") or path.startswith("/etc/shadow")):
            return PermissionError(13, "Permission denied")
        virtual = self._virtual()
        if path in virtual:
            return virtual[path]()
        files = self.world.files(self.ip)
        if path in files:
            return files[path]
        if self.is_dir(path):
            return IsADirectoryError(21, "Is a directory")
        return FileNotFoundError(2, "No such file or directory")

    def check_writable(self, path: str, user: str) -> Optional[str]:
        """None when ``user`` may write ``path``, else the error text."""
        if path == "/dev/null":
            return None
        if self.is_dir(path):
            return "Is a directory"
        if path in self._virtual() and path != NOHUP_LOG and path not in self.profile.output_files(self):
            return "Permission denied" if user != "root" else "Read-only file system"
        if user == "root":
            return None
        home = self.home(user) + "/"
        return None if path.startswith(home) or path.startswith("/tmp/") else "Permission denied"

    def write_file(self, path: str, text: str, *, append: bool) -> None:
        if path == "/dev/null":
            return
        with self.world.lock:
            if not append:
                self.profile.release_output(self, path)
            files = self.world.files(self.ip)
            files[path] = (files.get(path, "") if append else "") + text
            self.world.changed()

    def remove_file(self, path: str) -> None:
        with self.world.lock:
            self.profile.release_output(self, path)
            self.world.files(self.ip).pop(path, None)
            self.world.changed()


def _not_executable(name: str) -> Callable[[Proc, list[str]], int]:
    def run(proc: Proc, args: list[str]) -> int:
        proc.error(f"bash: {name}: Permission denied")
        return 126

    return run
