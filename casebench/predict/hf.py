"""``hf:PATH_OR_ID``: a transformers audio-classification model (AutoModelForAudioClassification).

``PATH_OR_ID`` is a local folder (``save_pretrained``) or, when the Hugging Face Hub is reachable, a model id
(``hf:org/name``; ``hf:org/name@REVISION`` pins a commit or tag). Audio is resampled to the feature
extractor's ``sampling_rate``. A batch is padded together when the extractor returns an attention mask
(the padding is then masked out); otherwise each clip runs alone, so a clip's prediction never depends on
which clips share its batch (a resumed or Ray run gives the same numbers as a straight one).

Labels. The model's ``id2label`` is mapped into the benchmark's taxonomy, in this order:

1. ``--label-map FILE`` (YAML/JSON: model label -> taxonomy label, or null to drop it); every model label
   must be in it;
2. the model's labels are the taxonomy's own (compared case-insensitively): identity;
3. the model's labels are all labels of one casebench taxonomy (``casebench/taxonomy/*.yaml``) that has a
   mapping to the benchmark's taxonomy: that mapping (e.g. a RAVDESS model's ``calm`` -> ekman7 ``neutral``).

Anything else is an error that names the labels that cannot be mapped; nothing is dropped silently.

Probabilities. The softmax over the model's labels is summed into the taxonomy labels (several model labels
may map to one). The mass of labels mapped to null (by the label map or the taxonomy mapping) is removed
and the rest renormalised: the written ``probs`` are the model's distribution conditioned on the benchmark's
label set. The labels dropped, and the mean mass removed over the clips predicted by the last run (local
engine), are recorded in the metadata sidecar (``label_mapping``) and printed. Taxonomy labels no model
label maps to get probability 0.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from casebench.errors import ConfigError, InputError, MissingDependencyError, Problem
from casebench.predict.base import Context, Item, Model, probs_record


def _transformers():
    try:
        import torch  # noqa: F401
        import transformers
    except ImportError as e:
        raise MissingDependencyError(f"hf: models need torch and transformers ({e}): pip install "
                                     "'casebench[predict]'") from None
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()  # predict shows its own
    return transformers


def load_pretrained(loader, spec: str, what: str):
    """``loader.from_pretrained`` of a local folder, or of a Hub id (``id@revision``) when online; ConfigError
    naming the model otherwise."""
    name, _, revision = spec.partition("@")
    local = Path(name).expanduser()
    if local.exists() and not local.is_dir():
        raise ConfigError(f"hf:{spec}: {local} is a file; expected a model folder (save_pretrained) or a Hub id")
    looks_local = local.is_dir() or name.startswith((".", "/", "~")) or name.count("/") > 1
    if looks_local and not local.is_dir():
        raise ConfigError(f"hf:{spec}: no such model folder {local}")
    try:
        if local.is_dir():
            return loader.from_pretrained(str(local), local_files_only=True)
        return loader.from_pretrained(name, revision=revision or None)
    except (OSError, ValueError, KeyError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        where = f"folder {local}" if local.is_dir() else f"Hub model {name!r} (offline, unknown or private?)"
        raise ConfigError(f"hf:{spec}: cannot load the {what} from the {where}: {first}") from None


def model_revision(spec: str, model) -> str | None:
    """A Hub model's commit; for a local folder, sha256 of its config and weight files (first 16 hex)."""
    commit = getattr(model.config, "_commit_hash", None)
    name, _, rev = spec.partition("@")
    folder = Path(name).expanduser()
    if not folder.is_dir():
        return commit or rev or None
    h = hashlib.sha256()
    for f in sorted(folder.iterdir()):
        if f.suffix in (".json", ".safetensors", ".bin") and f.is_file():
            h.update(f.name.encode())
            with open(f, "rb") as fh:
                for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                    h.update(block)
    return "sha256:" + h.hexdigest()[:16]


def declared_corpora(spec: str) -> list[str]:
    """Training corpora a model card declares (``datasets:`` in the YAML header of the folder's README.md)."""
    import yaml

    readme = Path(spec.partition("@")[0]).expanduser() / "README.md"
    if not readme.is_file():
        return []
    text = readme.read_text("utf-8", errors="replace")
    if not text.startswith("---"):
        return []
    try:
        head = yaml.safe_load(text.split("---", 2)[1]) or {}
    except yaml.YAMLError:
        return []
    ds = head.get("datasets") if isinstance(head, dict) else None
    ds = [ds] if isinstance(ds, str) else ds or []
    return [str(d) for d in ds if d]


def label_mapping(model_labels: Sequence[str], taxonomy, label_map: dict | None,
                  where: str) -> tuple[dict[str, str | None], str]:
    """Model label -> taxonomy label (None: dropped), and how it was found (see the module docstring).

    >>> from casebench.taxonomy import get_taxonomy
    >>> label_mapping(["Calm", "angry"], get_taxonomy("ekman7"), None, "m")
    ({'Calm': 'neutral', 'angry': 'angry'}, 'taxonomy mapping ravdess8 -> ekman7')
    """
    from casebench.taxonomy import get_taxonomy, list_taxonomies

    if label_map is not None:
        missing = [lab for lab in model_labels if lab not in label_map]
        if missing:
            raise InputError([Problem(f"model label {lab!r} is not in the label map", field=lab, file=where,
                                      expected="an entry for every label of the model (null drops a label)")
                              for lab in missing], summary=f"the label map does not cover the labels of {where}")
        return {lab: label_map[lab] for lab in model_labels}, "--label-map"
    folded = {lab: str(lab).strip().lower() for lab in model_labels}
    if all(f in taxonomy.index for f in folded.values()):
        return dict(folded), f"the model's labels are {taxonomy.name} labels"
    candidates = []
    for name in list_taxonomies():
        tax = get_taxonomy(name)
        if name == taxonomy.name or not all(f in tax.index for f in folded.values()):
            continue
        try:
            table = tax.mapping_to(taxonomy.name)
        except ConfigError:
            continue
        candidates.append((name, {lab: table[f] for lab, f in folded.items()}))
    if candidates:
        first = candidates[0][1]
        if all(c[1] == first for c in candidates):
            return first, f"taxonomy mapping {candidates[0][0]} -> {taxonomy.name}"
        raise ConfigError(f"{where}: its labels {list(model_labels)} map into {taxonomy.name} differently through "
                          f"taxonomies {[c[0] for c in candidates]}; say which with --label-map FILE")
    known = set().union(*(get_taxonomy(n).index for n in list_taxonomies()))
    unmappable = [lab for lab, f in folded.items() if f not in taxonomy.index and f not in known]
    unmappable = unmappable or [lab for lab, f in folded.items() if f not in taxonomy.index]
    raise InputError([Problem(f"model label {lab!r} has no counterpart in {taxonomy.name}", field=lab, file=where,
                              expected=f"a label of {taxonomy.name} {list(taxonomy.labels)}",
                              hint="map it with --label-map FILE (model label: taxonomy label, or null to drop)")
                      for lab in unmappable], summary=f"cannot map the labels of {where} into {taxonomy.name}")


class HfModel(Model):
    """A transformers audio-classification model (see the module docstring)."""

    kind = "hf"
    uses_label_map = True
    _transient = ("_model", "_extractor")

    def __init__(self, spec: str, context: Context):
        super().__init__(spec, context)
        tf = _transformers()
        self._extractor = load_pretrained(tf.AutoFeatureExtractor, spec, "feature extractor")
        self._model = load_pretrained(tf.AutoModelForAudioClassification, spec, "audio-classification model")
        self._model.eval()
        self.rate = int(getattr(self._extractor, "sampling_rate", 16000))
        self.batched = bool(getattr(self._extractor, "return_attention_mask", False))
        id2label = self._model.config.id2label
        self.model_labels = [str(id2label[i]) for i in range(len(id2label))]
        tax = context.benchmark.taxonomy
        self.mapping, self.mapping_how = label_mapping(self.model_labels, tax, context.label_map, f"hf:{spec}")
        # (n_model_labels, K) 0/1 matrix summing model-label probabilities into taxonomy labels
        self.matrix = np.zeros((len(self.model_labels), len(tax)))
        for i, lab in enumerate(self.model_labels):
            if self.mapping[lab] is not None:
                self.matrix[i, tax.index[self.mapping[lab]]] = 1.0
        if not self.matrix.any():
            raise ConfigError(f"hf:{spec}: every label of the model is mapped to null; nothing to predict")
        self.dropped = [lab for lab in self.model_labels if self.mapping[lab] is None]
        self.n_parameters = int(sum(p.numel() for p in self._model.parameters()))
        self.revision = model_revision(spec, self._model)
        self.dropped_mass: list[float] = []

    @property
    def sample_rate(self) -> int:
        return self.rate

    def _ensure_loaded(self) -> None:
        if self._model is None:  # unpickled on a Ray worker
            tf = _transformers()
            self._extractor = load_pretrained(tf.AutoFeatureExtractor, self.spec, "feature extractor")
            self._model = load_pretrained(tf.AutoModelForAudioClassification, self.spec, "model")
            self._model.eval()

    def _softmax(self, audios: Sequence[np.ndarray]) -> np.ndarray:
        import torch

        inputs = self._extractor(list(audios), sampling_rate=self.rate, return_tensors="pt", padding=True,
                                 **({"return_attention_mask": True} if self.batched else {}))
        with torch.inference_mode():
            logits = self._model(**inputs).logits
        return torch.softmax(logits.float(), dim=-1).numpy().astype(np.float64)

    def predict_batch(self, items: Sequence[Item]) -> list[dict]:
        self._ensure_loaded()
        if self.batched:
            p = self._softmax([it.audio for it in items])
        else:
            p = np.concatenate([self._softmax([it.audio]) for it in items])
        mapped = p @ self.matrix
        kept = mapped.sum(axis=1)
        self.dropped_mass += (1.0 - kept).tolist()
        labels = self.context.benchmark.taxonomy.labels
        return [probs_record(it.id, row / s, labels) for it, row, s in zip(items, mapped, kept, strict=True)]

    def metadata(self) -> dict:
        notes = [f"labels mapped by {self.mapping_how}"]
        if self.dropped:
            notes.append(f"model labels mapped to null (their probability removed, the rest renormalised): "
                         f"{self.dropped}")
        mapping = {"how": self.mapping_how, "map": self.mapping, "dropped": self.dropped}
        if self.dropped_mass:
            mapping["mean_dropped_mass"] = max(0.0, round(float(np.mean(self.dropped_mass)), 6))
        return {"name": f"hf:{self.spec.partition('@')[0]}", "revision": self.revision,
                "parameters": self.n_parameters, "trained_on": declared_corpora(self.spec),
                "sample_rate": self.rate, "label_mapping": mapping, "notes": notes}


MODEL = HfModel
