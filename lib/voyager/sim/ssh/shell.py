"""A small POSIX-shell interpreter for the simulated machines' SSH sessions.

It runs what deployment tooling sends over ``ssh host 'command'``: lists joined
by ``;``, ``&&``, ``||``, newlines and ``&`` (background), pipelines with ``|``,
redirections (``>``, ``>>``, ``<``, ``2>&1``, ``2>/dev/null``), here-documents
(``<<EOF`` … ``EOF``, ``<<-``, quoted delimiters) and here-strings (``<<<``),
``sh -c`` / ``bash -c`` nesting and ``sudo``. Words are split with
:mod:`shlex` (quotes honoured); there is no variable, glob or command
substitution. Built-in programs live in :mod:`voyager.sim.ssh.commands`;
machine-specific programs (the CloudTower installer) in
:mod:`voyager.sim.ssh.machines`. An unknown program fails like bash does:
``bash: foo: command not found``, exit status 127.

SSH faults (:mod:`voyager.sim.backend.faults`) are applied to every simple command
before it runs (:meth:`Shell.execute`, so also to what ``sudo``, ``sh -c`` and
``nohup`` run): ``ssh-fail`` runs the program's ``failure`` instead (declared
with the program, see :func:`voyager.sim.ssh.commands.program`; by default
``NAME: Input/output error``, exit status 1) and ``ssh-drop`` raises
:class:`ConnectionDropped`, on which the SSH server cuts the connection.
"""
from __future__ import annotations

import posixpath
import re
import shlex
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

HEREDOC_PREFIX = "__voyager_heredoc_"
_SEPARATORS = {";", "&", "&&", "||", "|"}
_REDIRECTS = {">", ">>", "<", ">&", "<<<", "&>", ">|"}


class ShellSyntaxError(Exception):
    pass


class ConnectionDropped(Exception):
    """An ``ssh-drop`` fault hit this command: the connection is cut, nothing more runs."""


class ExitScript(Exception):
    """``exit N``: stop interpreting the current script."""

    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


class Stdin:
    """A command's standard input, read lazily: a command that never reads it
    never waits for the client to close it."""

    def __init__(self, text: str = "", reader: Optional[Callable[[], str]] = None):
        self._text = text
        self._reader = reader
        self._lock = threading.Lock()

    def read(self) -> str:
        with self._lock:
            if self._reader is not None:
                self._text += self._reader()
                self._reader = None
            text, self._text = self._text, ""
            return text

    def readline(self) -> str:
        text = self.read()
        line, sep, rest = text.partition("\n")
        with self._lock:
            self._text = rest + self._text
        return line + sep


@dataclass
class Redirect:
    op: str  # ">", ">>", "<", "dup" (2>&1), "herestring"
    fd: int
    target: str


@dataclass
class Command:
    words: list[str] = field(default_factory=list)
    redirects: list[Redirect] = field(default_factory=list)


@dataclass
class AndOr:
    pipelines: list[list[Command]]
    operators: list[str]  # "&&" / "||" between pipelines
    background: bool = False


# -- here-documents -----------------------------------------------------------------------------
_HEREDOC = re.compile(r"<<(-?)[ \t]*(['\"]?)([A-Za-z0-9_.\-]+)\2")


def extract_heredocs(text: str, bodies: dict[str, str]) -> str:
    """Replace each ``<<DELIM`` (outside quotes) by ``< <placeholder>`` and move
    its body (the following lines up to ``DELIM``) into ``bodies``; drop
    ``# comments`` (outside quotes, at the start of a word)."""
    out: list[str] = []
    pending: list[tuple[str, str, bool]] = []
    quote: Optional[str] = None
    i = 0
    while i < len(text):
        c = text[i]
        if quote == "'":
            quote = None if c == "'" else quote
            out.append(c)
            i += 1
            continue
        if c == "\\":
            out.append(text[i:i + 2])
            i += 2
            continue
        if quote == '"':
            quote = None if c == '"' else quote
            out.append(c)
            i += 1
            continue
        if c in "'\"":
            quote = c
        elif c == "#" and (i == 0 or text[i - 1] in " \t\n;&|"):  # a comment, to the end of the line
            j = text.find("\n", i)
            i = len(text) if j < 0 else j
            continue
        elif text.startswith("<<<", i):
            out.append("<<<")
            i += 3
            continue
        elif text.startswith("<<", i):
            m = _HEREDOC.match(text, i)
            if m:
                key = f"{HEREDOC_PREFIX}{len(bodies) + len(pending)}__"
                pending.append((key, m.group(3), bool(m.group(1))))
                out.append(f"< {key}")
                i = m.end()
                continue
        elif c == "\n" and pending:
            out.append("\n")
            i += 1
            for key, delim, strip in pending:
                lines: list[str] = []
                while i < len(text):
                    j = text.find("\n", i)
                    line = text[i:] if j < 0 else text[i:j]
                    i = len(text) if j < 0 else j + 1
                    if (line.lstrip("\t") if strip else line) == delim:
                        break
                    lines.append(line.lstrip("\t") if strip else line)
                bodies[key] = "".join(f"{line}\n" for line in lines)
            pending = []
            continue
        out.append(c)
        i += 1
    if quote:
        raise ShellSyntaxError(f"unexpected EOF while looking for matching `{quote}'")
    for key, _delim, _strip in pending:  # no body line at all
        bodies[key] = ""
    return "".join(out)


# -- parsing ------------------------------------------------------------------------------------
def tokenize(text: str) -> list[str]:
    lexer = shlex.shlex(text, posix=True, punctuation_chars="();<>|&\n")
    lexer.whitespace = " \t\r"
    lexer.whitespace_split = True
    lexer.commenters = ""  # comments are removed by extract_heredocs (quote-aware)
    tokens: list[str] = []
    try:
        raw = list(lexer)
    except ValueError as exc:  # unbalanced quotes
        raise ShellSyntaxError(str(exc)) from None
    for tok in raw:
        if tok and set(tok) <= set("();<>|&\n"):
            if tok.strip("\n") == "":
                tokens.append(";")
                continue
            core = tok.replace("\n", "")
            if core in ("&&", "||", "|", "&", ";", "&;"):
                tokens.append(core[0] if core == "&;" else core)
            elif core in ("<<<", ">", ">>", "<", ">&", "&>", ">|"):
                tokens.append(core)
            elif core in ("(", ")", "()"):
                raise ShellSyntaxError(f"syntax error near unexpected token `{core}' (subshells are not supported)")
            else:
                raise ShellSyntaxError(f"syntax error near unexpected token `{core}'")
            if "\n" in tok and core in ("&", ";"):
                continue
        else:
            tokens.append(tok)
    return tokens


def parse(text: str) -> list[AndOr]:
    tokens = tokenize(text)
    lists: list[AndOr] = []
    pipelines: list[list[Command]] = []
    operators: list[str] = []
    pipeline: list[Command] = []
    cmd = Command()
    i = 0

    def end_command() -> None:
        nonlocal cmd
        if not cmd.words and not cmd.redirects:
            raise ShellSyntaxError(f"syntax error near unexpected token `{tokens[i]}'")
        pipeline.append(cmd)
        cmd = Command()

    while i < len(tokens):
        tok = tokens[i]
        if tok in _REDIRECTS:
            fd = 1 if tok not in ("<", "<<<") else 0
            if cmd.words and cmd.words[-1].isdigit() and len(cmd.words[-1]) == 1 and tok in (">", ">>", ">&"):
                fd = int(cmd.words.pop())
            if i + 1 >= len(tokens) or tokens[i + 1] in _SEPARATORS | _REDIRECTS:
                following = tokens[i + 1] if i + 1 < len(tokens) else "newline"
                raise ShellSyntaxError(f"syntax error near unexpected token `{following}'")
            target = tokens[i + 1]
            if tok == ">&":
                cmd.redirects.append(Redirect("dup", fd, target))
            elif tok == "&>":
                cmd.redirects += [Redirect(">", 1, target), Redirect("dup", 2, "1")]
            elif tok == "<<<":
                cmd.redirects.append(Redirect("herestring", 0, target))
            else:
                cmd.redirects.append(Redirect(">" if tok == ">|" else tok, fd, target))
            i += 2
            continue
        if tok == "|":
            end_command()
        elif tok in ("&&", "||"):
            end_command()
            pipelines.append(pipeline)
            pipeline = []
            operators.append(tok)
        elif tok in (";", "&"):
            if cmd.words or cmd.redirects:
                end_command()
            if pipeline:
                pipelines.append(pipeline)
                pipeline = []
                lists.append(AndOr(pipelines, operators, background=tok == "&"))
                pipelines, operators = [], []
            elif pipelines or tok == "&":
                raise ShellSyntaxError(f"syntax error near unexpected token `{tok}'")
        else:
            cmd.words.append(tok)
        i += 1
    if tokens and tokens[-1] in ("|", "&&", "||"):
        raise ShellSyntaxError("syntax error: unexpected end of file")
    if cmd.words or cmd.redirects:
        pipeline.append(cmd)
    if pipeline:
        pipelines.append(pipeline)
    if pipelines:
        if len(pipelines) != len(operators) + 1:
            raise ShellSyntaxError("syntax error: unexpected end of file")
        lists.append(AndOr(pipelines, operators))
    return lists


# -- execution ------------------------------------------------------------------------------------
class Proc:
    """One running program: its arguments' context, I/O and effective user."""

    def __init__(self, shell: "Shell", user: str, stdin: Stdin, background: bool):
        self.shell = shell
        self.session = shell.session
        self.user = user
        self.stdin = stdin
        self.background = background
        self.out: list[str] = []
        self.err: list[str] = []
        self.stdout_path: Optional[str] = None  # the file stdout is redirected to, if any

    @property
    def is_root(self) -> bool:
        return self.user == "root"

    def write(self, text: str) -> None:
        self.out.append(text)

    def error(self, text: str) -> None:
        self.err.append(text if text.endswith("\n") else text + "\n")

    def path(self, name: str) -> str:
        return self.session.resolve(name)

    def run_nested(self, text: str, *, user: Optional[str] = None, stdin: Optional[Stdin] = None) -> int:
        """Interpret ``text`` as a script (``sh -c``), output going to this process."""
        status, out, err = self.shell.run(text, stdin or self.stdin, user=user or self.user,
                                          background=self.background)
        self.out.append(out)
        self.err.append(err)
        return status


class Shell:
    """Interprets command lines for one SSH session (see :class:`voyager.sim.ssh.machines.Session`)."""

    def __init__(self, session, programs: dict[str, Callable[[Proc, list[str]], int]]):
        self.session = session
        self.programs = programs
        self.heredocs: dict[str, str] = {}

    def run(self, text: str, stdin: Stdin, *, user: Optional[str] = None,
            background: bool = False) -> tuple[int, str, str]:
        """``(exit status, stdout, stderr)`` of a whole command line."""
        user = user or self.session.user
        out: list[str] = []
        err: list[str] = []
        try:
            script = parse(extract_heredocs(text, self.heredocs))
        except ShellSyntaxError as exc:
            return 2, "", f"bash: {exc}\n"
        status = 0
        try:
            for and_or in script:
                status = self._and_or(and_or, stdin, user, background or and_or.background, out, err)
                if and_or.background:
                    status = 0
        except ExitScript as exc:
            status = exc.status
        return status, "".join(out), "".join(err)

    def _and_or(self, and_or: AndOr, stdin: Stdin, user: str, background: bool,
                out: list[str], err: list[str]) -> int:
        status = self._pipeline(and_or.pipelines[0], stdin, user, background, out, err)
        for op, pipeline in zip(and_or.operators, and_or.pipelines[1:]):
            if (op == "&&" and status == 0) or (op == "||" and status != 0):
                status = self._pipeline(pipeline, stdin, user, background, out, err)
        return status

    def _pipeline(self, commands: list[Command], stdin: Stdin, user: str, background: bool,
                  out: list[str], err: list[str]) -> int:
        status = 0
        feed = stdin
        for k, cmd in enumerate(commands):
            last = k == len(commands) - 1
            status, stdout, stderr = self._command(cmd, feed, user, background)
            err.append(stderr)
            if last:
                out.append(stdout)
            else:
                feed = Stdin(stdout)
        return status

    def _command(self, cmd: Command, stdin: Stdin, user: str, background: bool) -> tuple[int, str, str]:
        proc = Proc(self, user, stdin, background)
        # fd -> "out" (the session's stdout), "err" (its stderr), or a file path
        targets: dict[int, str] = {1: "out", 2: "err"}
        for red in cmd.redirects:
            if red.op == "herestring":
                proc.stdin = Stdin(red.target + "\n")
            elif red.op == "<":
                if red.target.startswith(HEREDOC_PREFIX):
                    proc.stdin = Stdin(self.heredocs.get(red.target, ""))
                else:
                    text = self.session.read_file(self.session.resolve(red.target), user)
                    if isinstance(text, OSError):
                        return 1, "", f"bash: {red.target}: {text.strerror}\n"
                    proc.stdin = Stdin(text)
            elif red.op == "dup":
                if red.target not in ("1", "2") or red.fd not in (1, 2):
                    return 1, "", f"bash: {red.target}: ambiguous redirect\n"
                targets[red.fd] = targets[int(red.target)]
            else:
                if red.fd not in (1, 2):
                    return 1, "", f"bash: {red.fd}: Bad file descriptor\n"
                path = self.session.resolve(red.target)
                problem = self.session.check_writable(path, user)
                if problem:
                    return 1, "", f"bash: {red.target}: {problem}\n"
                if red.op == ">" and path != "/dev/null":
                    self.session.write_file(path, "", append=False)
                targets[red.fd] = path
        proc.stdout_path = targets[1] if targets[1] not in ("out", "err") else None
        status = self.execute(proc, cmd.words) if cmd.words else 0
        produced = {1: "".join(proc.out), 2: "".join(proc.err)}
        passthrough = {"out": "", "err": ""}
        for fd in (1, 2):
            target = targets[fd]
            if target in passthrough:
                passthrough[target] += produced[fd]
            elif target != "/dev/null":
                self.session.write_file(target, produced[fd], append=True)
        return status, passthrough["out"], passthrough["err"]

    def execute(self, proc: Proc, words: list[str]) -> int:
        """Run one simple command ``words`` in ``proc``."""
        name = words[0]
        program = self.session.program(name, self.programs)
        if program is None:
            if "/" in name:
                proc.error(f"bash: {name}: No such file or directory")
            else:
                proc.error(f"bash: {name}: command not found")
            return 127
        fault = self.session.world.faults.take_ssh(" ".join(words))
        if fault == "ssh-drop":
            raise ConnectionDropped(" ".join(words))
        if fault == "ssh-fail":
            failure = getattr(program, "failure", None)
            if failure is None:
                return generic_failure(proc, name)
            program = failure
        try:
            return int(program(proc, words[1:]))
        except ExitScript:
            raise
        except UsageError as exc:
            proc.error(str(exc))
            return exc.status


def generic_failure(proc: Proc, name: str) -> int:
    """What an ``ssh-fail`` fault makes of a program that declares no failure of its own."""
    proc.error(f"{posixpath.basename(name)}: Input/output error")
    return 1


class UsageError(Exception):
    """A program refused its arguments; the message goes to stderr."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


def normalize(cwd: str, name: str, home: str) -> str:
    if name == "~" or name.startswith("~/"):
        name = home + name[1:]
    return posixpath.normpath(posixpath.join(cwd, name)).replace("//", "/")


__all__: list[Any] = ["ConnectionDropped", "ExitScript", "Proc", "Shell", "ShellSyntaxError", "Stdin", "UsageError",
                      "generic_failure", "normalize", "parse", "tokenize", "extract_heredocs"]
