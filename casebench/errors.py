"""The few exception classes casebench raises, and the one shape their messages take.

Every problem says *where* (file:line, id, field), *what was found* and *what was expected*, with a
"did you mean" when a name is close. Problems are collected, not raised one by one: an
:class:`InputError` holds all of them and shows the first :data:`MAX_SHOWN` plus a count.

The CLI turns any :class:`CasebenchError` into exit code 2 and its message; anything else is a bug.

>>> err = InputError([Problem("found 'angy'", expected="a label of ekman7", file="p.jsonl", line=3,
...                           id="c1", field="label", hint=did_you_mean("angy", ["angry", "sad"]))])
>>> print(err)
1 problem:
  p.jsonl:3: id 'c1': field 'label': found 'angy'; expected a label of ekman7 (did you mean 'angry'?)
"""

from __future__ import annotations

import difflib
import errno as errno_module
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

MAX_SHOWN = 20


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input, with everything a user needs to find and fix it."""

    found: str
    expected: str | None = None
    file: str | None = None
    line: int | None = None
    id: str | None = None
    field: str | None = None
    hint: str | None = None

    def __str__(self) -> str:
        where = []
        if self.file is not None:
            where.append(f"{self.file}:{self.line}" if self.line is not None else str(self.file))
        elif self.line is not None:
            where.append(f"line {self.line}")
        if self.id is not None:
            where.append(f"id {self.id!r}")
        if self.field is not None:
            where.append(f"field {self.field!r}")
        text = self.found if self.expected is None else f"{self.found}; expected {self.expected}"
        if self.hint:
            text += f" ({self.hint})"
        return ": ".join([*where, text])

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


class CasebenchError(Exception):
    """Base class: a problem the user can fix (bad input, bad configuration, missing resource)."""

    def to_dict(self) -> dict:
        """What ``--json`` prints on stdout for this error (the message also goes to stderr)."""
        return {"error": str(self)}


class ConfigError(CasebenchError):
    """A setting, spec or registry name is wrong (unknown benchmark, taxonomy, bad YAML/TOML)."""


class InputError(CasebenchError):
    """One or more problems in a user's file or table; shows the first ``MAX_SHOWN`` and a count."""

    def __init__(self, problems: Problem | Sequence[Problem], summary: str | None = None):
        if isinstance(problems, Problem):
            problems = [problems]
        if not problems:
            raise ValueError("InputError needs at least one problem")
        self.problems = list(problems)
        self.summary = summary
        super().__init__(self._render())

    def _render(self) -> str:
        n = len(self.problems)
        head = self.summary or f"{n} problem{'s' if n != 1 else ''}"
        lines = [f"{head}:"] + [f"  {p}" for p in self.problems[:MAX_SHOWN]]
        if n > MAX_SHOWN:
            lines.append(f"  ... and {n - MAX_SHOWN} more ({n} in all)")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"error": self.summary or "invalid input", "n_problems": len(self.problems),
                "problems": [p.to_dict() for p in self.problems]}


class SpecError(InputError, ConfigError):
    """A benchmark spec or results file breaks its schema: every problem with the file, the key (dotted path)
    and a "did you mean" for a misspelt key or name. Both an InputError (it lists problems) and a ConfigError
    (a spec is configuration)."""


class StaleError(CasebenchError):
    """A derived artefact (labels, splits, gold, spec, published folder) was built from tables that changed
    since; the message names the step to re-run (``--allow-stale`` goes ahead and says so in the outputs)."""


class MissingDependencyError(CasebenchError):
    """An optional extra is not installed (the message names the extra to install)."""


def did_you_mean(name: str, choices: Iterable[str]) -> str | None:
    """Return ``"did you mean 'x'?"`` for the closest of ``choices``, or None when nothing is close.

    >>> did_you_mean("hapy", ["happy", "sad"])
    "did you mean 'happy'?"
    >>> did_you_mean("zzz", ["happy"]) is None
    True
    """
    close = difflib.get_close_matches(str(name).lower(), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


def unknown_name(kind: str, name: str, choices: Iterable[str]) -> ConfigError:
    """A ConfigError for an unknown registry name, listing the choices and a close match."""
    choices = sorted(choices)
    hint = did_you_mean(name, choices)
    msg = f"unknown {kind} {name!r}; expected one of {choices}"
    return ConfigError(msg + (f" ({hint})" if hint else ""))


class PathError(CasebenchError):
    """A file or folder cannot be read or written: read-only, no space left, a folder where a file should be
    (or the reverse), missing. The message names the path and says what to do."""

    def __init__(self, message: str, path: str | None = None):
        super().__init__(message)
        self.path = path

    def to_dict(self) -> dict:
        return {"error": str(self), **({"path": self.path} if self.path is not None else {})}


_OS_REASONS = {
    "EACCES": "permission denied: choose a folder you can write to, or fix its permissions",
    "EPERM": "operation not permitted (a read-only or protected file or folder): choose another place",
    "EROFS": "read-only file system: choose a writable place",
    "ENOSPC": "no space left on the device: free some space or choose another disk",
    "EDQUOT": "disk quota exceeded: free some space or choose another disk",
    "EFBIG": "file too large for this file system",
    "EISDIR": "is a folder; expected a file",
    "ENOTDIR": "expected a folder, but a part of this path is a file",
    "EEXIST": "already exists",
    "ENOENT": "no such file or folder",
    "ENAMETOOLONG": "name too long",
    "ENOTEMPTY": "folder not empty",
}


def path_error(e: OSError, path: str | os.PathLike | None = None, action: str | None = None) -> PathError:
    """A one-line :class:`PathError` for an ``OSError``: the path, what went wrong and what to do.

    ``path`` overrides the error's own file name (e.g. the target of an atomic write rather than its
    temp file); ``action`` ("write", "read") starts the message.

    >>> import errno
    >>> print(path_error(OSError(errno.ENOSPC, "No space left on device", "out/r.json"), action="write"))
    cannot write out/r.json: no space left on the device: free some space or choose another disk
    """
    name = os.fspath(path) if path is not None else e.filename
    code = errno_module.errorcode.get(e.errno or -1)
    reason = _OS_REASONS.get(code or "", (e.strerror or str(e)).lower())
    if code in ("ENOTDIR", "EEXIST") and name is not None:  # say which part of the path is a file
        file = next((p for p in Path(name).parents if p.is_file()), None)
        if file is not None:
            reason = f"{file} is a file, not a folder"
        elif code == "EEXIST" and Path(name).is_file():
            reason = "is a file; expected a folder"
    where = f"{name}: " if name is not None else ""
    head = f"cannot {action} " if action and name is not None else ""
    return PathError(f"{head}{where}{reason}", None if name is None else str(name))


def syntax_problem(path: str | os.PathLike, e: Exception, expected: str) -> Problem:
    """A :class:`Problem` for a file that does not parse (YAML, TOML, JSON) or is not UTF-8, with the line
    (and column) where the parser stopped, never the parser's multi-line dump.

    >>> import yaml
    >>> try:
    ...     yaml.safe_load("a: [1,\\nb: 2\\n")
    ... except yaml.YAMLError as e:
    ...     print(syntax_problem("s.yaml", e, "a mapping"))  # doctest: +NORMALIZE_WHITESPACE
    s.yaml:3: not valid: expected ',' or ']', but got '<stream end>'
      (column 1; while parsing a flow sequence opened at line 1); expected a mapping
    """
    if isinstance(e, UnicodeDecodeError):
        return Problem(f"byte {e.start} ({e.object[e.start:e.start + 1]!r}) is not UTF-8", file=os.fspath(path),
                       expected=f"{expected}, UTF-8 encoded")
    mark = getattr(e, "problem_mark", None)  # YAML
    line = getattr(e, "lineno", None)  # JSON, TOML (Python >= 3.14)
    column = getattr(e, "colno", None)
    text = getattr(e, "problem", None) or getattr(e, "msg", None) or str(e)
    if mark is not None:
        line, column = mark.line + 1, mark.column + 1
    elif line is None:  # tomllib before 3.14: "... (at line 2, column 7)"
        import re

        m = re.search(r"\s*\(at line (\d+), column (\d+)\)$", text)
        if m:
            line, column, text = int(m.group(1)), int(m.group(2)), text[:m.start()]
    where = [f"column {column}"] if column is not None else []
    context_mark = getattr(e, "context_mark", None)
    if getattr(e, "context", None) and context_mark is not None and context_mark.line + 1 != line:
        where.append(f"{e.context} opened at line {context_mark.line + 1}")
    found = f"not valid: {text}" + (f" ({'; '.join(where)})" if where else "")
    return Problem(found, expected=expected, file=os.fspath(path), line=line)


def read_user_text(path: str | os.PathLike, expected: str) -> str:
    """The text of a file the user named (a UTF-8 BOM dropped, line endings kept for the csv module); a
    missing, unreadable or non-UTF-8 file is an :class:`InputError` naming it and what was expected."""
    try:
        return Path(path).read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise InputError(Problem("file not found", expected=expected, file=os.fspath(path))) from None
    except OSError as e:
        raise path_error(e, path, action="read") from None
    except UnicodeDecodeError as e:
        problem = syntax_problem(path, e, expected)
        if e.object[:2] in (b"\xff\xfe", b"\xfe\xff"):  # Excel's "Unicode Text" and other UTF-16 exports
            problem = Problem(problem.found, expected=problem.expected, file=problem.file,
                              hint="the file is UTF-16: save it as UTF-8 (Excel: CSV UTF-8)")
        raise InputError(problem) from None


def separator_hint(header: Sequence[str]) -> str | None:
    """For a CSV header read as one field holding ';', tab or '|': say to save the file with commas."""
    if len(header) == 1:
        sep = next((s for s in (";", "\t", "|") if s in header[0]), None)
        if sep is not None:
            return f"the fields are separated by {sep!r}, not commas: save the file as comma-separated CSV"
    return None
