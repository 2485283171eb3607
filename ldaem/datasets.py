"""The corpora bundled in the repository's corpora/ folder: one loader for tests, benchmarks,
the demo and the docs."""

from pathlib import Path

from ldaem.corpus import load_corpus
from ldaem.errors import CorpusError

CORPORA = Path(__file__).resolve().parent.parent / "corpora"
_BUNDLED = {
    "ap": ("ap/ap.dat", "ap/vocab.txt"),            # 2,246 AP articles, the lda-c example
    "reuters": ("reuters/reuters.ldac", "reuters/reuters.tokens"),   # 395 Reuters stories
}


def bundled_paths(name):
    """(corpus file, vocabulary file) of a bundled corpus."""
    if name not in _BUNDLED:
        raise CorpusError(f"no bundled corpus {name!r} (there are: {', '.join(sorted(_BUNDLED))})")
    corpus, vocab = (CORPORA / part for part in _BUNDLED[name])
    if not corpus.exists():
        raise CorpusError(f"{corpus}: bundled corpora ship with the source tree, not with this install")
    return corpus, vocab


def load_bundled(name):
    """A bundled corpus as a Corpus: 'ap' or 'reuters'."""
    corpus, vocab = bundled_paths(name)
    return load_corpus(corpus, "ldac", vocab)
