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
