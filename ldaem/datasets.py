"""The corpora bundled in the repository's corpora/ folder: one loader for tests, benchmarks,
the demo and the docs."""

from pathlib import Path

from ldaem.corpus import load_corpus
from ldaem.errors import CorpusError

CORPORA = Path(__file__).resolve().parent.parent / "corpora"
# name: (corpus, vocabulary or None, load_corpus options)
_BUNDLED = {
    "ap": ("ap/ap.dat", "ap/vocab.txt", {"format": "ldac"}),        # 2,246 AP articles (lda-c's example)
    "reuters": ("reuters/reuters.ldac", "reuters/reuters.tokens", {"format": "ldac"}),   # 395 stories
    "fortunes": ("fortunes/fortunes", None, {"format": "dir", "doc_separator": "%"}),   # 4,330 fortunes
}


def bundled_paths(name):
    """(corpus path, vocabulary file or None) of a bundled corpus."""
    if name not in _BUNDLED:
        raise CorpusError(f"no bundled corpus {name!r} (there are: {', '.join(sorted(_BUNDLED))})")
    corpus, vocab, _ = _BUNDLED[name]
    corpus, vocab = CORPORA / corpus, vocab and CORPORA / vocab
    if not corpus.exists():
        raise CorpusError(f"{corpus}: bundled corpora ship with the source tree, not with this install")
    return corpus, vocab


def load_bundled(name, **options):
    """A bundled corpus as a Corpus: 'ap', 'reuters' (LDA-C) or 'fortunes' (raw text; options such
    as text_settings go to load_corpus)."""
    corpus, vocab = bundled_paths(name)
    return load_corpus(corpus, vocab=vocab, **{**_BUNDLED[name][2], **options})
