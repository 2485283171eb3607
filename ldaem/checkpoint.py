"""Checkpoints of a batch fit: a FitState and the settings that made it, in an .npz that loads
without pickle, so that `ldaem fit --resume` continues exactly where a fit stopped."""

import json
import logging
import zipfile
import zlib
from dataclasses import astuple, fields

import numpy as np

from ldaem.errors import ModelFileError
from ldaem.fileio import atomic_output
from ldaem.lda import FitState
from ldaem.records import IterationRecord

log = logging.getLogger(__name__)

CHECKPOINT_VERSION = 1
_RECORD_FIELDS = [f.name for f in fields(IterationRecord)]


def save_checkpoint(path, state, settings):
    """Write state (a FitState with gamma) and settings (JSON-serialisable) to path atomically."""
    records = np.array([astuple(r)[:len(_RECORD_FIELDS)] for r in state.iterations], dtype=np.float64)
    with atomic_output(path, "wb") as f:
        np.savez(f, checkpoint_version=np.array(CHECKPOINT_VERSION), topic_word=state.topic_word,
                 alpha=state.alpha, gamma=state.gamma, eta=np.array(np.nan if state.eta is None else state.eta),
                 iterations=records.reshape(len(state.iterations), len(_RECORD_FIELDS)),
                 settings=np.array(json.dumps(settings, sort_keys=True)), inference=np.array(state.inference))
    log.info("wrote the checkpoint %s after iteration %d", path, len(state.iterations))


def load_checkpoint(path):
    """(FitState, settings) from a checkpoint file; any problem is a ModelFileError."""
    try:
        if not zipfile.is_zipfile(path):
            open(path, "rb").close()                # a missing or unreadable file says so
            raise ModelFileError(f"{path}: not an ldaem checkpoint (not an .npz file)")
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        if "checkpoint_version" not in arrays and "format_version" in arrays:
            raise ModelFileError(f"{path}: a model file, not a checkpoint (NAME.checkpoint.npz, "
                                 f"written beside the model)")
        version = int(arrays["checkpoint_version"])
        settings = json.loads(str(arrays["settings"]))
        records = arrays["iterations"]
        eta = float(arrays["eta"]) if "eta" in arrays else np.nan
        state = FitState(topic_word=arrays["topic_word"], alpha=arrays["alpha"], gamma=arrays["gamma"],
                         iterations=tuple(_record(row) for row in records),
                         eta=None if np.isnan(eta) else eta,
                         inference=str(arrays["inference"]) if "inference" in arrays else "variational")
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such checkpoint file") from None
    except ModelFileError:
        raise
    except (KeyError, ValueError, TypeError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise ModelFileError(f"{path}: not a readable ldaem checkpoint ({e})") from None
    if version != CHECKPOINT_VERSION:
        raise ModelFileError(f"{path}: checkpoint version {version}, this ldaem reads {CHECKPOINT_VERSION}")
    if not all(np.all(np.isfinite(a)) for a in (state.topic_word, state.alpha, state.gamma)) or not (
            state.eta is None or state.eta > 0):
        raise ModelFileError(f"{path}: the checkpoint holds non-finite parameters")
    return state, settings


def _record(row):
    values = dict(zip(_RECORD_FIELDS, row.tolist()))
    values["iteration"] = int(values["iteration"])
    return IterationRecord(**values)
