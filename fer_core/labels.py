"""Class-name orders of the two label conventions the project meets.

Arrays without a ``class_names`` entry get their names from the number of
classes: 8 → AffectNet's order (the seed's data), 7 → FER2013's order.
"""

AFFECTNET_8 = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger", "contempt")
FER2013_7 = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def default_class_names(n_classes: int) -> tuple[str, ...]:
    """Names for ``n_classes`` integer labels when a dataset does not say."""
    if n_classes == 8:
        return AFFECTNET_8
    if n_classes == 7:
        return FER2013_7
    return tuple(f"class_{i}" for i in range(n_classes))

#: Names that mean the same emotion in the two conventions.
SYNONYMS = {"angry": "anger", "anger": "anger"}


def canonical(name: str) -> str:
    """One spelling per emotion (FER2013's 'angry' is AffectNet's 'anger')."""
    return SYNONYMS.get(name, name)


def index_map(source, target):
    """(len(source),) int array: the index in ``target`` of each ``source`` class, matched by emotion; -1 where absent.

    Why: labels move between the two conventions (FER2013's 7 ↔ the crowd's 8) in the
    benchmarks and the Dataset page; one mapping keeps them agreeing (contempt → -1 in FER2013's).
    """
    import numpy as np

    target = [canonical(n) for n in target]
    return np.array([target.index(canonical(n)) if canonical(n) in target else -1 for n in source], dtype=np.int64)


def to_class_set(probs, names, target):
    """Probabilities (N, len(names)) → (N, len(target)), matched by emotion name.

    Why: a 7-class FER2013 model and an 8-class FER+ model are scored on each
    other's test sets (the benchmark table) and averaged in one ensemble only
    through this. A target class the source lacks (contempt for a FER2013
    model) gets 0; a source class the target lacks (contempt for FER2013's
    test) is dropped and each row renormalised, i.e. the prediction among the
    classes the target has. Same names in the same order: returned unchanged.
    """
    import numpy as np

    names, target = [canonical(n) for n in names], [canonical(n) for n in target]
    probs = np.asarray(probs, dtype=np.float32)
    if names == target:
        return probs
    cols = [names.index(t) if t in names else None for t in target]
    out = np.stack([probs[:, c] if c is not None else np.zeros(len(probs), np.float32) for c in cols], axis=1)
    total = out.sum(axis=1, keepdims=True)
    return np.divide(out, total, out=np.full_like(out, 1.0 / len(target)), where=total > 0)
