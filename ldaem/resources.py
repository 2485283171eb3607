"""Memory a fit will need, checked before anything large is allocated (issue 7)."""

import logging
import os

from ldaem.errors import LdaemError

log = logging.getLogger(__name__)

# float64 arrays of a batch fit. K x V: the topics, the E-step's weights, the sufficient statistics
# and the M-step's result beside them. D x K: gamma (previous and current) and exp(E[log theta]).
_TOPIC_WORD_COPIES = 4
_DOC_TOPIC_COPIES = 3
# per nonzero: the corpus (8-byte count, 4-8 byte index), the E-step's ratio and word-order index (24)
_BYTES_PER_NONZERO = 40


class InsufficientMemory(LdaemError, MemoryError):
    """A fit would need more memory than the machine has available."""


def fit_memory_bytes(n_docs, n_words, nnz, n_topics, nonzero_topic_bytes=0):
    """Bytes a batch fit holds at its peak, beyond the interpreter: see the constants above, and
    nonzero_topic_bytes per nonzero and topic (CVB0's phi: the size of its values)."""
    return (8 * n_topics * (_TOPIC_WORD_COPIES * n_words + _DOC_TOPIC_COPIES * n_docs)
            + (_BYTES_PER_NONZERO + nonzero_topic_bytes * n_topics) * nnz)


def available_memory_bytes():
    """MemAvailable from /proc/meminfo, else the physical memory, else None (unknown)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_fit_memory(n_docs, n_words, nnz, n_topics, available=None, nonzero_topic_bytes=0):
    """Raise InsufficientMemory, saying how much is needed, if a fit cannot fit in memory."""
    needed = fit_memory_bytes(n_docs, n_words, nnz, n_topics, nonzero_topic_bytes)
    available = available_memory_bytes() if available is None else available
    log.info("the fit needs about %.1f MiB; %s available", needed / 2**20,
             "an unknown amount is" if available is None else f"{available / 2**30:.1f} GiB is")
    if available is not None and needed > available:
        raise InsufficientMemory(
            f"fitting {n_topics} topics to {n_docs} documents x {n_words} terms needs about "
            f"{needed / 2**30:.1f} GiB; {available / 2**30:.1f} GiB is available "
            f"(fewer topics, a smaller vocabulary, or --method online would need less)")
