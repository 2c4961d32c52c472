"""One process-wide redactor: secrets are replaced before anything is stored or printed.

:data:`REDACTOR` knows

* every secret of the plan (:meth:`Redactor.add_plan`) and every token issued during
  the run (:meth:`Redactor.add_secret`), together with the forms they take on the
  wire and in printed output: the host-password encoding of the deployment API
  (``voyager.encoding``), base64, URL encoding, JSON escaping (ASCII and not), HTML
  escaping and Python ``repr`` escaping (str and bytes) of each of those;
* sensitive keys (``password``, ``token``, ``Authorization``, ``x-smartx-token``,
  ``root_password``, ``repeat``, cookies ...) whose values are masked in dicts,
  JSON, headers and query strings whatever the value.

Only values are replaced, never code: tracebacks show source lines, and an
unquoted ``key: value`` / ``key=value`` is left alone when it is source code —
the "value" is on the next line (``if not password:`` / ``raise ...``), a Python
word, an annotation type (``password: Secret``), a call or subscript, a
reference to another sensitive name (``password=password``) or an attribute
assigned with spaces (``password = plan.cluster.admin_user``); ``chpasswd`` is a
program, not a key. Registered secrets are still replaced by value everywhere.

A secret shorter than :data:`MIN_VALUE_LEN` characters is not replaced by value
(that would mangle ordinary text: ``ADMIN`` is also a word); it is still masked
wherever it sits under a sensitive key, and its encoded forms (which are long and
distinctive) are replaced by value.

The same redactor is installed as a logging filter / record factory
(:func:`install_logging`), used by the evidence recorder and by every client
exception (:class:`RedactedError`), and can clean pytest reports
(:func:`redact_report`).
"""
from __future__ import annotations

import base64
import html
import json
import logging
import re
import threading
from typing import Any, Iterable, Mapping
from urllib.parse import quote, quote_plus

from voyager.encoding import encode_host_password, fits_keystream
from voyager.plan.model import MASK, Secret

MIN_VALUE_LEN = 6
FRAGMENT_MIN = 6  # pytest output: any run of this many characters of a secret form is masked

SENSITIVE_KEYS = frozenset(
    {
        "password", "passwd", "pwd", "token", "authorization", "proxy-authorization",
        "x-smartx-token", "root_password", "repeat", "cookie", "cookies", "set-cookie",
        "secret",
    }
)
_SENSITIVE_SUFFIXES = ("password", "passwd", "token", "secret")
_NOT_SENSITIVE = frozenset({"chpasswd"})  # a program ("chpasswd: cannot lock /etc/passwd"), not a field

# Structural patterns. A key is matched as a whole token (possessive: no backtracking,
# linear time on any input) that must end with a sensitive word (fixed-width
# lookbehinds), so an ordinary ``key: value`` never consumes the text after it.
_TOKEN = (r"[A-Za-z0-9_.-]++(?:(?<=password)|(?<=passwd)|(?<=token)|(?<=secret)|(?<=authorization)"
          r"|(?<=repeat)|(?<=pwd))")
_VALUE_IN = r"(?P<vq>[\"'])(?P<val>(?:\\.|(?!(?P=vq)).)*+)(?P=vq)"
# "key": "value" / 'key': 'value' (JSON, Python dict reprs)
_QUOTED = re.compile(r"(?P<q>[\"'])(?P<key>" + _TOKEN + r")(?P=q)(?P<sep>\s*+:\s*+)" + _VALUE_IN, re.IGNORECASE)
# \"key\": \"value\" (JSON embedded in a JSON string)
_ESCAPED_QUOTED = re.compile(r'\\"(?P<key>' + _TOKEN + r')\\"(?P<sep>\s*+:\s*+)\\"(?P<val>(?:(?!\\").)*+)\\"',
                             re.IGNORECASE)
# key='value', key: "value" (keyword-argument reprs, YAML-ish lines). Unquoted keys and their
# values share a line: the separator is horizontal space only, so ``if not password:`` never
# takes the next line's first word for its value.
_BARE_QUOTED = re.compile(r"(?<![\w.-])(?P<key>" + _TOKEN + r")(?P<sep>[ \t]*+[:=][ \t]*+)" + _VALUE_IN,
                          re.IGNORECASE)
# key=value, key: value (headers, query strings, key=value log lines); see _is_code for the
# source-code shapes (``password: Secret``, ``token = self._new_token()``) that are kept.
_BARE = re.compile(
    r"(?<![\w.-])(?P<key>" + _TOKEN + r")(?P<sep>[ \t]*+[:=][ \t]*+)(?!Secret\()(?![\"'\s=])"
    r"(?P<val>(?:(?:Bearer|Basic|Token)[ \t]++)?[^\s&,;'\"<>()\[\]{}]++)",
    re.IGNORECASE,
)
_DOTTED_NAME = re.compile(r"\$?+[A-Za-z_][A-Za-z0-9_]*+(?:\.[A-Za-z_][A-Za-z0-9_]*+)*+")  # $: GraphQL variables
# Python words that never are a value: keywords and constants (a value is masked even when it
# is one of these only when it is quoted, and then _BARE does not apply)
_PY_WORDS = frozenset({"None", "True", "False", "and", "or", "not", "in", "is", "if", "else", "for", "lambda",
                       "return", "raise", "yield", "await", "async", "with", "as", "from", "import", "del",
                       "pass", "assert", "while", "def", "class", "try", "except", "finally"})
# annotation types seen after ``name:`` in signatures and dataclasses
_TYPE_NAMES = frozenset({"Secret", "str", "bytes", "int", "bool", "float", "dict", "list", "tuple", "set",
                         "Any", "Optional", "Union", "Mapping", "Sequence", "Iterable", "Callable", "object",
                         "String"})  # GraphQL: ($root_password: String!)
# Cookie: a=b; c=d  (the whole header value)
_COOKIE = re.compile(r"(?<![\w-])(?P<key>set-cookie|cookies?)(?P<sep>\s*+:\s*+)(?P<val>[^\r\n]++)", re.IGNORECASE)
# The opening of a quoted value under a key ("key": " / key=' / \"key\": \"), for a window
# cut inside such a value (its closing quote lies beyond the window).
_OPENING = re.compile(r"(?:(?P<q>\\?+[\"'])|(?<![\w.\-\\\"']))(?P<key>" + _TOKEN + r")(?(q)(?P=q))"
                      r"\s*+[:=]\s*+(?P<vq>\\?+[\"'])", re.IGNORECASE)
WINDOW_MARGIN = 256  # characters redacted beyond a window's edge and then dropped (at least)


def is_sensitive_key(key: Any) -> bool:
    """True for dict/header/query keys whose values are always masked."""
    if not isinstance(key, str):
        return False
    k = key.strip().lower()
    return k not in _NOT_SENSITIVE and (k in SENSITIVE_KEYS or k.endswith(_SENSITIVE_SUFFIXES))


def _py_escapes(s: str) -> set[str]:
    """How ``s`` looks inside Python str/bytes reprs (pytest assertion output)."""
    out = {repr(s)[1:-1], repr(s + "'\"")[1:-4]}
    raw = s.encode("utf-8")
    out.add(repr(raw)[2:-1])
    out.add(repr(raw + b"'\"")[2:-4])
    return out


def _encoded_forms(value: str) -> set[str]:
    raw = value.encode("utf-8")
    forms = {base64.b64encode(raw).decode("ascii")}
    if fits_keystream(value):
        forms.add(encode_host_password(value))
    return forms


def secret_forms(value: str) -> set[str]:
    """Every form in which ``value`` may show up in text (see the module docstring)."""
    raw = value.encode("utf-8")
    base = {
        value,
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        quote(value, safe=""),
        quote(value),
        quote_plus(value, safe=""),
        html.escape(value),
        html.escape(value, quote=False),
        base64.b64encode(raw).decode("ascii"),
        base64.b64encode(raw).decode("ascii").rstrip("="),
        base64.urlsafe_b64encode(raw).decode("ascii").rstrip("="),
    }
    base |= _encoded_forms(value)
    forms = set(base)
    for form in base:
        forms |= _py_escapes(form)
    # JSON escaping of escaped text (a JSON string carried inside another JSON string)
    forms.add(json.dumps(json.dumps(value)[1:-1])[1:-1])
    return {f for f in forms if f}


class Redactor:
    """Replaces known secrets and sensitive-key values; thread-safe."""

    def __init__(self, min_len: int = MIN_VALUE_LEN):
        self.min_len = min_len
        self._lock = threading.Lock()
        self._values: set[str] = set()  # plain secrets known (for membership tests)
        self._forms: set[str] = set()  # strings replaced by value
        self._pattern: re.Pattern[str] | None = None
        self._grams: dict[int, frozenset[str]] = {}
        self._longest = 0  # length of the longest form replaced by value

    # -- registration --------------------------------------------------------
    def add_secret(self, value: Secret | str | None) -> None:
        """Register a secret (a plan password, a session token ...)."""
        plain = value.reveal() if isinstance(value, Secret) else value
        if not plain or not isinstance(plain, str):
            return
        with self._lock:
            if plain in self._values:
                return
            self._values.add(plain)
            if len(plain) >= self.min_len:
                forms = secret_forms(plain)
            else:  # short: only the long, distinctive encoded forms
                forms = {f for f in _encoded_forms(plain) if len(f) >= self.min_len}
            self._forms |= forms
            self._longest = max([self._longest, *map(len, forms)])
            self._pattern = None
            self._grams = {}

    def add_secrets(self, values: Iterable[Secret | str | None]) -> None:
        for v in values:
            self.add_secret(v)

    def add_plan(self, plan: Any) -> None:
        """Register every secret of a :class:`voyager.plan.model.Plan`."""
        self.add_secrets(plan.secrets())

    def knows(self, value: str) -> bool:
        with self._lock:
            return value in self._values

    def clear(self) -> None:
        """Forget every registered secret (tests)."""
        with self._lock:
            self._values.clear()
            self._forms.clear()
            self._longest = 0
            self._pattern = None
            self._grams = {}

    def _compiled(self) -> re.Pattern[str] | None:
        with self._lock:
            if self._pattern is None and self._forms:
                ordered = sorted(self._forms, key=len, reverse=True)
                self._pattern = re.compile("|".join(re.escape(f) for f in ordered))
            return self._pattern

    # -- redaction -------------------------------------------------------------
    def redact(self, text: Any) -> Any:
        """Return ``text`` with secrets and sensitive-key values masked.
        Non-strings are returned unchanged (use :meth:`redact_obj` for structures)."""
        if isinstance(text, Secret):
            return str(text)
        if not isinstance(text, str) or not text:
            return text
        pattern = self._compiled()
        if pattern is not None:
            text = pattern.sub(MASK, text)
        for structural in (_QUOTED, _ESCAPED_QUOTED, _COOKIE, _BARE_QUOTED, _BARE):
            text = structural.sub(_mask_value, text)
        return text

    def redact_window(self, text: str, limit: int, *, tail: bool = False) -> str:
        """The redacted first (``tail``: last) ``limit`` or so characters of ``text``,
        at a cost bounded by ``limit`` whatever the length of ``text`` (evidence of
        a 30 MiB command output or body). The window is redacted with a margin
        beyond its edge that is then dropped, so a secret cut by the edge never
        shows in part; a sensitive key's quoted value still open at the edge of a
        head window is masked to the end."""
        if not isinstance(text, str):
            return self.redact(text)
        with self._lock:
            margin = max(WINDOW_MARGIN, self._longest)
        limit = max(0, int(limit))
        if len(text) <= limit + margin:
            return self.redact(text)
        if tail:
            return self.redact(text[-(limit + margin):])[margin:]
        red = self.redact(text[: limit + margin])
        red = red[: len(red) - margin]
        opening = None
        for m in _OPENING.finditer(red):
            if is_sensitive_key(m.group("key")):
                opening = m
        if opening is not None:
            quote_, rest = opening.group("vq"), red[opening.end():]
            closed = quote_ in rest if len(quote_) > 1 else re.match(
                r"(?:\\.|[^\\" + quote_ + r"])*+" + quote_, rest) is not None
            if not closed:
                red = red[: opening.end()] + MASK
        return red

    def redact_fragments(self, text: str, k: int = FRAGMENT_MIN) -> str:
        """:meth:`redact`, then mask every run of ``k`` or more characters taken from a
        secret form. For text that may show secrets cut into pieces (pytest splits
        and truncates long reprs); too aggressive for ordinary logs."""
        text = self.redact(text)
        if not isinstance(text, str) or len(text) < k:
            return text
        with self._lock:
            grams = self._grams.get(k)
            if grams is None:
                grams = frozenset(f[i:i + k] for f in self._forms if len(f) >= k for i in range(len(f) - k + 1))
                self._grams[k] = grams
        if not grams:
            return text
        marked = bytearray(len(text))
        for i in range(len(text) - k + 1):
            if text[i:i + k] in grams:
                marked[i:i + k] = b"\x01" * k
        if not any(marked):
            return text
        out, i = [], 0
        while i < len(text):
            if marked[i]:
                while i < len(text) and marked[i]:
                    i += 1
                out.append(MASK)
            else:
                j = i
                while j < len(text) and not marked[j]:
                    j += 1
                out.append(text[i:j])
                i = j
        return "".join(out)

    def redact_obj(self, obj: Any) -> Any:
        """A redacted copy of a JSON-like structure (dicts, lists, strings, Secrets)."""
        if isinstance(obj, Secret):
            return str(obj)
        if isinstance(obj, str):
            return self.redact(obj)
        if isinstance(obj, (bytes, bytearray)):
            try:
                return self.redact(bytes(obj).decode("utf-8")).encode("utf-8")
            except UnicodeDecodeError:
                return bytes(obj)
        if isinstance(obj, Mapping):
            out = {}
            for k, v in obj.items():
                if is_sensitive_key(k) and v not in (None, "", [], {}):
                    out[k] = MASK
                else:
                    out[k] = self.redact_obj(v)
            return out
        if isinstance(obj, list):
            return [self.redact_obj(v) for v in obj]
        if isinstance(obj, tuple):
            return tuple(self.redact_obj(v) for v in obj)
        return obj

    def redact_exception(self, exc: BaseException) -> str:
        """``Type: message`` of any exception, redacted (for messages and logs)."""
        return f"{type(exc).__name__}: {self.redact(str(exc))}"


def _is_code(m: re.Match[str]) -> bool:
    """True when a bare ``key: value`` / ``key = value`` match is a line of source code (a
    traceback shows the source around each frame) rather than data: the "value" is a Python
    word, an annotation type, a call or subscript, a reference to another sensitive name
    (``password=password``, ``token=self._token``), or an attribute assigned with spaces around
    ``=`` (``password = plan.cluster.admin_user``, which no header or query string has). Secret
    values themselves are still replaced by value wherever they appear."""
    value, sep = m.group("val"), m.group("sep")
    after = m.string[m.end("val"):m.end("val") + 1]
    if value in _PY_WORDS or after in ("(", "["):
        return True
    if sep.strip() == ":" and value.rstrip("!") in _TYPE_NAMES:
        return True
    if _DOTTED_NAME.fullmatch(value) is None:
        return False
    if is_sensitive_key(value.rsplit(".", 1)[-1]):
        return True
    return "." in value and sep.strip() == "=" and sep[0] in " \t" and sep[-1] in " \t"


def _mask_value(m: re.Match[str]) -> str:
    """Mask the ``val`` group when ``key`` is sensitive; keep everything else (an empty value,
    and source code for the bare pattern: see :func:`_is_code`)."""
    if not is_sensitive_key(m.group("key")) or m.group("val") in (MASK, ""):
        return m.group(0)
    if m.re is _BARE and _is_code(m):
        return m.group(0)
    start, end = m.span("val")
    base = m.start()
    whole = m.group(0)
    return whole[: start - base] + MASK + whole[end - base:]


REDACTOR = Redactor()


class RedactedError(Exception):
    """Base of voyager errors: the message is redacted when the error is created."""

    def __init__(self, message: str = ""):
        super().__init__(REDACTOR.redact(str(message)))


# -- logging ------------------------------------------------------------------------
class RedactingFilter(logging.Filter):
    """Redacts a record in place: message (with its args applied), exc_text, stack_info."""

    def __init__(self, redactor: Redactor | None = None):
        super().__init__()
        self.redactor = redactor or REDACTOR

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record, self.redactor)
        return True


def redact_record(record: logging.LogRecord, redactor: Redactor | None = None) -> logging.LogRecord:
    redactor = redactor or REDACTOR
    try:
        message = record.getMessage()
    except Exception:  # a broken format string: logging reports it itself
        return record
    record.msg = redactor.redact(message)
    record.args = ()
    if record.exc_info and record.exc_info[0] is not None:
        if not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        # the traceback object holds frames (and their locals): drop it
        record.exc_info = None
    if record.exc_text:
        record.exc_text = redactor.redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redactor.redact(record.stack_info)
    return record


_factory_lock = threading.Lock()
_installed_factory: Any = None


def install_logging(redactor: Redactor | None = None, logger: logging.Logger | None = None) -> RedactingFilter:
    """Install redaction for every log record of the process.

    A filter goes on ``logger`` (the root logger by default) and on its current
    handlers; a log-record factory redacts records of every logger at creation,
    so handlers added later (pytest's live log, caplog) never see a secret.
    Idempotent.
    """
    redactor = redactor or REDACTOR
    target = logger or logging.getLogger()
    filt = next((f for f in target.filters if isinstance(f, RedactingFilter)), None)
    if filt is None:
        filt = RedactingFilter(redactor)
        target.addFilter(filt)
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter(redactor))
    global _installed_factory
    with _factory_lock:
        current = logging.getLogRecordFactory()
        if getattr(current, "_voyager_redacting", False):
            return filt
        previous = current

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            return redact_record(previous(*args, **kwargs), redactor)

        factory._voyager_redacting = True  # type: ignore[attr-defined]
        factory._voyager_previous = previous  # type: ignore[attr-defined]
        logging.setLogRecordFactory(factory)
        _installed_factory = factory
    return filt


# -- pytest reports -------------------------------------------------------------------
class _RedactedRepr:
    """A failure representation rendered to text and redacted (keeps ``reprcrash``)."""

    def __init__(self, text: str, reprcrash: Any = None):
        self.text = text
        self.reprcrash = reprcrash
        self.sections: list[Any] = []

    def toterminal(self, tw: Any) -> None:
        for line in self.text.splitlines():
            if line.startswith("E   ") or line == "E":
                tw.line(line, red=True, bold=True)
            else:
                tw.line(line)

    def __str__(self) -> str:
        return self.text


class _Crash:
    def __init__(self, path: str, lineno: int, message: str):
        self.path, self.lineno, self.message = path, lineno, message

    def toterminal(self, tw: Any) -> None:
        tw.line(f"{self.path}:{self.lineno}: {self.message}")


def redact_report(report: Any, redactor: Redactor | None = None) -> Any:
    """Redact a pytest ``TestReport``/``CollectReport`` in place (longrepr and
    captured sections). The pytest plugin calls it from report hooks."""
    redactor = redactor or REDACTOR
    clean = redactor.redact_fragments
    longrepr = getattr(report, "longrepr", None)
    if isinstance(longrepr, str):
        report.longrepr = clean(longrepr)
    elif isinstance(longrepr, tuple) and len(longrepr) == 3:
        path, lineno, msg = longrepr
        report.longrepr = (path, lineno, clean(str(msg)))
    elif longrepr is not None and hasattr(longrepr, "toterminal") and not isinstance(longrepr, _RedactedRepr):
        crash = getattr(longrepr, "reprcrash", None)
        new_crash = None
        if crash is not None:
            new_crash = _Crash(str(crash.path), crash.lineno, clean(str(crash.message)))
        report.longrepr = _RedactedRepr(clean(str(longrepr)), new_crash)
    sections = getattr(report, "sections", None)
    if sections:
        report.sections = [(title, clean(content)) for title, content in sections]
    return report


def _full_repr(obj: Any) -> str:
    try:
        return repr(obj)
    except Exception as exc:  # noqa: BLE001 - a broken __repr__ must not break reporting
        return f"<{type(obj).__name__} repr failed: {type(exc).__name__}>"


def assertrepr_compare(op: str, left: Any, right: Any, redactor: Redactor | None = None) -> list[str] | None:
    """An assertion explanation without secrets, or None when no secret is involved.
    (pytest's own explanation would split or truncate a secret-bearing repr into
    pieces that no by-value redaction recognises.)"""
    redactor = redactor or REDACTOR
    shown = []
    touched = False
    for value in (left, right):
        text = _full_repr(value)
        red = redactor.redact_fragments(text)
        touched = touched or red != text
        shown.append(red if len(red) <= 2000 else red[:2000] + "…")
    if not touched:
        return None
    return [f"{shown[0]} {op} {shown[1]}",
            "（比较的值中含有密码或令牌，已脱敏，不显示逐项差异 / compared values hold secrets: redacted, no diff）"]


def report_redaction_plugin(redactor: Redactor | None = None) -> Any:
    """A pytest plugin object redacting every test and collection report:
    ``config.pluginmanager.register(report_redaction_plugin(), "voyager-redact")``."""
    import pytest

    redactor = redactor or REDACTOR

    class RedactReports:
        @pytest.hookimpl(tryfirst=True)
        def pytest_assertrepr_compare(self, config: Any, op: str, left: Any, right: Any) -> Any:
            return assertrepr_compare(op, left, right, redactor)

        @pytest.hookimpl(hookwrapper=True)
        def pytest_runtest_makereport(self, item: Any, call: Any) -> Any:
            outcome = yield
            redact_report(outcome.get_result(), redactor)

        @pytest.hookimpl(hookwrapper=True)
        def pytest_make_collect_report(self, collector: Any) -> Any:
            outcome = yield
            redact_report(outcome.get_result(), redactor)

    return RedactReports()
