"""ldaem: latent Dirichlet allocation fitted by variational EM.

    from ldaem import LDA
    lda = LDA(n_components=20, random_state=0).fit(X)   # X: sparse document-term counts
    theta = lda.transform(X_new)
"""

__version__ = "0.1.0"
__all__ = ["LDA", "load_corpus", "load_model", "save_model"]


def __getattr__(name):
    # Imported on first use, so that reading a model file never compiles the numba kernels.
    if name == "LDA":
        from ldaem.lda import LDA
        return LDA
    if name == "load_corpus":
        from ldaem.corpus import load_corpus
        return load_corpus
    if name in ("load_model", "save_model"):
        from ldaem import model
        return getattr(model, name)
    raise AttributeError(f"module 'ldaem' has no attribute {name!r}")
