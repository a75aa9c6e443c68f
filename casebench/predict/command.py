"""``command:"PROGRAM ARGS"``: any program that reads audio paths and writes JSON Lines predictions.

The contract (one run of the program per batch, so a batch is also what a kill loses):

- the command line is split like a shell would (``shlex``) and run without a shell, in the current folder;
- **stdin**: one absolute audio path per line (UTF-8), one line per clip of the batch. Clips whose audio is
  embedded in a dataset are written to temporary WAV files at the sample rate below first;
- **environment**: ``CASEBENCH_LABELS`` (the benchmark's taxonomy labels, comma-separated, in order),
  ``CASEBENCH_TAXONOMY`` (its name), ``CASEBENCH_TASKS`` (task kinds, comma-separated) and
  ``CASEBENCH_SAMPLE_RATE`` (16000);
- **stdout**: one JSON object per input line, in the same order, in the predictions format
  (``label``/``probs``/``distribution``/``valence``/``arousal``/``dominance``, docs/design.md). ``id`` may be
  left out (it is filled from the line's position); when given it must be the clip's id;
- **exit status** 0. Anything else, or output that breaks the format, stops the run with the program's
  stderr tail or every problem of its output (checked by the predictions parser of ``casebench evaluate``).

Example: ``casebench predict 'command:python my_model.py --fast' --benchmark casebench-audio-mini``.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import orjson

from casebench.errors import CasebenchError, ConfigError, InputError, Problem
from casebench.predict.base import Context, Item, Model

STDERR_TAIL = 20


class CommandModel(Model):
    """Runs an external program per batch (see the module docstring for the contract)."""

    kind = "command"

    def __init__(self, spec: str, context: Context):
        super().__init__(spec, context)
        try:
            self.argv = shlex.split(spec)
        except ValueError as e:
            raise ConfigError(f"command:{spec}: cannot split the command line ({e})") from None
        if not self.argv:
            raise ConfigError("command: the command is empty; expected command:\"PROGRAM ARGS\"")
        if shutil.which(self.argv[0]) is None:
            raise ConfigError(f"command:{spec}: program {self.argv[0]!r} not found (not on PATH, not a file)")
        self.timeout_s = float(context.options.get("timeout_s", 3600))

    def _env(self) -> dict:
        tax = self.context.benchmark.taxonomy
        return {**os.environ, "CASEBENCH_LABELS": ",".join(tax.labels), "CASEBENCH_TAXONOMY": tax.name,
                "CASEBENCH_TASKS": ",".join(sorted(self.context.task_kinds())),
                "CASEBENCH_SAMPLE_RATE": str(self.sample_rate)}

    def predict_batch(self, items: Sequence[Item]) -> list[dict]:
        from casebench import audio

        with tempfile.TemporaryDirectory(prefix="casebench-command-") as tmp:
            paths = []
            for i, it in enumerate(items):
                if it.path and Path(it.path).is_file():
                    paths.append(it.path)
                else:  # embedded audio: give the program a file
                    audio.write_audio(Path(tmp) / f"{i:06d}.wav", it.audio, self.sample_rate)
                    paths.append(str(Path(tmp) / f"{i:06d}.wav"))
            try:
                proc = subprocess.run(self.argv, input="".join(f"{p}\n" for p in paths).encode(),
                                      capture_output=True, env=self._env(), timeout=self.timeout_s, check=False)
            except subprocess.TimeoutExpired:
                raise CasebenchError(f"command {self.spec!r} took more than {self.timeout_s:g} s on a batch of "
                                     f"{len(items)} clips") from None
            except OSError as e:
                raise ConfigError(f"command {self.spec!r} cannot be run: {e}") from None
            if proc.returncode != 0:
                raise CasebenchError(f"command {self.spec!r} exited with status {proc.returncode} on a batch of "
                                     f"{len(items)} clips; its stderr ends with:\n{_tail(proc.stderr)}")
            return self._records(proc.stdout, items, Path(tmp))

    def _records(self, stdout: bytes, items: Sequence[Item], tmp: Path) -> list[dict]:
        """The program's lines, ids filled in and checked, then validated by the predictions parser."""
        from casebench.benchmarks import Gold
        from casebench.predictions import parse_predictions

        where = f"output of command {self.spec!r}"
        lines = [ln for ln in stdout.splitlines() if ln.strip()]
        if len(lines) != len(items):
            raise InputError(Problem(f"{len(lines)} line(s) for {len(items)} audio path(s)", file=where,
                                     expected="one JSON object per input line, in the same order"))
        records, problems = [], []
        for n, (line, it) in enumerate(zip(lines, items, strict=True), 1):
            try:
                rec = orjson.loads(line)
            except orjson.JSONDecodeError as e:
                problems.append(Problem(f"not JSON ({e}): {line[:80]!r}", file=where, line=n, id=it.id))
                continue
            if not isinstance(rec, dict):
                problems.append(Problem(f"found {type(rec).__name__}", file=where, line=n, id=it.id,
                                        expected="a JSON object"))
                continue
            if rec.setdefault("id", it.id) != it.id:
                problems.append(Problem(f"id {rec['id']!r} on the line for {it.id!r}", file=where, line=n,
                                        field="id", expected="the clip's id, or no id"))
            records.append(rec)
        if problems:
            raise InputError(problems, summary=f"{len(problems)} problem(s) in the {where}")
        check = tmp / "output.jsonl"
        check.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
        gold = Gold(ids=np.array([it.id for it in items], dtype=object), taxonomy=self.context.benchmark.taxonomy)
        try:
            parse_predictions(check, gold)
        except InputError as e:
            fixed = [Problem(p.found, expected=p.expected, file=where, line=p.line, id=p.id, field=p.field,
                             hint=p.hint) for p in e.problems]
            raise InputError(fixed, summary=f"{len(fixed)} problem(s) in the {where}") from None
        return records

    def metadata(self) -> dict:
        return {"name": f"command:{self.spec}", "revision": None, "parameters": None, "trained_on": []}


def _tail(stderr: bytes) -> str:
    lines = stderr.decode("utf-8", "replace").rstrip().splitlines()
    return "\n".join(f"  {ln}" for ln in lines[-STDERR_TAIL:]) or "  (nothing on stderr)"


MODEL = CommandModel
