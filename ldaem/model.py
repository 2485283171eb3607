"""The model file (DESIGN.md, "Contracts"): an .npz of plain arrays that loads without pickle.

This module imports numpy only, so that `ldaem topics` answers without compiling anything.
"""

import json
import logging
import math
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ldaem.errors import ModelFileError
from ldaem.fileio import atomic_output

log = logging.getLogger(__name__)

FORMAT_VERSION = 1

# Maximum-likelihood topics floor p(w|k) here for words no training document uses, so that scoring
# a new document with such a word stays finite (lda-c floors log beta at -100 for the same reason).
UNSEEN_WORD_PROBABILITY = 1e-100
_ARRAYS = ("format_version", "topic_word", "alpha", "eta", "vocab", "elbo_trace", "topic_tokens",
           "settings")


@dataclass(frozen=True)
class TopicModel:
    """A fitted LDA model, as stored on disk.

    topic_word: K x V, beta (rows on the simplex) when eta is None, else the variational lambda;
    alpha: K; eta: the topic-word smoothing prior or None; vocab: V terms; elbo_trace: the ELBO of
    every EM iteration; topic_tokens: K expected token counts per topic in the training corpus;
    settings: how the model was fitted (JSON-serialisable).
    """

    topic_word: np.ndarray
    alpha: np.ndarray
    eta: float | None
    vocab: np.ndarray
    elbo_trace: np.ndarray
    topic_tokens: np.ndarray
    settings: dict = field(default_factory=dict)

    @property
    def n_topics(self):
        return self.topic_word.shape[0]

    def topic_word_distribution(self):
        """K x V topic-word probabilities: beta, or the mean of Dir(lambda_k) when smoothed."""
        return self.topic_word / self.topic_word.sum(axis=1, keepdims=True)

    def top_words(self, n_words):
        """For each topic, its n_words most probable terms as (term, probability) pairs."""
        distribution = self.topic_word_distribution()
        n_words = min(n_words, distribution.shape[1])
        top = np.argsort(-distribution, axis=1, kind="stable")[:, :n_words]
        return [[(str(self.vocab[w]), float(distribution[k, w])) for w in top[k]]
                for k in range(self.n_topics)]

    def expected_counts(self):
        """K x V expected topic-word counts of the training corpus: lambda - eta when smoothed,
        else beta scaled by each topic's expected tokens (what a new fit may start from)."""
        if self.eta is not None:
            return np.maximum(self.topic_word - self.eta, 0.0)
        return self.topic_word * self.topic_tokens[:, None]

    def trained_words(self):
        """Mask of the terms the training documents used: for maximum-likelihood topics, those
        whose probability is above the floor in some topic; smoothed topics know every term."""
        if self.eta is not None:
            return np.ones(self.topic_word.shape[1], dtype=bool)
        return np.any(self.topic_word > 2 * UNSEEN_WORD_PROBABILITY, axis=0)

    def topic_shares(self):
        """Each topic's share of the training tokens."""
        return self.topic_tokens / self.topic_tokens.sum()


def check_vocabulary_size(vocab, n_words):
    """A ValueError unless vocab has a term for each of the topics' n_words columns."""
    if len(vocab) != n_words:
        raise ValueError(f"a vocabulary of {len(vocab)} terms for topics over {n_words}")


def save_model(path, model):
    """Write model (a TopicModel) to path (.npz) atomically."""
    if not isinstance(model, TopicModel):
        raise TypeError(f"save_model writes a TopicModel, not {type(model).__name__}: for a fitted "
                        f"LDA, save_model(path, lda.to_model(vocab))")
    arrays = {
        "format_version": np.array(FORMAT_VERSION),
        "topic_word": np.asarray(model.topic_word, dtype=np.float64),
        "alpha": np.asarray(model.alpha, dtype=np.float64),
        "eta": np.array(np.nan if model.eta is None else model.eta, dtype=np.float64),
        "vocab": np.asarray(model.vocab, dtype=str),
        "elbo_trace": np.asarray(model.elbo_trace, dtype=np.float64),
        "topic_tokens": np.asarray(model.topic_tokens, dtype=np.float64),
        "settings": np.array(json.dumps(model.settings, sort_keys=True)),
    }
    with atomic_output(path, "wb") as f:
        np.savez_compressed(f, **arrays)
    log.info("wrote %s: %d topics over %d terms", path, *arrays["topic_word"].shape)


def load_model(path):
    """Read and validate a model file; any problem is a ModelFileError naming the file."""
    try:
        if not Path(path).exists():
            raise FileNotFoundError(path)
        if not zipfile.is_zipfile(path):
            raise ModelFileError(f"{path}: not a readable .npz model file (not a zip archive)")
        with np.load(path, allow_pickle=False) as npz:
            missing = [name for name in _ARRAYS if name not in npz.files]
            if missing:
                raise ModelFileError(f"{path}: not an ldaem model file (no {', '.join(missing)})")
            arrays = {name: npz[name] for name in _ARRAYS}
        not_arrays = [name for name, value in arrays.items() if not isinstance(value, np.ndarray)]
        if not_arrays:          # numpy hands back the raw bytes of a member that is not .npy
            raise ModelFileError(f"{path}: not an ldaem model file ({', '.join(not_arrays)} not arrays)")
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such model file") from None
    except ModelFileError:
        raise
    except ValueError as e:
        if "allow_pickle" in str(e):
            raise ModelFileError(f"{path}: holds pickled objects, which ldaem refuses to load") from None
        raise ModelFileError(f"{path}: not a readable .npz model file ({e})") from None
    except (OSError, zipfile.BadZipFile, EOFError, zlib.error) as e:
        raise ModelFileError(f"{path}: not a readable .npz model file ({e})") from None
    except Exception as e:      # a damaged zip or .npy member fails in many ways inside numpy
        raise ModelFileError(f"{path}: not a readable .npz model file ({type(e).__name__}: {e})") from None
    return _validated(path, arrays)


def _float_array(path, arrays, name, ndim):
    values = arrays[name]
    if values.dtype.kind not in "iuf" or values.ndim != ndim:
        raise ModelFileError(f"{path}: {name} must be a {ndim}-D array of numbers, is {values.dtype} "
                             f"{values.shape}")
    return values.astype(np.float64, copy=False)


def _scalar(path, arrays, name, kinds):
    value = arrays[name]
    if value.shape != () or value.dtype.kind not in kinds:
        raise ModelFileError(f"{path}: {name} must be a single number, is {value.dtype} {value.shape}")
    return value.item()


def _validated(path, arrays):
    version = _scalar(path, arrays, "format_version", "iu")
    if version != FORMAT_VERSION:
        raise ModelFileError(f"{path}: model format version {version}, this ldaem reads {FORMAT_VERSION}")
    if arrays["topic_word"].ndim != 2 or arrays["topic_word"].shape[0] < 1:
        raise ModelFileError(f"{path}: topic_word must be a K x V array, has shape {arrays['topic_word'].shape}")
    topic_word, alpha = _float_array(path, arrays, "topic_word", 2), _float_array(path, arrays, "alpha", 1)
    elbo_trace, topic_tokens = (_float_array(path, arrays, "elbo_trace", 1),
                                _float_array(path, arrays, "topic_tokens", 1))
    vocab = arrays["vocab"]
    if vocab.dtype.kind != "U":
        raise ModelFileError(f"{path}: vocab must be an array of strings, is {vocab.dtype}")
    n_topics, n_words = topic_word.shape
    if alpha.shape != (n_topics,):
        raise ModelFileError(f"{path}: alpha has shape {alpha.shape}, expected ({n_topics},)")
    if vocab.shape != (n_words,):
        raise ModelFileError(f"{path}: vocabulary has {vocab.size} terms, topics have {n_words} columns")
    if topic_tokens.shape != (n_topics,):
        raise ModelFileError(f"{path}: topic_tokens has shape {topic_tokens.shape}")
    for name, values in (("topic_word", topic_word), ("alpha", alpha)):
        if not (np.all(np.isfinite(values)) and np.all(values > 0)):
            raise ModelFileError(f"{path}: {name} must be finite and positive")
    if not (np.all(np.isfinite(topic_tokens)) and np.all(topic_tokens >= 0)):
        raise ModelFileError(f"{path}: topic_tokens must be finite and non-negative")
    if not np.all(np.isfinite(elbo_trace)):
        raise ModelFileError(f"{path}: elbo_trace must be finite")
    eta = float(_scalar(path, arrays, "eta", "f"))
    if eta == eta and not (math.isfinite(eta) and eta > 0):
        raise ModelFileError(f"{path}: eta must be finite and positive, is {eta}")
    if eta != eta and not np.allclose(topic_word.sum(axis=1), 1.0, atol=1e-6):
        raise ModelFileError(f"{path}: topic-word rows do not sum to one")
    if arrays["settings"].shape != () or arrays["settings"].dtype.kind != "U":
        raise ModelFileError(f"{path}: settings must be one JSON string")
    try:
        settings = json.loads(str(arrays["settings"]))
    except (json.JSONDecodeError, RecursionError) as e:
        raise ModelFileError(f"{path}: settings are not valid JSON ({e})") from None
    if not isinstance(settings, dict):
        raise ModelFileError(f"{path}: settings must be a JSON object")
    return TopicModel(
        topic_word=topic_word, alpha=alpha, eta=None if eta != eta else eta, vocab=vocab,
        elbo_trace=elbo_trace, topic_tokens=topic_tokens, settings=settings)
