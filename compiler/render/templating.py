"""Jinja for meshc: sandboxed, strict, confined to the project, errors as diagnostics.

One :class:`Templates` per compilation (templates are parsed once and cached in it). Templates
see only what they are given: no Python internals (the immutable sandbox), no undefined names
(StrictUndefined: a typo is an error with the template's file and line), and no files outside
the project (the loader goes through :class:`~compiler.core.files.ProjectFiles`).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import posixpath
from collections.abc import Callable, Mapping, MutableMapping
from json.encoder import encode_basestring
from types import TracebackType
from typing import Any, NoReturn

import jinja2
from jinja2.exceptions import SecurityError

from ..core.diagnostics import WHOLE_LINE, CompileError, Diagnostic
from ..core.files import NotUTF8, OutsideProject, ProjectFiles
from ..core.source import Span
from ..syntax.yamlsrc import dump_yaml
from .sandbox import EnvironmentVariableError, GuardedSandbox, environment_functions, limit_message


class TemplateFailure(Exception):
    """Raised by ``fail()`` / ``required()`` inside a template."""


class TemplateUnreadable(jinja2.TemplateNotFound):
    """A template that is there but cannot be read: outside the project, a symlink loop, a
    FIFO, too large."""


class _ProjectLoader(jinja2.BaseLoader):
    def __init__(self, files: ProjectFiles) -> None:
        self.files = files

    def get_source(self, environment: jinja2.Environment,
                   template: str) -> tuple[str, str, Callable[[], bool]]:
        try:
            return self.files.read(template), template, lambda: True
        except OutsideProject as exc:
            raise TemplateUnreadable(f"{template}: {exc}") from None
        except FileNotFoundError:
            raise jinja2.TemplateNotFound(template) from None
        except NotUTF8 as exc:  # at the bad byte's line
            raise jinja2.TemplateSyntaxError(str(exc), exc.line, template, template) from None
        except (OSError, UnicodeDecodeError) as exc:  # too large, not UTF-8, unreadable
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise TemplateUnreadable(f"{template}: {reason}") from None


class _Environment(GuardedSandbox):
    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        """A template's globals as a plain dict, not Jinja's ChainMap over the environment's:
        Jinja copies them into every render's context, and a ChainMap runs Python code per
        key. Equivalent here: :class:`Templates` sets the environment's globals before it
        loads any template, and never changes them after."""
        return {**self.globals, **(d or {})}

    def join_path(self, template: str, parent: str) -> str:
        """``./x`` and ``../x`` are relative to the including template; other names to the project."""
        if template.startswith(("./", "../")):
            return _relative(template, parent)
        return template


@functools.lru_cache(maxsize=1 << 10)  # every render of a template imports the same names
def _relative(template: str, parent: str) -> str:
    return posixpath.normpath(posixpath.join(posixpath.dirname(parent), template))


def _fail(message: str) -> NoReturn:
    raise TemplateFailure(message)


def _required(value: Any, message: str = "a required value is missing") -> Any:
    if value is None or value == "" or isinstance(value, jinja2.Undefined):
        raise TemplateFailure(message)
    return value


def _toyaml(value: Any) -> str:
    if isinstance(value, jinja2.Undefined):
        value = None
    return dump_yaml(value).rstrip("\n")


def _nindent(text: Any, width: int = 2) -> str:
    pad = " " * width
    return "\n" + "\n".join(pad + line if line else line for line in str(text).split("\n"))


def _scalar_text(value: Any) -> Any:
    """How Go templates print scalars: true/false, and nothing for None (not Python's
    True/False/None, which would change meaning inside YAML)."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return ""
    return value


def _finalize(value: Any) -> Any:
    """What ``{{ value }}`` prints: as :func:`_scalar_text`, but None is ``null``. It runs for
    every expression printed, hence written out."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    return value


def _quote(value: Any) -> str:
    """A JSON string: ``json.dumps(text, ensure_ascii=False)`` without its per-call set-up."""
    value = _scalar_text(value)
    return encode_basestring(value if isinstance(value, str) else str(value))


def _sha256(value: Any) -> str:
    return hashlib.sha256(str(value).encode()).hexdigest()


def _b64enc(value: Any) -> str:
    return base64.b64encode(str(value).encode()).decode()


FILTERS: Mapping[str, Callable[..., Any]] = {
    "toyaml": _toyaml, "nindent": _nindent, "quote": _quote, "sha256": _sha256, "b64enc": _b64enc,
}
GLOBALS: Mapping[str, Any] = {"fail": _fail, "required": _required}


class Templates:
    """Compiles and renders project templates, turning every failure into a diagnostic."""

    def __init__(self, files: ProjectFiles, environ: Mapping[str, str] | None = None,
                 allow_env: tuple[str, ...] = ()) -> None:
        # only the meshfile's allowEnv variables are kept, and only env_var() reads them
        given = environ or {}
        self.environ = {name: given[name] for name in allow_env if name in given}
        self.env = _Environment(
            loader=_ProjectLoader(files), undefined=jinja2.StrictUndefined, trim_blocks=True,
            lstrip_blocks=True, keep_trailing_newline=True, autoescape=False, cache_size=-1,
            finalize=_finalize)
        self.env.filters.update(FILTERS)
        self.env.globals.update(GLOBALS)
        self.env.globals.update(environment_functions(allow_env, self.environ))
        self._strings: dict[str, jinja2.Template] = {}

    def render_file(self, name: str, context: Mapping[str, Any]) -> str:
        """Render project file ``name``. Raises :class:`CompileError` pointing into the template."""
        try:
            return self.env.render_bounded(self.env.get_template(name), context)
        except Exception as exc:  # noqa: BLE001 - every template failure becomes a diagnostic
            raise CompileError([template_diagnostic(exc, name)]) from None

    def render_string(self, source: str, context: Mapping[str, Any], span: Span) -> str:
        """Render a Jinja string written in the meshfile at ``span`` (e.g. a namespace)."""
        if "{" not in source:
            return source
        try:
            template = self._strings.get(source)
            if template is None:
                template = self._strings[source] = self.env.from_string(source)
            return self.env.render_bounded(template, context)
        except Exception as exc:  # noqa: BLE001
            raise CompileError([Diagnostic("error", _message(exc), span)]) from None


def template_diagnostic(exc: BaseException, name: str) -> Diagnostic:
    """A diagnostic at the template file and line where ``exc`` happened."""
    if isinstance(exc, jinja2.TemplateSyntaxError):
        file = exc.name or exc.filename or name
        return Diagnostic("error", f"template syntax error: {exc.message}",
                          Span(file, exc.lineno or 1, 1, exc.lineno or 1, WHOLE_LINE))
    if isinstance(exc, TemplateUnreadable):
        return Diagnostic("error", f"cannot read template {exc.message}",
                          _traceback_span(exc, name))
    if isinstance(exc, jinja2.TemplateNotFound):
        return Diagnostic("error", f"template not found: {exc.message}", _traceback_span(exc, name))
    help = None
    if isinstance(exc, jinja2.UndefinedError):
        help = ("guard optional values (`values.get('x')`, `x is defined`) or give them a "
                "default in the chart's values.yaml")
    return Diagnostic("error", _message(exc), _traceback_span(exc, name), help)


def _message(exc: BaseException) -> str:
    bounded = limit_message(exc)  # steps, time, output, recursion, memory
    if bounded is not None:
        return bounded
    if isinstance(exc, jinja2.UndefinedError):
        return f"undefined in template: {exc.message}"
    if isinstance(exc, EnvironmentVariableError):
        return f"template error: {exc}"
    if isinstance(exc, SecurityError):
        return f"template tried something the sandbox forbids: {exc}"
    if isinstance(exc, TemplateFailure):
        return f"template failed: {exc}"
    if isinstance(exc, jinja2.TemplateError):
        return f"template error: {exc.message}"
    return f"template error: {type(exc).__name__}: {exc}"


def _traceback_span(exc: BaseException, fallback: str) -> Span:
    """The innermost template frame of ``exc`` (Jinja rewrites frames to template file/line)."""
    tb: TracebackType | None = exc.__traceback__
    found: Span | None = None
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename and not filename.endswith(".py") and not filename.startswith("<"):
            found = Span(filename, tb.tb_lineno, 1, tb.tb_lineno, WHOLE_LINE)
        tb = tb.tb_next
    return found or Span(fallback, 1, 1)
