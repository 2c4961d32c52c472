"""Built-in programs of the simulated machines' shell (see :mod:`voyager.sim.ssh.shell`).

Each program is ``fn(proc, args) -> exit status``; it reads ``proc.stdin``,
writes ``proc.write`` / ``proc.error`` and reaches the machine through
``proc.session`` (files, accounts, hostname). Messages and exit statuses follow
GNU coreutils / shadow-utils / sudo on openEuler. ``@program(..., failure=fn)``
declares how the program fails when an ``ssh-fail`` fault hits it (what the
real program prints when PAM or the system refuses; no effect on the machine).
"""
from __future__ import annotations

import re
import time
from typing import Callable

from voyager.sim.ssh.shell import ExitScript, Proc, Stdin, UsageError

Program = Callable[[Proc, list[str]], int]
PROGRAMS: dict[str, Program] = {}


def program(*names: str, failure: Program | None = None) -> Callable[[Program], Program]:
    def register(fn: Program) -> Program:
        if failure is not None:
            fn.failure = failure  # type: ignore[attr-defined]
        for name in names:
            PROGRAMS[name] = fn
        return fn

    return register


def _escapes(text: str) -> str:
    table = {"n": "\n", "t": "\t", "\\": "\\", "r": "\r", "a": "\a", "0": "\0", "e": "\x1b"}
    return re.sub(r"\\([ntr\\a0e])", lambda m: table[m.group(1)], text)


# -- trivial ------------------------------------------------------------------------------------
@program("true", ":")
def _true(proc: Proc, args: list[str]) -> int:
    return 0


@program("false")
def _false(proc: Proc, args: list[str]) -> int:
    return 1


@program("exit")
def _exit(proc: Proc, args: list[str]) -> int:
    try:
        status = int(args[0]) & 0xFF if args else 0
    except ValueError:
        proc.error(f"bash: exit: {args[0]}: numeric argument required")
        status = 2
    raise ExitScript(status)


@program("echo")
def _echo(proc: Proc, args: list[str]) -> int:
    newline, escapes = True, False
    while args and re.fullmatch(r"-[neE]+", args[0]):
        newline = newline and "n" not in args[0]
        escapes = ("e" in args[0]) or (escapes and "E" not in args[0])
        args = args[1:]
    text = " ".join(args)
    proc.write((_escapes(text) if escapes else text) + ("\n" if newline else ""))
    return 0


@program("printf")
def _printf(proc: Proc, args: list[str]) -> int:
    if not args:
        raise UsageError("printf: usage: printf [-v var] format [arguments]", 2)
    fmt, values = _escapes(args[0]), args[1:]
    specs = re.findall(r"%[sdq%]", fmt)
    per_round = sum(1 for s in specs if s != "%%")
    while True:
        chunk, values = (values[:per_round], values[per_round:]) if per_round else ([], [])
        it = iter(chunk)

        def sub(m: re.Match) -> str:
            if m.group(0) == "%%":
                return "%"
            value = next(it, "")
            return str(int(value or 0)) if m.group(0) == "%d" else value

        proc.write(re.sub(r"%[sdq%]", sub, fmt))
        if not values:
            return 0


@program("sleep")
def _sleep(proc: Proc, args: list[str]) -> int:
    try:
        seconds = float(args[0].rstrip("s")) if args else None
    except ValueError:
        seconds = None
    if seconds is None or seconds < 0:
        raise UsageError(f"sleep: invalid time interval '{args[0] if args else ''}'")
    time.sleep(min(seconds, 300.0))
    return 0


# -- identity -------------------------------------------------------------------------------------
@program("whoami")
def _whoami(proc: Proc, args: list[str]) -> int:
    proc.write(proc.user + "\n")
    return 0


@program("id")
def _id(proc: Proc, args: list[str]) -> int:
    flags = "".join(a.lstrip("-") for a in args if a.startswith("-"))
    names = [a for a in args if not a.startswith("-")]
    user = names[0] if names else proc.user
    if user != "root" and user not in proc.session.users():
        proc.error(f"id: ‘{user}’: no such user")
        return 1
    uid = proc.session.uid(user)
    if "u" in flags:
        proc.write((user if "n" in flags else str(uid)) + "\n")
        return 0
    groups = f"{uid}({user})" + (",10(wheel)" if user != "root" and proc.session.is_sudoer(user) else "")
    proc.write(f"uid={uid}({user}) gid={uid}({user}) groups={groups}\n")
    return 0


@program("hostname")
def _hostname(proc: Proc, args: list[str]) -> int:
    if args and args[0] in ("-I", "-i", "--all-ip-addresses"):
        proc.write(proc.session.ip + " \n")
        return 0
    if args:
        if not proc.is_root:
            raise UsageError("hostname: you must be root to change the host name")
        raise UsageError("hostname: changing the host name is not supported by the voyager simulator")
    proc.write(proc.session.hostname() + "\n")
    return 0


@program("pwd")
def _pwd(proc: Proc, args: list[str]) -> int:
    proc.write(proc.session.cwd + "\n")
    return 0


@program("cd")
def _cd(proc: Proc, args: list[str]) -> int:
    target = proc.path(args[0]) if args else proc.session.home(proc.session.user)
    if not proc.session.is_dir(target):
        raise UsageError(f"bash: cd: {args[0]}: No such file or directory")
    proc.session.cwd = target
    return 0


# -- files ------------------------------------------------------------------------------------------
def _read(proc: Proc, name: str, tool: str) -> str | None:
    if name == "-":
        return proc.stdin.read()
    text = proc.session.read_file(proc.path(name), proc.user)
    if isinstance(text, OSError):
        proc.error(f"{tool}: {name}: {text.strerror}")
        return None
    return text


@program("cat")
def _cat(proc: Proc, args: list[str]) -> int:
    bad = [a for a in args if a.startswith("-") and a != "-"]
    if bad:
        raise UsageError(f"cat: invalid option -- '{bad[0].lstrip('-')[:1]}'")
    status = 0
    for name in args or ["-"]:
        text = _read(proc, name, "cat")
        if text is None:
            status = 1
        else:
            proc.write(text)
    return status


@program("tee")
def _tee(proc: Proc, args: list[str]) -> int:
    append = False
    names = []
    for a in args:
        if a in ("-a", "--append"):
            append = True
        elif a.startswith("-"):
            raise UsageError(f"tee: invalid option -- '{a.lstrip('-')[:1]}'")
        else:
            names.append(a)
    data = proc.stdin.read()
    status = 0
    for name in names:
        path = proc.path(name)
        problem = proc.session.check_writable(path, proc.user)
        if problem:
            proc.error(f"tee: {name}: {problem}")
            status = 1
            continue
        if path != "/dev/null":
            proc.session.write_file(path, data, append=append)
    proc.write(data)
    return status


def _count_option(args: list[str], tool: str) -> tuple[int, list[str], list[str]]:
    """``-n N`` / ``-nN`` / ``-N`` / ``--lines=N``; returns (count, files, other flags)."""
    count, files, flags = 10, [], []
    i = 0
    while i < len(args):
        a = args[i]
        m = re.fullmatch(r"-n(\d+)|--lines=(\d+)|-(\d+)", a)
        if a == "-n":
            if i + 1 >= len(args) or not args[i + 1].lstrip("+").isdigit():
                raise UsageError(f"{tool}: invalid number of lines: ‘{args[i + 1] if i + 1 < len(args) else ''}’")
            count = int(args[i + 1].lstrip("+"))
            i += 1
        elif m:
            count = int(next(g for g in m.groups() if g is not None))
        elif a.startswith("-") and a != "-":
            flags.append(a)
        else:
            files.append(a)
        i += 1
    return count, files, flags


def _head_tail(proc: Proc, args: list[str], tool: str) -> int:
    count, files, flags = _count_option(args, tool)
    follow = [f for f in flags if f in ("-f", "-F", "--follow") or f.startswith("--follow=")]
    if tool == "tail" and follow:
        raise UsageError("tail: -f/--follow 不受模拟器支持：SSH 会话不能一直挂着，请改为定期执行 "
                         "'tail -n N FILE' 轮询 (follow mode is not supported by the voyager simulator; "
                         "poll with 'tail -n N FILE')")
    if flags:
        raise UsageError(f"{tool}: invalid option -- '{flags[0].lstrip('-')[:1]}'")
    status = 0
    names = files or ["-"]
    for k, name in enumerate(names):
        text = _read(proc, name, tool)
        if text is None:
            status = 1
            continue
        if len(names) > 1:
            proc.write(("\n" if k else "") + f"==> {name} <==\n")
        lines = text.splitlines(keepends=True)
        chosen = lines[-count:] if tool == "tail" and count else lines[:count] if tool == "head" else []
        proc.write("".join(chosen))
    return status


@program("tail")
def _tail(proc: Proc, args: list[str]) -> int:
    return _head_tail(proc, args, "tail")


@program("head")
def _head(proc: Proc, args: list[str]) -> int:
    return _head_tail(proc, args, "head")


@program("grep")
def _grep(proc: Proc, args: list[str]) -> int:
    flags, rest, pattern = set(), [], None
    i = 0
    while i < len(args):
        a = args[i]
        if a == "-e" and i + 1 < len(args):
            pattern = args[i + 1]
            i += 1
        elif a.startswith("-") and len(a) > 1 and a != "-":
            flags.update(a[1:])
        else:
            rest.append(a)
        i += 1
    if pattern is None:
        if not rest:
            raise UsageError("Usage: grep [OPTION]... PATTERNS [FILE]...", 2)
        pattern = rest.pop(0)
    try:
        regex = re.compile(re.escape(pattern) if "F" in flags else pattern, re.IGNORECASE if "i" in flags else 0)
    except re.error:
        raise UsageError(f"grep: invalid regular expression: {pattern}", 2) from None
    found, status = 0, 0
    for name in rest or ["-"]:
        text = _read(proc, name, "grep")
        if text is None:
            status = 2
            continue
        for line in text.splitlines():
            if bool(regex.search(line)) != ("v" in flags):
                found += 1
                if not ({"q", "c"} & flags):
                    proc.write((f"{name}:" if len(rest) > 1 else "") + line + "\n")
    if "c" in flags and "q" not in flags:
        proc.write(f"{found}\n")
    return status if status and not found else (0 if found else 1)


@program("ls")
def _ls(proc: Proc, args: list[str]) -> int:
    names = [a for a in args if not a.startswith("-")] or ["."]
    status = 0
    for name in names:
        path = proc.path(name)
        if proc.session.is_file(path):
            proc.write(name + "\n")
        elif proc.session.is_dir(path):
            children = proc.session.children(path)
            if children:
                proc.write("\n".join(children) + "\n")
        else:
            proc.error(f"ls: cannot access '{name}': No such file or directory")
            status = 2
    return status


@program("rm")
def _rm(proc: Proc, args: list[str]) -> int:
    force = any(a.startswith("-") and "f" in a for a in args)
    status = 0
    for name in (a for a in args if not a.startswith("-")):
        path = proc.path(name)
        problem = proc.session.check_writable(path, proc.user)
        if not proc.session.is_file(path):
            if not force:
                proc.error(f"rm: cannot remove '{name}': No such file or directory")
                status = 1
        elif problem:
            proc.error(f"rm: cannot remove '{name}': {problem}")
            status = 1
        else:
            proc.session.remove_file(path)
    return status


@program("[")
def _bracket(proc: Proc, args: list[str]) -> int:
    if args[-1:] != ["]"]:
        raise UsageError("bash: [: missing `]'", 2)
    return _test(proc, args[:-1])


@program("test")
def _test(proc: Proc, args: list[str]) -> int:
    negate = False
    if args and args[0] == "!":
        negate, args = True, args[1:]
    session = proc.session
    if not args:
        result = False
    elif len(args) == 1:
        result = args[0] != ""
    elif len(args) == 2:
        op, value = args
        checks = {
            "-f": lambda: session.is_file(proc.path(value)),
            "-e": lambda: session.is_file(proc.path(value)) or session.is_dir(proc.path(value)),
            "-d": lambda: session.is_dir(proc.path(value)),
            "-s": lambda: bool(session.is_file(proc.path(value)) and session.read_file(proc.path(value), proc.user)),
            "-n": lambda: value != "", "-z": lambda: value == "",
        }
        if op not in checks:
            raise UsageError(f"bash: test: {op}: unary operator expected", 2)
        result = checks[op]()
    elif len(args) == 3:
        left, op, right = args
        if op in ("=", "=="):
            result = left == right
        elif op == "!=":
            result = left != right
        elif op in ("-eq", "-ne", "-lt", "-le", "-gt", "-ge"):
            try:
                a, b = int(left), int(right)
            except ValueError:
                raise UsageError("bash: test: integer expression expected", 2) from None
            result = {"-eq": a == b, "-ne": a != b, "-lt": a < b, "-le": a <= b, "-gt": a > b, "-ge": a >= b}[op]
        else:
            raise UsageError(f"bash: test: {op}: binary operator expected", 2)
    else:
        raise UsageError("bash: test: too many arguments", 2)
    return 0 if result != negate else 1


# -- shells, sudo, nohup -------------------------------------------------------------------------------
@program("sh", "bash")
def _sh(proc: Proc, args: list[str]) -> int:
    args = [a for a in args if a not in ("-e", "-x", "-u", "-eu", "-ex", "-l", "--login")]
    if args and args[0] == "-c":
        if len(args) < 2:
            raise UsageError("sh: -c: option requires an argument", 2)
        return proc.run_nested(args[1])
    if not args or args[0] == "-" or args[0] == "-s":
        return proc.run_nested(proc.stdin.read(), stdin=Stdin(""))
    path = proc.path(args[0])
    script = proc.session.script(path)
    if script is not None:
        return script(proc, args[1:])
    text = proc.session.read_file(path, proc.user)
    if isinstance(text, OSError):
        proc.error(f"sh: {args[0]}: {text.strerror}")
        return 127
    return proc.run_nested(text)


@program("nohup")
def _nohup(proc: Proc, args: list[str]) -> int:
    if not args:
        raise UsageError("nohup: missing operand", 125)
    session = proc.session
    target = session.resolve("nohup.out")
    if session.check_writable(target, proc.user):
        target = session.home(proc.user) + "/nohup.out"
    proc.error("nohup: ignoring input and appending output to 'nohup.out'")
    sub = Proc(proc.shell, proc.user, Stdin(""), proc.background)
    sub.stdout_path = proc.stdout_path or target
    status = proc.shell.execute(sub, args)
    output = "".join(sub.out) + "".join(sub.err)
    if output:
        session.write_file(target, output, append=True)
    return status


def _sudo_failure(proc: Proc, args: list[str]) -> int:
    proc.error("sudo: PAM account management error: Authentication service cannot retrieve authentication info")
    return 1


@program("sudo", failure=_sudo_failure)
def _sudo(proc: Proc, args: list[str]) -> int:
    session = proc.session
    read_password = non_interactive = False
    target_user = "root"
    i = 0
    while i < len(args) and args[i].startswith("-"):
        a = args[i]
        if a == "--":
            i += 1
            break
        if a in ("-u", "-p", "-g", "-C") or a.startswith("--user"):
            if a == "-u":
                target_user = args[i + 1] if i + 1 < len(args) else ""
            i += 2
            continue
        if a.startswith("-u") and len(a) > 2:
            target_user = a[2:]
        elif a.startswith("-p"):
            pass
        else:
            read_password = read_password or "S" in a
            non_interactive = non_interactive or "n" in a
            if set(a[1:]) - set("SnEHikl"):
                raise UsageError(f"sudo: invalid option -- '{sorted(set(a[1:]) - set('SnEHikl'))[0]}'")
        i += 1
    words = args[i:]
    if not words:
        raise UsageError("usage: sudo -h | -K | -k | -V\nusage: sudo [-AbEHknPS] [-C num] [-D directory] "
                         "[-g group] [-h host] [-p prompt] [-R directory] [-T timeout] [-u user] command")
    if target_user != "root" and target_user not in session.users():
        raise UsageError(f"sudo: unknown user {target_user}")
    if proc.user != "root":
        if not session.is_sudoer(proc.user):
            raise UsageError(f"{proc.user} is not in the sudoers file.  This incident will be reported.")
        if not session.sudo_nopasswd(proc.user):
            if non_interactive and not read_password:
                raise UsageError("sudo: a password is required")
            if not read_password:
                raise UsageError("sudo: a terminal is required to read the password; either use the -S option "
                                 "to read from standard input or configure an askpass helper")
            password = proc.stdin.readline().rstrip("\n")
            if not session.check_password(proc.user, password):
                raise UsageError("Sorry, try again.\nsudo: 1 incorrect password attempt")
    if session.program(words[0], proc.shell.programs) is None:
        raise UsageError(f"sudo: {words[0]}: command not found")
    sub = Proc(proc.shell, target_user, proc.stdin, proc.background)
    sub.stdout_path = proc.stdout_path
    status = proc.shell.execute(sub, words)
    proc.out += sub.out
    proc.err += sub.err
    return status


# -- accounts -----------------------------------------------------------------------------------------
def _passwd_failure(proc: Proc, args: list[str]) -> int:
    names = [a for a in args if not a.startswith("-")]
    proc.write(f"Changing password for user {names[0] if names else proc.user}.\n")
    proc.stdin.read()  # passwd reads the new password before PAM refuses it
    proc.error("passwd: Authentication token manipulation error")
    return 1


@program("passwd", failure=_passwd_failure)
def _passwd(proc: Proc, args: list[str]) -> int:
    session = proc.session
    use_stdin = "--stdin" in args
    names = [a for a in args if not a.startswith("-")]
    user = names[0] if names else proc.user
    if names and not proc.is_root and user != proc.user:
        raise UsageError("passwd: Only root can specify a user name.")
    if use_stdin and not proc.is_root:
        raise UsageError("passwd: Only root can do that.")
    if user not in session.users():
        raise UsageError(f"passwd: Unknown user name '{user}'.")
    proc.write(f"Changing password for user {user}.\n")
    if use_stdin:
        new = proc.stdin.readline().rstrip("\n")
    else:
        if not proc.is_root:
            proc.error(f"Changing password for {user}.\nCurrent password: ")
            current = proc.stdin.readline().rstrip("\n")
            if not session.check_password(user, current):
                raise UsageError("passwd: Authentication token manipulation error")
        proc.error("New password: ")
        new = proc.stdin.readline().rstrip("\n")
        proc.error("Retype new password: ")
        again = proc.stdin.readline().rstrip("\n")
        if new != again:
            raise UsageError("Sorry, passwords do not match.\npasswd: Authentication token manipulation error")
    if not new:
        raise UsageError("No password has been supplied.\npasswd: Authentication token manipulation error")
    session.set_password(user, new)
    proc.write("passwd: all authentication tokens updated successfully.\n")
    return 0


def _chpasswd_failure(proc: Proc, args: list[str]) -> int:
    lines = [line for line in proc.stdin.read().splitlines() if line.strip()]
    for n, line in enumerate(lines or [":"], start=1):
        user = line.partition(":")[0]
        proc.error(f"chpasswd: (user {user}) pam_chauthtok() failed, error:\n"
                   f"Authentication token manipulation error\n"
                   f"chpasswd: (line {n}, user {user}) password not changed")
    return 1


@program("chpasswd", failure=_chpasswd_failure)
def _chpasswd(proc: Proc, args: list[str]) -> int:
    if any(a in ("-e", "--encrypted") for a in args):
        raise UsageError("chpasswd: encrypted passwords are not supported by the voyager simulator")
    if not proc.is_root:
        raise UsageError("chpasswd: cannot lock /etc/passwd; try again later.")
    session = proc.session
    changes, errors = [], []
    for n, line in enumerate(proc.stdin.read().splitlines(), start=1):
        if not line.strip():
            continue
        user, sep, password = line.partition(":")
        if not sep or not password:
            errors.append(f"chpasswd: line {n}: missing new password")
        elif user not in session.users():
            errors.append(f"chpasswd: line {n}: user '{user}' does not exist")
        else:
            changes.append((user, password))
    if errors:
        for e in errors:
            proc.error(e)
        proc.error("chpasswd: error detected, changes ignored")
        return 1
    for user, password in changes:
        session.set_password(user, password)
    return 0
