"""What every corpus importer shares: records, label mapping, audio placement, the tables and the import report.

An importer (one module per corpus, registered in :data:`casebench.corpora.CORPORA`) reads a local copy of a
corpus in the corpus's own layout and returns a :class:`Scan`: one :class:`Record` per labelled item, the
corpus's *native* taxonomy, and everything it counted on the way (files without a label row, label rows
without a file, names that do not parse, hidden ``._*`` files, known bad files). :func:`import_scan` then
does the part every corpus shares:

1. **labels**: each record's native label (or native distribution) is mapped into the chosen casebench
   taxonomy with the taxonomy YAML mappings (:meth:`casebench.taxonomy.Taxonomy.mapping_to`). A class
   with no counterpart there (``frustrated`` in ``iemocap4``), and a corpus code that is not an emotion at
   all (IEMOCAP ``xxx``, MSP-Podcast ``X``), drops its clips; a distribution loses that class's mass and is
   renormalised (a clip that keeps less than half its mass is dropped). Every drop is counted per class in the report
   and logged as a note, never silent; ``keep_unmapped=True`` keeps such clips with a null label instead.
   The corpus's own label is kept in ``labels.meta_original_label``;
2. **audio**: each file is linked (``audio="link"``, a symlink: nothing is copied and the corpus licence is
   not stretched), copied, or converted to the workspace format (16 kHz mono FLAC, loudness-normalised, as
   ``collect`` does); an unreadable file drops its clip (counted);
3. **tables**: ``clips``, ``labels``, ``splits`` when the corpus has an official partition (imported through
   :func:`casebench.splits.assign_from_lists`, with a note when the partition shares speakers), and
   ``transcripts`` when the corpus ships them; ``[import]`` in ``casebench.toml`` and ``reports/import.json``
   record the source, options and counts.

Clip ids are ``<corpus>-<native id>`` (``crema-d-1001_DFA_ANG_XX``), so the clips of several imported
corpora never collide in a cross-corpus benchmark (:mod:`casebench.crosscorpus`).

>>> from casebench.taxonomy import get_taxonomy
>>> native = get_taxonomy("iemocap9")
>>> recs = [Record("a", None, label="exc", native="excited"), Record("b", None, label="fru", native="frustrated"),
...         Record("c", None, label="xxx", native=None)]
>>> mapped = map_records(recs, native, get_taxonomy("iemocap4"))
>>> [m.label for m in mapped.kept], mapped.dropped
(['happy'], {'frustrated': 1, 'xxx': 1})
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import re
import shutil
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from casebench.errors import ConfigError, InputError, Problem, did_you_mean

if TYPE_CHECKING:  # the taxonomy module imports numpy: loaded when an import runs, not for `casebench --help`
    from casebench.taxonomy import Taxonomy

log = logging.getLogger("casebench.corpora")

AUDIO_MODES = ("link", "copy", "convert")
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg")
#: How many examples of each counted thing the report keeps.
MAX_EXAMPLES = 5
#: Counts whose examples (the files) :meth:`ImportReport.lines` prints, not only the report file.
NAMED_ON_CONSOLE = ("unreadable_audio",)
#: Split names of official partitions, folded to casebench's train/dev/test where they mean the same.
SPLIT_NAMES = {"train": "train", "training": "train", "val": "dev", "valid": "dev", "validation": "dev",
               "dev": "dev", "development": "dev", "test": "test", "test1": "test"}
#: Shipped taxonomies tried, in this order, when a corpus names its classes in words (EmoBox, EMO-SUPERB).
#: plutchik32 is left out on purpose: its petals (boredom, awe, ...) are Plutchik's wheel, not what an
#: acted corpus means by the same word.
WORD_TAXONOMIES = ("ekman7", "msp8", "crema6", "ravdess8", "iemocap9", "iemocap4")
#: Inflections of emotion words seen in corpus label maps, folded before the lookup.
SYNONYMS = {"anger": "angry", "happiness": "happy", "joy": "happy", "sadness": "sad", "fearful": "fear",
            "surprised": "surprise", "disgusted": "disgust", "neutrality": "neutral", "frustration": "frustrated",
            "excitement": "excited", "contemptuous": "contempt"}
#: Least share of a distribution's mass that must map into the target taxonomy for the item to be kept.
MIN_MASS = 0.5
#: What items dropped for that reason are counted under.
UNMAPPED_MASS = "(less than half the mass mapped)"
#: Words of corpus label maps that are not emotions (their items are dropped as such).
NOT_EMOTIONS = ("other", "no-agreement", "no agreement", "xxx", "unknown", "none")


# --------------------------------------------------------------------------------------------------
# What an importer returns


@dataclass
class Record:
    """One labelled item of a corpus.

    Attributes:
        key: the corpus's own id of the item (unique in the corpus; the clip id is ``<corpus>-<key>``).
        audio: the audio file, or None when the corpus has a label row and no file (counted, dropped).
        label: the label exactly as the corpus writes it (``exc``, ``ANG``, ``03``); kept as
            ``meta_original_label``.
        native: that label in the scan's native taxonomy, or None when the corpus code is not an emotion.
        dist: a distribution in native-taxonomy order (soft-label corpora), or None.
        text_label, text_native: the emotion of the words (EMIS), as written and in the native taxonomy.
        split, split_where: the official split (casebench spelling, see :func:`fold_split`) and the
            ``file:line`` that says so.
        where: ``file:line`` of the label row, for messages.
        meta: extra clip columns (written as ``meta_<name>``).
    """

    key: str
    audio: Path | None
    label: str | None = None
    native: str | None = None
    dist: Sequence[float] | None = None
    text_label: str | None = None
    text_native: str | None = None
    valence: float | None = None
    arousal: float | None = None
    dominance: float | None = None
    n_raters: int | None = None
    speaker: str | None = None
    gender: str | None = None
    session: str | None = None
    language: str | None = None
    text: str | None = None
    split: str | None = None
    split_where: str | None = None
    where: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Scan:
    """An importer's reading of a corpus: records plus everything counted on the way.

    ``method`` says where the labels come from (written to ``labels.method``); ``vad_scale`` is the range of
    valence/arousal/dominance when the corpus has them; ``split_source`` names the official partition.
    """

    corpus: str
    corpus_dir: Path
    native: Taxonomy
    records: list[Record] = field(default_factory=list)
    method: str = "corpus"
    languages: tuple[str, ...] = ()   # the corpus's languages (ISO 639), empty when the importer does not know
    vad_scale: tuple[float, float] | None = None
    split_source: str | None = None
    split_files: list[dict] = field(default_factory=list)
    transcripts: dict[str, str] = field(default_factory=dict)  # record key -> text
    counts: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    uncertain: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)

    def count(self, what: str, example: Any = None, n: int = 1) -> None:
        """Count ``n`` of ``what`` and keep ``example`` (the first few) for the report."""
        self.counts[what] += n
        if example is not None:
            ex = self.examples.setdefault(what, [])
            if len(ex) < MAX_EXAMPLES:
                ex.append(str(example))

    def note(self, text: str) -> None:
        self.notes.append(text)
        log.warning("%s: %s", self.corpus, text)


@dataclass
class ImportReport:
    """What an import did; ``to_dict()`` is what ``reports/import.json`` and ``--json`` hold.

    Attributes:
        n_records: labelled items the corpus holds (label rows or parsed file names).
        n_clips: clips written to the workspace.
        labels: clips per label of the chosen taxonomy.
        counts: everything counted on the way (files found, hidden files ignored, names that do not parse,
            files without a label row, label rows without a file, unreadable audio, known bad files, ...).
        dropped: clips dropped per original class (no counterpart in the taxonomy, or not an emotion).
        dropped_mass: distribution corpora: per native class, the summed probability mass removed.
        splits: clips per official split (empty without an official partition).
        audio_formats: files per ``"<rate> Hz, <channels> ch"``: shows the odd files out.
        notes: every explicit choice made on the way, one line each (also logged).
        uncertain: what the importer assumes without a verified source.
    """

    corpus: str
    corpus_dir: str
    workspace: str
    taxonomy: str
    native_taxonomy: str
    audio: str
    n_records: int = 0
    n_clips: int = 0
    labels: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    dropped_mass: dict[str, float] = field(default_factory=dict)
    splits: dict[str, int] = field(default_factory=dict)
    audio_formats: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    uncertain: list[str] = field(default_factory=list)
    tables: dict[str, str] = field(default_factory=dict)
    report_path: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def lines(self) -> list[str]:
        """A few lines for a terminal: what was written, then every note."""
        head = (f"{self.corpus}: {self.n_clips} clips of {self.n_records} labelled items -> {self.workspace} "
                f"(taxonomy {self.taxonomy}, audio {self.audio})")
        out = [head, "labels: " + ", ".join(f"{k} {v}" for k, v in self.labels.items())]
        if self.splits:
            out.append("official splits: " + ", ".join(f"{k} {v}" for k, v in self.splits.items()))
        if self.dropped:
            out.append("dropped (no counterpart in " + self.taxonomy + " or not an emotion): "
                       + ", ".join(f"{k} {v}" for k, v in self.dropped.items()))
        counted = {k: v for k, v in self.counts.items() if v and k not in ("files_found", "label_rows")}
        if counted:
            out.append("counted: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in counted.items()))
        for k in NAMED_ON_CONSOLE:  # files left out: named here, not only in reports/import.json
            if self.counts.get(k):
                shown = self.examples.get(k, [])
                more = self.counts[k] - len(shown)
                out.append(f"{k.replace('_', ' ')} (not imported): " + "; ".join(shown)
                           + (f"; and {more} more in the report" if more > 0 else ""))
        out += [f"note: {n}" for n in self.notes]
        out += [f"uncertain: {u}" for u in self.uncertain]
        return out


# --------------------------------------------------------------------------------------------------
# Reading a corpus tree


def walk_files(root: Path, suffixes: Iterable[str] = AUDIO_SUFFIXES, *, scan: Scan | None = None,
               skip_dirs: Iterable[str] = ()) -> Iterator[Path]:
    """Files under ``root`` whose suffix (case-insensitive) is one of ``suffixes``, in sorted order.

    Dot-files, AppleDouble ``._*`` files and hidden or ``__MACOSX`` folders are skipped and counted in
    ``scan`` as ``hidden_files_ignored`` (a macOS zip leaves a ``._x.wav`` beside every ``x.wav``).
    """
    suffixes = tuple(s.lower() for s in suffixes)
    skip = set(skip_dirs)
    for dirpath, dirnames, filenames in os.walk(root):
        hidden = [d for d in dirnames if d.startswith(".") or d == "__MACOSX"]
        for d in hidden:
            if scan is not None:
                n = sum(len(f) for _, _, f in os.walk(Path(dirpath) / d))
                scan.count("hidden_files_ignored", Path(dirpath, d).relative_to(root).as_posix(), n=n)
        dirnames[:] = sorted(d for d in dirnames if d not in hidden and d not in skip)
        for name in sorted(filenames):
            if not name.lower().endswith(suffixes):
                continue
            if name.startswith("."):
                if scan is not None:
                    scan.count("hidden_files_ignored", Path(dirpath, name).relative_to(root).as_posix())
                continue
            yield Path(dirpath) / name


def named_files(root: Path, parse, scan: Scan, *, suffixes: Iterable[str] = (".wav",),
                rel_to: Path | None = None) -> Iterator[tuple[Path, str, dict]]:
    """The files under ``root`` whose name a corpus's ``parse(stem)`` reads: ``(file, path relative to
    rel_to (default root), fields)``, in sorted order.

    ``parse`` returns the fields (a dict; ``fields["key"]``, when set, is the item's id, else the stem), None
    for a name that is not the corpus's (counted as ``unparsed_file_names``) or a string saying why a
    corpus name is invalid (``invalid_file_names``). Every file seen counts as ``files_found``; a second file
    with the same key as ``duplicate_files`` (the first in sorted path order wins).
    """
    seen: dict[str, str] = {}
    rel_to = rel_to or root
    for f in walk_files(root, suffixes, scan=scan):
        scan.count("files_found")
        rel = relpath(f, rel_to)
        fields = parse(f.stem)
        if fields is None:
            scan.count("unparsed_file_names", rel)
            continue
        if isinstance(fields, str):
            scan.count("invalid_file_names", f"{rel} ({fields})")
            continue
        key = fields.get("key", f.stem)
        if key in seen:
            scan.count("duplicate_files", f"{rel} (same id as {seen[key]})")
            continue
        seen[key] = rel
        yield f, rel, fields


def match_audio(scan: Scan, files: Mapping[str, Path], *, labelled: Iterable[str] | None = None) -> None:
    """Attach ``files[key]`` to each record (by key) and count both kinds of mismatch:
    ``label_rows_without_audio`` (the record keeps ``audio=None`` and is dropped at import) and
    ``audio_without_label_row`` (files no record names)."""
    keys = set()
    for rec in scan.records:
        keys.add(rec.key)
        rec.audio = files.get(rec.key)
        if rec.audio is None:
            scan.count("label_rows_without_audio", rec.key)
    for key in sorted(set(files) - keys):
        scan.count("audio_without_label_row", relpath(files[key], scan.corpus_dir))


def relpath(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` (POSIX), or absolute when it lies elsewhere."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def read_text(path: Path, *, encoding: str = "utf-8-sig") -> str:
    """A text file's contents (a UTF-8 BOM removed); InputError naming the file when missing or not text."""
    try:
        return path.read_text(encoding=encoding)
    except FileNotFoundError:
        raise InputError(Problem("file not found", file=str(path))) from None
    except UnicodeDecodeError as e:
        raise InputError(Problem(f"not {encoding} text ({e.reason} at byte {e.start})", file=str(path))) from None


def find_first(root: Path, candidates: Sequence[str], what: str) -> Path:
    """The first of ``candidates`` (paths relative to ``root``) that exists; InputError listing them all."""
    for c in candidates:
        if (root / c).exists():
            return root / c
    raise InputError(Problem(f"no {what} found", file=str(root),
                             expected="one of " + ", ".join(candidates) + " under the corpus folder"))


def fold_split(name: str) -> str:
    """An official split name in casebench's spelling: Train -> train, Development/val -> dev, Test1 -> test;
    other names lower-cased (Test2 -> test2).

    >>> [fold_split(s) for s in ("Train", "Development", "Validation", "Test1", "Test2", "val")]
    ['train', 'dev', 'dev', 'test', 'test2', 'dev']
    """
    low = name.strip().lower()
    return SPLIT_NAMES.get(low, re.sub(r"\W+", "_", low))


def word_taxonomy(words: Sequence[str], target: Taxonomy, *, name: str) -> Taxonomy:
    """A taxonomy for classes a corpus names in words (EmoBox label maps, EMO-SUPERB columns), mapped to
    ``target`` through the shipped taxonomies.

    When one shipped taxonomy (of :data:`WORD_TAXONOMIES`) holds every word, that taxonomy is returned and
    its YAML mapping is used. Otherwise an ad-hoc taxonomy named ``name`` is built whose mapping to
    ``target`` sends each word (folded through :data:`SYNONYMS`) where the first shipped taxonomy that has
    it maps it; a word none has, or one of :data:`NOT_EMOTIONS`, maps to null (dropped with a note).

    >>> from casebench.taxonomy import get_taxonomy
    >>> word_taxonomy(["angry", "sad", "disgust", "fear", "neutral", "happy"], get_taxonomy("ekman7"), name="x").name
    'crema6'
    >>> t = word_taxonomy(["Angry", "Boredom", "Happy"], get_taxonomy("ekman7"), name="emodb")
    >>> t.name, t.mapping_to("ekman7")
    ('emodb', {'angry': 'angry', 'boredom': None, 'happy': 'happy'})
    """
    from casebench.taxonomy import Taxonomy, get_taxonomy, list_taxonomies

    folded = [w.strip().lower() for w in words]
    if len(set(folded)) != len(folded):
        raise InputError(Problem(f"class names {list(words)} repeat after lower-casing", expected="distinct classes"))
    for cand in WORD_TAXONOMIES:
        tax = get_taxonomy(cand)
        if set(folded) == set(tax.labels):
            return tax
    table: dict[str, str | None] = {}
    for w in folded:
        table[w] = None
        if w in NOT_EMOTIONS:
            continue
        w2 = SYNONYMS.get(w, w)
        for cand in (target.name, *WORD_TAXONOMIES):
            if cand not in list_taxonomies():
                continue
            tax = get_taxonomy(cand)
            if w2 in tax.index:
                try:
                    table[w] = tax.mapping_to(target.name)[w2]
                except ConfigError:
                    continue
                break
    return Taxonomy(name=name, labels=tuple(folded), mappings={target.name: table},
                    description=f"classes of {name} as named by the corpus")


# --------------------------------------------------------------------------------------------------
# Label mapping


#: Shares of a distribution closer than this are a tie for the argmax. Corpus files write shares rounded
#: (EM2LDL: up to 9 decimals, rows summing to 1 within 1e-8), so a three-way 1/3 split reads as 0.333333333
#: against 0.333333334 once classes are merged by a mapping, while a two-way 0.5/0.5 stays exact: without a
#: tolerance above the files' rounding, only the two-way ties would be marked.
TIE_ATOL = 1e-8


@dataclass
class Mapped:
    """One record after mapping: the target label(s), distribution, and what mapping did to it."""

    record: Record
    label: str | None
    text_label: str | None = None
    dist: list[float] | None = None
    tie: bool = False


@dataclass
class MappedRecords:
    kept: list[Mapped]
    dropped: dict[str, int]
    dropped_mass: dict[str, float]
    n_ties: int = 0
    n_text_unmapped: int = 0


def map_records(records: Sequence[Record], native: Taxonomy, target: Taxonomy, *, keep_unmapped: bool = False,
                min_mass: float = MIN_MASS) -> MappedRecords:
    """Map records' native labels and distributions into ``target`` with ``native``'s mapping.

    A categorical record whose class maps to null, or whose corpus code is not an emotion (``native`` None),
    is dropped and counted under its class name (``keep_unmapped`` keeps it with a null label). A
    distribution keeps the mass of the classes that map (summed into their targets) and is renormalised;
    its hard label is the argmax, ties going to the first class in taxonomy order (counted). A record that keeps
    less than ``min_mass`` of its mass is dropped (counted under :data:`UNMAPPED_MASS`): when most raters chose
    classes the taxonomy lacks, the rest (often a floor value on every class) is not the item's emotion.
    """
    import numpy as np

    table = native.mapping_to(target.name)
    problems = []
    for rec in records:
        for value in (rec.native, rec.text_native):
            if value is not None and value not in native.index:
                problems.append(Problem(f"label {value!r} is not in the native taxonomy {native.name}",
                                        file=rec.where, id=rec.key, hint=did_you_mean(value, native.labels)))
    if problems:
        raise InputError(problems, summary=f"an importer produced labels outside {native.name} (a bug)")
    matrix = np.zeros((len(native), len(target)))
    for i, lab in enumerate(native.labels):
        if table[lab] is not None:
            matrix[i, target.index[table[lab]]] = 1.0
    unmapped_cols = np.array([table[lab] is None for lab in native.labels])
    kept: list[Mapped] = []
    dropped: Counter = Counter()
    mass: Counter = Counter()
    ties = text_unmapped = 0
    for rec in records:
        text_label = None
        if rec.text_native is not None:
            text_label = table[rec.text_native]
            text_unmapped += text_label is None
        if rec.dist is not None:
            d = np.asarray(rec.dist, dtype=float)
            for j in np.flatnonzero(unmapped_cols & (d > 0)):
                mass[native.labels[j]] += float(d[j])
            out = d @ matrix
            total = out.sum()
            if total <= 0 or total < min_mass * d.sum():
                dropped[UNMAPPED_MASS] += 1
                if keep_unmapped:
                    kept.append(Mapped(rec, None, text_label))
                continue
            out = out / total
            top = np.flatnonzero(np.isclose(out, out.max(), rtol=0, atol=TIE_ATOL))
            ties += len(top) > 1
            kept.append(Mapped(rec, target.labels[int(top[0])], text_label, out.tolist(), tie=len(top) > 1))
            continue
        label = table[rec.native] if rec.native is not None else None
        if label is None:
            dropped[rec.native if rec.native is not None else str(rec.label)] += 1
            if not keep_unmapped:
                continue
        kept.append(Mapped(rec, label, text_label))
    return MappedRecords(kept, dict(sorted(dropped.items())), {k: round(v, 6) for k, v in sorted(mass.items())},
                         ties, text_unmapped)


# --------------------------------------------------------------------------------------------------
# Audio


class _Unreadable(Exception):
    pass


def wav_truncation(path: Path) -> str | None:
    """Why a RIFF/WAVE file is truncated (its ``data`` chunk declares more bytes than the file holds), or None.

    libsndfile opens such a file and reads the samples that are there without a word, so an importer would
    keep a cut clip with the label of the whole utterance; other formats are left to the decoder.
    """
    import struct

    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
                return None
            order = "<" if head[:4] == b"RIFF" else ">"
            pos = 12
            while pos + 8 <= size:
                f.seek(pos)
                chunk_id, chunk_size = struct.unpack(order + "4sI", f.read(8))
                if chunk_id == b"data":
                    held = size - pos - 8
                    if chunk_size != 0xFFFFFFFF and chunk_size > held:
                        return f"truncated: the header declares {chunk_size} bytes of samples, the file holds {held}"
                    return None
                pos += 8 + chunk_size + (chunk_size & 1)
    except OSError as e:
        return f"cannot read ({e})"
    return None


def place_audio(ws, clip_id: str, src: Path, mode: str, corpus: str) -> dict[str, Any]:
    """Put ``src`` into the workspace for ``clip_id``; returns the clips-table columns of the audio.

    ``link`` makes a symlink under ``audio/<corpus>/`` (the file is only read for its header and hash),
    ``copy`` copies the bytes, ``convert`` writes 16 kHz mono FLAC normalised to -23 LUFS (the ``collect``
    format). Raises _Unreadable with the reason when the file cannot be read or holds no samples.
    """
    import soundfile as sf

    from casebench import audio

    dest_dir = ws.audio_dir / corpus
    dest_dir.mkdir(parents=True, exist_ok=True)
    row: dict[str, Any] = {}
    if src.suffix.lower() == ".wav" and (why := wav_truncation(src)):
        raise _Unreadable(why)
    if mode == "convert":
        try:
            x, sr = audio.decode(src)
        except InputError as e:
            raise _Unreadable(e.problems[0].found) from None
        prep = audio.prepare(x, sr)
        dest = dest_dir / f"{clip_id}.flac"
        sha = audio.write_audio(dest, prep.samples, prep.sample_rate, "flac")
        row.update(duration_s=audio.duration_s(prep.samples, prep.sample_rate), sample_rate=prep.sample_rate,
                   sha256=sha, qc_pcm_sha256=audio.pcm_sha256(prep.samples), qc_gain_db=prep.gain_db,
                   qc_notes="; ".join(prep.notes) or None, meta_source_sample_rate=int(sr),
                   meta_source_channels=int(x.shape[1]))
    else:
        try:
            info = sf.info(str(src))
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
            raise _Unreadable(str(e).splitlines()[0]) from None
        if info.frames <= 0:
            raise _Unreadable("no audio samples")
        dest = dest_dir / f"{clip_id}{src.suffix.lower()}"
        if dest.is_symlink() or dest.exists():
            dest.unlink()
        if mode == "link":
            try:
                os.symlink(src.resolve(), dest)
            except OSError:  # a filesystem without symlinks: copy instead (noted by the caller's counts)
                shutil.copyfile(src, dest)
        else:
            shutil.copyfile(src, dest)
        row.update(duration_s=info.frames / info.samplerate, sample_rate=int(info.samplerate),
                   sha256=audio.file_sha256(src), meta_source_sample_rate=int(info.samplerate),
                   meta_source_channels=int(info.channels))
    row["path"] = dest.relative_to(ws.root).as_posix()
    return row


# --------------------------------------------------------------------------------------------------
# The import


def import_scan(scan: Scan, workspace_dir: str | os.PathLike, *, taxonomy: str | Taxonomy | None = None,
                audio: str = "link", keep_unmapped: bool = False, overwrite: bool = False,
                progress: bool = False) -> ImportReport:
    """Write a scanned corpus into a new workspace at ``workspace_dir`` and return the report.

    Args:
        scan: an importer's :class:`Scan`.
        workspace_dir: the workspace folder (new or empty; an earlier import of the same corpus with the same
            taxonomy is replaced when ``overwrite``).
        taxonomy: the casebench taxonomy to map into (default: the scan's native taxonomy when it is a
            shipped one, else ekman7).
        audio: ``link`` (symlinks), ``copy`` or ``convert`` (16 kHz mono FLAC).
        keep_unmapped: keep clips whose class has no counterpart (null label) instead of dropping them.
        progress: show a progress bar while placing audio.

    Raises:
        ConfigError: bad ``audio`` mode, unknown taxonomy or no mapping from the native taxonomy to it, or the
            folder holds something else.
        InputError: nothing importable was found (every count is in the message).
    """
    from casebench.progress import progress_bar
    from casebench.taxonomy import Taxonomy, get_taxonomy, list_taxonomies
    from casebench.workspace import CONFIG_FILE, Workspace, atomic_write_text

    out_root = Path(workspace_dir).expanduser().resolve()
    if not overwrite and out_root.is_dir() and any(out_root.iterdir()):
        what = "a workspace" if (out_root / CONFIG_FILE).is_file() else "files"
        raise ConfigError(f"{out_root} already holds {what}; re-run with --overwrite to replace the earlier import "
                          "of this corpus there, or choose another --out folder")
    if audio not in AUDIO_MODES:
        raise ConfigError(f"audio mode {audio!r}; expected one of {list(AUDIO_MODES)}"
                          + (f" ({h})" if (h := did_you_mean(audio, AUDIO_MODES)) else ""))
    if taxonomy is None:
        taxonomy = scan.native.name if scan.native.name in list_taxonomies() else "ekman7"
    target = taxonomy if isinstance(taxonomy, Taxonomy) else get_taxonomy(taxonomy)
    scan.native.mapping_to(target.name)  # ConfigError before anything is written when no mapping exists
    # labels are mapped (and drops counted) for the items that can become clips: those with an audio file
    mapped = map_records([r for r in scan.records if r.audio is not None], scan.native, target,
                         keep_unmapped=keep_unmapped)
    for cls, n in mapped.dropped.items():
        what = ("not an emotion class" if cls not in scan.native.index and cls != UNMAPPED_MASS
                else f"most of the distribution on classes without a counterpart in {target.name}"
                if cls == UNMAPPED_MASS else f"no counterpart in {target.name}")
        scan.note(f"{'kept with a null label' if keep_unmapped else 'dropped'} {n} clip(s) of class {cls!r} "
                  f"({what})")
    if mapped.dropped_mass:
        scan.note(f"distribution mass of classes without a counterpart in {target.name} removed and the rest "
                  "renormalised: " + ", ".join(f"{k} {v:.3g}" for k, v in mapped.dropped_mass.items()))
    if mapped.n_ties:
        scan.note(f"{mapped.n_ties} distribution(s) with a tied maximum: the hard label is the first tied class "
                  f"in {target.name} order (meta_argmax_tie marks them)")
    if mapped.n_text_unmapped:
        scan.note(f"{mapped.n_text_unmapped} clip(s) whose text emotion has no counterpart in {target.name}: "
                  "semantic_label left null")
    with_audio = mapped.kept
    if not with_audio and mapped.dropped:
        raise InputError([Problem(f"{n} clip(s) of class {c!r}", expected=f"classes that map into {target.name}")
                          for c, n in mapped.dropped.items()],
                         summary=f"every {scan.corpus} clip was dropped by the mapping into {target.name}")
    if not with_audio:
        raise InputError([Problem(f"{k.replace('_', ' ')}: {v}", file=str(scan.corpus_dir),
                                  hint="e.g. " + ", ".join(scan.examples.get(k, [])) if scan.examples.get(k) else None)
                          for k, v in scan.counts.items()] or
                         [Problem("nothing found", file=str(scan.corpus_dir))],
                         summary=f"no {scan.corpus} clip with both a label and an audio file under {scan.corpus_dir}")

    if not scan.languages:
        scan.note("the corpus's language is not known to the importer: set [project] languages in casebench.toml")
    root = Path(workspace_dir).expanduser().resolve()
    ws = Workspace.create(root, scan.corpus, taxonomy=target.name, languages=list(scan.languages),
                          exist_ok=overwrite)
    if overwrite:
        shutil.rmtree(ws.audio_dir / scan.corpus, ignore_errors=True)
    clips, labels, formats = [], [], Counter()
    split_of: dict[str, Record] = {}
    key_of: dict[str, str] = {}
    with progress_bar(len(with_audio), f"importing {scan.corpus}", enabled=progress) as advance:
        for m in with_audio:
            rec = m.record
            cid = f"{scan.corpus}-{rec.key}"
            try:
                audio_cols = place_audio(ws, cid, rec.audio, audio, scan.corpus)
            except _Unreadable as e:
                scan.count("unreadable_audio", f"{relpath(rec.audio, scan.corpus_dir)} ({e})")
                advance()
                continue
            formats[f"{audio_cols['meta_source_sample_rate']} Hz, {audio_cols['meta_source_channels']} ch"] += 1
            clips.append({"clip_id": cid, **audio_cols, "speaker_id": rec.speaker, "gender": rec.gender,
                          "language": rec.language, "source": scan.corpus, "session": rec.session,
                          "text_prompt": rec.text,
                          "intended_acoustic": m.label if rec.text_native is not None else None,
                          "intended_semantic": m.text_label if rec.text_native is not None else None,
                          "meta_source_file": relpath(rec.audio, scan.corpus_dir),
                          **{f"meta_{k}": v for k, v in rec.meta.items()}})
            is_conflict = None
            if rec.text_native is not None and m.label is not None and m.text_label is not None:
                is_conflict = m.label != m.text_label
            labels.append({"clip_id": cid, "acoustic_label": m.label, "semantic_label": m.text_label,
                           "acoustic_dist": m.dist, "n_raters": rec.n_raters, "valence": rec.valence,
                           "arousal": rec.arousal, "dominance": rec.dominance, "is_conflict": is_conflict,
                           "conflict_type": f"{m.label}-voice/{m.text_label}-words" if is_conflict else None,
                           "method": f"corpus:{scan.corpus}:{scan.method}",
                           "meta_original_label": rec.label, "meta_native_label": rec.native,
                           "meta_original_text_label": rec.text_label,
                           "meta_original_dist": list(map(float, rec.dist)) if rec.dist is not None else None,
                           "meta_argmax_tie": m.tie if rec.dist is not None else None})
            key_of[cid] = rec.key
            if rec.split is not None:
                split_of[cid] = rec
            advance()
    if not clips:
        raise InputError(Problem(f"every audio file was unreadable ({scan.counts['unreadable_audio']})",
                                 file=str(scan.corpus_dir)), summary=f"no {scan.corpus} clip imported")
    clips_df = _frame(clips)
    labels_df = _frame(labels)
    tables = {"clips": str(ws.write_table("clips", clips_df)), "labels": str(ws.write_table("labels", labels_df))}
    if scan.transcripts:
        rows = [{"clip_id": cid, "text": scan.transcripts[key], "model": f"corpus:{scan.corpus}"}
                for cid, key in key_of.items() if scan.transcripts.get(key)]
        if rows:
            tables["transcripts"] = str(ws.write_table("transcripts", rows))
    elif overwrite and ws.has_table("transcripts"):
        ws.table_path("transcripts").unlink()
    split_counts: dict[str, int] = {}
    if split_of:
        tables["splits"], split_counts = _write_official_splits(ws, scan, clips_df, labels_df, split_of)
    elif overwrite and ws.has_table("splits"):
        ws.table_path("splits").unlink()
        scan.note("the earlier splits table was removed: this import has no official partition")
    if scan.split_source is None and not split_of:
        scan.notes.append("no official split: make one with `casebench split` (speaker-disjoint by default)")
    if audio != "convert" and len(formats) > 1:
        scan.note("audio kept in several formats (" + "; ".join(f"{k}: {v}" for k, v in formats.items())
                  + "); audio='convert' makes them all 16 kHz mono")
    counts = {"label_rows": len(scan.records), **dict(scan.counts)}
    report = ImportReport(
        corpus=scan.corpus, corpus_dir=str(scan.corpus_dir), workspace=str(ws.root), taxonomy=target.name,
        native_taxonomy=scan.native.name, audio=audio, n_records=len(scan.records), n_clips=len(clips),
        labels=dict(sorted(Counter(str(x) for x in labels_df["acoustic_label"].tolist()).items())),
        counts=counts, examples=scan.examples, dropped=mapped.dropped, dropped_mass=mapped.dropped_mass,
        splits=split_counts, audio_formats=dict(formats), notes=list(scan.notes), uncertain=list(scan.uncertain),
        tables=tables)
    from casebench import __version__

    section = {"corpus": scan.corpus, "corpus_dir": str(scan.corpus_dir), "taxonomy": target.name,
               "native_taxonomy": scan.native.name, "native_labels": list(scan.native.labels), "audio": audio,
               "label_method": scan.method, "options": {k: v for k, v in scan.options.items() if v is not None},
               "keep_unmapped": keep_unmapped, "casebench_version": __version__,
               "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
               "n_clips": len(clips), "dropped": mapped.dropped}
    if scan.vad_scale is not None:
        section["vad_scale"] = list(scan.vad_scale)
    ws.set_section("import", section)
    path = ws.reports_dir / "import.json"
    atomic_write_text(path, json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n")
    report.report_path = str(path)
    return report


def _frame(rows: list[dict]):
    """Rows -> DataFrame with every row's keys (a meta column present in some rows is null in the others)."""
    import pandas as pd

    keys = list(dict.fromkeys(k for r in rows for k in r))
    return pd.DataFrame({k: [r.get(k) for r in rows] for k in keys})


def _write_official_splits(ws, scan: Scan, clips_df, labels_df, split_of: Mapping[str, Record]):
    """Write the corpus's official partition through casebench.splits (the same checks and summary as
    ``casebench split --method import``); note speakers shared between splits."""
    import hashlib

    import pandas as pd

    from casebench.splits import ListEntry, assign_from_lists
    from casebench.workspace import atomic_write_text

    lists: dict[str, list] = {}
    for cid, rec in split_of.items():
        where = rec.split_where or rec.where or scan.split_source or ""
        file, _, line = where.rpartition(":")
        lists.setdefault(rec.split, []).append(
            ListEntry(cid, file if line.isdigit() else where, int(line) if line.isdigit() else 0))
    result = assign_from_lists(clips_df, lists, allow_unassigned=True, labels=labels_df)
    table = result.table.copy()
    table["fold"] = table["fold"].astype("Int32")
    path = ws.write_table("splits", table)
    unassigned = len(result.summary.get("unassigned", []))
    if unassigned:
        scan.note(f"{unassigned} clip(s) in no official split are left out of the splits table "
                  f"(e.g. {', '.join(result.summary['unassigned'][:3])})")
    shared = _shared_speakers(table, clips_df)
    if shared:
        ex = "; ".join(f"{spk} in {', '.join(sp)}" for spk, sp in list(shared.items())[:3])
        scan.note(f"the official split shares {len(shared)} speaker(s) between splits ({ex}): it is not "
                  "speaker-independent, and `casebench audit` reports it as a speaker leak")
    digest = hashlib.sha256(pd.util.hash_pandas_object(table, index=False).to_numpy().tobytes()).hexdigest()
    config = {**result.config, "source": scan.split_source or f"{scan.corpus} official partition",
              "files": scan.split_files, "splits_sha256": digest[:16],
              "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    ws.set_section("split", config)
    report = {"config": config, **{k: v for k, v in result.summary.items() if k != "unassigned"},
              "shared_speakers": shared}
    atomic_write_text(ws.reports_dir / "split.json", json.dumps(report, indent=2, default=str) + "\n")
    counts = table["split"].value_counts()
    from casebench.splits import split_order

    return str(path), {s: int(counts[s]) for s in split_order(list(counts.index))}


def _shared_speakers(splits, clips) -> dict[str, list[str]]:
    """Speakers heard in more than one split -> the splits (reading order)."""
    from casebench.splits import split_order

    frame = splits.merge(clips[["clip_id", "speaker_id"]], on="clip_id")
    frame = frame[frame["speaker_id"].notna()]
    out = {}
    for spk, part in frame.groupby("speaker_id", sort=True):
        names = split_order(sorted(set(part["split"].astype(str))))
        if len(names) > 1:
            out[str(spk)] = names
    return out
