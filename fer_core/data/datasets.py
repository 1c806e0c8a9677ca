"""Loading, validating and normalising face-expression datasets.

Four layouts end up as one :class:`Dataset` (uint8 images ``(N, H, W, C)`` with
``C`` 1 or 3, int64 labels ``(N,)`` per split):

1. the seed's arrays: an ``.npz`` or a folder of ``.npy`` files;
2. image folders: ``root/{train,validation|val,test}/<class>/*`` or ``root/<class>/*``;
3. the FER2013 CSV (``emotion,pixels,Usage``);
4. ``demo``: the built-in synthetic faces of :mod:`fer_core.data.demo`.

Every problem is a :class:`~fer_core.errors.DatasetError` whose message names
the file/key and what is wrong. Loading never writes to disk.
"""

from __future__ import annotations

import csv
import hashlib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .demo import DEMO_IMAGE_SIZE, DEMO_PER_CLASS  # the demo defaults the CLI and the Train page share
from ..errors import DatasetError, ImageInputError
from .images import open_image, to_array
from ..labels import default_class_names

SPLITS = ("train", "validation", "test")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
#: Image folders are brought to one square size (centre crop, then resize).
FOLDER_IMAGE_SIZE = 128


@dataclass
class Dataset:
    """A dataset in memory. ``splits[name] = (images, labels)``; ``test`` may be absent."""

    name: str
    source: str
    class_names: tuple[str, ...]
    splits: dict[str, tuple[np.ndarray, np.ndarray]]
    warnings: list[str] = field(default_factory=list)
    #: the seed that drew the data (``demo``), recorded so a run's demo faces can be rebuilt
    #: even when the run itself trained with another seed (``--seeds`` sweeps share one dataset)
    data_seed: int | None = None
    #: soft training targets per split, ``(N, C)`` float32 rows summing to 1 (FER+'s vote distributions);
    #: None → one-hot of ``labels``. Accuracy is always scored against the integer labels.
    targets: dict[str, np.ndarray] | None = None
    #: which label set the labels are when not the file's own (``"ferplus"``), recorded with runs
    labels: str | None = None
    #: where those labels came from: ``{"file": name, "sha256": first 16 hex}`` (any votes file is FER+-shaped)
    labels_file: dict | None = None
    #: FER+ only: per split, (N,) bool, the rows of the FER+ paper's own test set
    #: (:func:`fer_core.data.ferplus.paper_majority`), scored beside the plurality as ``metrics["ferplus_paper"]``
    #: so a run compares with published FER+ accuracies. Derived from the same votes: not in the fingerprint.
    paper_rows: dict[str, np.ndarray] | None = None
    _fingerprint: str | None = field(default=None, repr=False)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.splits["train"][0].shape[1:])  # (H, W, C)

    @property
    def eval_split(self) -> str:
        """The split metrics are reported on: test, or validation without one."""
        return "test" if "test" in self.splits else "validation"

    @property
    def fingerprint(self) -> str:
        """Content hash (16 hex chars) of all images, labels and class names.

        Runs, feature caches and the app group by it: two runs compare only
        when they saw exactly the same data.
        """
        if self._fingerprint is None:
            h = hashlib.sha256()
            for split in SPLITS:
                if split not in self.splits:
                    continue
                x, y = self.splits[split]
                h.update(f"{split}{x.shape}{y.shape}".encode())
                h.update(np.ascontiguousarray(x).data)
                h.update(np.ascontiguousarray(y.astype(np.int64)).data)
                if self.targets is not None and split in self.targets:
                    h.update(np.ascontiguousarray(self.targets[split], dtype=np.float32).data)
            h.update("|".join(self.class_names).encode())
            self._fingerprint = h.hexdigest()[:16]
        return self._fingerprint

    def describe(self) -> dict:
        """Small JSON-able description stored with every run."""
        return {
            "name": self.name,
            "source": self.source,
            "fingerprint": self.fingerprint,
            "class_names": list(self.class_names),
            "image_shape": list(self.image_shape),
            "split_sizes": {s: int(len(y)) for s, (_, y) in self.splits.items()},
            **({"data_seed": self.data_seed} if self.data_seed is not None else {}),
            **({"labels": self.labels} if self.labels else {}),
            **({"labels_file": self.labels_file} if self.labels_file else {}),
        }

    def training_targets(self, split: str) -> np.ndarray:
        """(N, C) float32 targets of ``split``: the soft targets when the dataset has them, else one-hot labels."""
        if self.targets is not None and split in self.targets:
            return self.targets[split]
        return np.eye(self.n_classes, dtype=np.float32)[self.splits[split][1]]


# --------------------------------------------------------------------------- entry point

def load_dataset(spec: str | Path, *, seed: int = 0, demo_per_class: int = DEMO_PER_CLASS,
                 demo_image_size: int = DEMO_IMAGE_SIZE, folder_image_size: int = FOLDER_IMAGE_SIZE,
                 labels: str | None = None) -> Dataset:
    """Load ``spec`` (``"demo"``, an ``.npz``, ``.csv``, or a folder) as a :class:`Dataset`.

    ``labels``: None → the file's own labels; ``"ferplus"`` (or a path to a
    FER+ votes file) → FER2013's faces with the FER+ crowd's 8-emotion labels
    (:mod:`fer_core.data.ferplus`).
    """
    if labels:
        if str(spec) == "demo":
            raise DatasetError("--labels ferplus needs FER2013 (fer2013.npz or its .csv), not the demo faces")
        from .ferplus import attach_ferplus, votes_path

        votes = votes_path(spec, labels)  # checked before the (large) dataset is read
        return attach_ferplus(load_dataset(spec, seed=seed, folder_image_size=folder_image_size), votes)
    if str(spec) == "demo":
        from .demo import make_demo_arrays

        arrays = make_demo_arrays(per_class=demo_per_class, image_size=demo_image_size, seed=seed)
        ds = dataset_from_arrays(arrays, name="demo", source="demo")
        ds.data_seed = seed
        return ds
    path = Path(spec).expanduser()
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder (expected 'demo', an .npz, a .csv or a folder)")
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".npz":
            return _load_npz(path)
        if suffix == ".csv":
            return _load_fer_csv(path)
        raise DatasetError(f"{path}: unsupported file type '{suffix}' (expected .npz, .csv, or a folder)")
    if any(path.glob("*.npy")):
        return _load_npy_folder(path)
    return _load_image_folders(path, seed=seed, size=folder_image_size)


# --------------------------------------------------------------------------- array layout

_KEY_ALIASES = {"validation": ("validation", "val")}


def _load_npz(path: Path) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise DatasetError(f"{path}: not a readable .npz archive ({exc})") from None
    except ValueError as exc:  # object arrays need pickle, which we refuse
        raise DatasetError(f"{path}: contains an array that needs pickle to load ({exc}); save plain numeric arrays") from None
    return dataset_from_arrays(arrays, name=path.stem, source=str(path))


def _load_npy_folder(path: Path) -> Dataset:
    arrays = {}
    for f in sorted(path.glob("*.npy")):
        try:
            arrays[f.stem] = np.load(f, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise DatasetError(f"{f}: cannot read .npy file ({exc})") from None
    return dataset_from_arrays(arrays, name=path.name, source=str(path))


def dataset_from_arrays(arrays: dict[str, np.ndarray], *, name: str, source: str) -> Dataset:
    """Validate the seed's array dict and normalise it into a :class:`Dataset`."""
    found = {}
    for split in SPLITS:
        for alias in _KEY_ALIASES.get(split, (split,)):
            xi, yi = f"{alias}_images", f"{alias}_labels"
            if xi in arrays or yi in arrays:
                if xi not in arrays or yi not in arrays:
                    missing = xi if xi not in arrays else yi
                    raise DatasetError(f"{source}: has '{yi if missing == xi else xi}' but no '{missing}'")
                found[split] = (xi, yi)
                break
    for required in ("train", "validation"):
        if required not in found:
            keys = ", ".join(sorted(arrays)) or "none"
            raise DatasetError(f"{source}: missing '{required}_images'/'{required}_labels' (keys found: {keys})")

    class_names = None
    if "class_names" in arrays:
        cn = arrays["class_names"]
        if cn.ndim != 1 or len(cn) < 2:
            raise DatasetError(f"{source}: 'class_names' must be a 1-D list of at least 2 names, got shape {cn.shape}")
        class_names = tuple(str(c) for c in cn.tolist())

    # One-hot width or explicit names fix the class count; else max label + 1.
    raw_labels = {s: arrays[k[1]] for s, k in found.items()}
    n_classes = len(class_names) if class_names else _infer_n_classes(raw_labels, source, found)
    splits = {}
    shape = None
    for split, (xk, yk) in found.items():
        x = _normalise_images(arrays[xk], f"{source}: '{xk}'")
        y = _normalise_labels(arrays[yk], n_classes, f"{source}: '{yk}'")
        if len(x) != len(y):
            raise DatasetError(f"{source}: '{xk}' has {len(x)} images but '{yk}' has {len(y)} labels")
        if len(x) == 0:
            raise DatasetError(f"{source}: '{xk}' is empty")
        if shape is None:
            shape = x.shape[1:]
        elif x.shape[1:] != shape:
            raise DatasetError(f"{source}: '{xk}' images are {x.shape[1:]} but train images are {shape}")
        splits[split] = (x, y)
    return Dataset(name=name, source=source, class_names=class_names or default_class_names(n_classes), splits=splits)


def _infer_n_classes(raw_labels: dict, source: str, found: dict) -> int:
    widths = {y.shape[1] for y in raw_labels.values() if y.ndim == 2 and y.shape[1] > 1}
    if len(widths) > 1:
        raise DatasetError(f"{source}: one-hot labels disagree on the number of classes ({sorted(widths)})")
    if widths:
        return widths.pop()
    top = -1
    for split, y in raw_labels.items():
        if y.size and np.issubdtype(y.dtype, np.number):
            top = max(top, int(np.nanmax(y)))
    if top < 1:
        raise DatasetError(f"{source}: '{found['train'][1]}' needs at least 2 distinct classes")
    return top + 1


def _normalise_images(x: np.ndarray, where: str) -> np.ndarray:
    """Any accepted image array → uint8 ``(N, H, W, C)``, C in {1, 3}."""
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise DatasetError(f"{where}: shape {x.shape} is not (N,H,W), (N,H,W,1) or (N,H,W,3)")
    if x.dtype == np.uint8:
        return x
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise DatasetError(f"{where}: dtype {x.dtype} is not numeric")
    if x.size == 0:
        return x.astype(np.uint8)
    x = x.astype(np.float32, copy=False)
    if not np.isfinite(x).all():
        raise DatasetError(f"{where}: contains NaN or infinite values")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0 or hi > 255:
        raise DatasetError(f"{where}: values span [{lo:g}, {hi:g}]; expected [0, 1] or [0, 255]")
    if hi <= 1.0:  # floats in [0, 1]
        x = x * 255.0
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _normalise_labels(y: np.ndarray, n_classes: int, where: str) -> np.ndarray:
    """Labels ``(N,)``, ``(N, 1)`` or one-hot ``(N, C)`` → int64 ``(N,)``."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim == 2:
        if y.shape[1] != n_classes:
            raise DatasetError(f"{where}: one-hot width {y.shape[1]} does not match {n_classes} classes")
        if not np.all((y == 0) | (y == 1)) or not np.all(y.sum(axis=1) == 1):
            raise DatasetError(f"{where}: 2-D labels must be one-hot (a single 1 per row)")
        return y.argmax(axis=1).astype(np.int64)
    if y.ndim != 1:
        raise DatasetError(f"{where}: shape {y.shape} is not (N,), (N,1) or one-hot (N,C)")
    if not np.issubdtype(y.dtype, np.number):
        raise DatasetError(f"{where}: labels must be integers, got dtype {y.dtype}")
    if y.size and (not np.all(np.mod(y, 1) == 0)):
        raise DatasetError(f"{where}: labels must be whole numbers")
    y = y.astype(np.int64)
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise DatasetError(f"{where}: labels span [{y.min()}, {y.max()}] but there are {n_classes} classes (0..{n_classes - 1})")
    return y


# --------------------------------------------------------------------------- FER2013 CSV

_USAGE = {"training": "train", "publictest": "validation", "privatetest": "test"}


def _load_fer_csv(path: Path) -> Dataset:
    from ..labels import FER2013_7

    xs = {s: [] for s in SPLITS}
    ys = {s: [] for s in SPLITS}
    try:
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            cols = set(reader.fieldnames or [])
            for col in ("emotion", "pixels", "Usage"):
                if col not in cols:
                    raise DatasetError(f"{path}: missing column '{col}' (found: {', '.join(sorted(cols)) or 'none'})")
            for lineno, row in enumerate(reader, start=2):
                split = _USAGE.get((row["Usage"] or "").strip().lower())
                if split is None:
                    raise DatasetError(f"{path}:{lineno}: Usage '{row['Usage']}' is not Training, PublicTest or PrivateTest")
                try:
                    pix = np.array(row["pixels"].split(), dtype=np.int64)
                    label = int(row["emotion"])
                except (ValueError, AttributeError):
                    raise DatasetError(f"{path}:{lineno}: 'emotion' or 'pixels' is not numeric") from None
                side = int(round(np.sqrt(pix.size)))
                if side * side != pix.size or side == 0:
                    raise DatasetError(f"{path}:{lineno}: {pix.size} pixels do not form a square image")
                if pix.min() < 0 or pix.max() > 255:
                    raise DatasetError(f"{path}:{lineno}: pixel values must be 0..255")
                if not 0 <= label < len(FER2013_7):
                    raise DatasetError(f"{path}:{lineno}: emotion {label} is not in 0..6")
                xs[split].append(pix.astype(np.uint8).reshape(side, side))
                ys[split].append(label)
    except UnicodeDecodeError:
        raise DatasetError(f"{path}: not a text CSV file") from None
    arrays = {}
    for split in SPLITS:
        if xs[split]:
            shapes = {a.shape for a in xs[split]}
            if len(shapes) > 1:
                raise DatasetError(f"{path}: {split} rows have different image sizes {sorted(shapes)}")
            arrays[f"{split}_images"] = np.stack(xs[split])
            arrays[f"{split}_labels"] = np.array(ys[split], dtype=np.int64)
    arrays["class_names"] = np.array(FER2013_7)
    return dataset_from_arrays(arrays, name=path.stem, source=str(path))


# --------------------------------------------------------------------------- image folders

def _load_image_folders(root: Path, *, seed: int, size: int) -> Dataset:
    subdirs = {d.name.lower(): d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")}
    if not subdirs:
        raise DatasetError(f"{root}: folder has no class folders and no .npy files")
    split_dirs = {}
    if "train" in subdirs:
        split_dirs["train"] = subdirs["train"]
        val = subdirs.get("validation") or subdirs.get("val")
        if val is None:
            raise DatasetError(f"{root}: has 'train/' but no 'validation/' or 'val/' folder")
        split_dirs["validation"] = val
        if "test" in subdirs:
            split_dirs["test"] = subdirs["test"]
    warnings: list[str] = []
    skipped = 0
    if split_dirs:
        class_names = tuple(sorted(d.name for d in split_dirs["train"].iterdir() if d.is_dir() and not d.name.startswith(".")))
        if len(class_names) < 2:
            raise DatasetError(f"{split_dirs['train']}: needs at least 2 class folders, found {len(class_names)}")
        loaded = {}
        for split, d in split_dirs.items():
            extra = sorted({c.name for c in d.iterdir() if c.is_dir() and not c.name.startswith(".")} - set(class_names))
            if extra:
                raise DatasetError(f"{d}: class folder(s) {', '.join(extra)} are not in train/ ({', '.join(class_names)})")
            images, labels, n_skip = _read_class_folders(d, class_names, size, require_all=(split == "train"))
            skipped += n_skip
            loaded[split] = (images, labels)
    else:
        class_names = tuple(sorted(d.name for d in subdirs.values()))
        if len(class_names) < 2:
            raise DatasetError(f"{root}: needs at least 2 class folders, found {len(class_names)}")
        images, labels, skipped = _read_class_folders(root, class_names, size, require_all=True)
        idx = stratified_split(labels, seed=seed)
        loaded = {s: (images[i], labels[i]) for s, i in idx.items() if len(i)}
        if "validation" not in loaded:
            raise DatasetError(f"{root}: too few images to make a validation split (need at least 3 per class)")
    if skipped:
        warnings.append(f"skipped {skipped} file(s) that are not readable images")
    # Gray only when every image is gray: keeps FER-like gray data one-channel.
    channels = max(x.shape[-1] for x, _ in loaded.values())
    splits = {s: (_to_channels(x, channels), y) for s, (x, y) in loaded.items()}
    return Dataset(name=root.name, source=str(root), class_names=class_names, splits=splits, warnings=warnings)


def _read_class_folders(folder: Path, class_names, size: int, *, require_all: bool):
    images, labels, skipped = [], [], 0
    for label, cls in enumerate(class_names):
        d = folder / cls
        if not d.is_dir():
            if require_all:
                raise DatasetError(f"{d}: class folder is missing")
            continue
        n_before = len(images)
        for f in sorted(p for p in d.rglob("*") if p.is_file() and not p.name.startswith(".")):
            if f.suffix.lower() not in IMAGE_SUFFIXES:
                skipped += 1
                continue
            try:
                img = open_image(f)
            except ImageInputError:
                skipped += 1
                continue
            images.append(to_array(_square(img, size)))
            labels.append(label)
        if len(images) == n_before and require_all:
            raise DatasetError(f"{d}: class folder has no readable images")
    if not images:
        raise DatasetError(f"{folder}: no readable images")
    channels = max(a.shape[-1] for a in images)
    return np.stack([_to_channels(a[None], channels)[0] for a in images]), np.array(labels, dtype=np.int64), skipped


def _square(img, size: int):
    """Centre-crop to a square, then resize: faces keep their aspect ratio."""
    from PIL import Image

    w, h = img.size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    return img.crop((left, top, left + s, top + s)).resize((size, size), Image.Resampling.BILINEAR)


def _to_channels(x: np.ndarray, channels: int) -> np.ndarray:
    if x.shape[-1] == channels:
        return x
    return np.repeat(x, channels, axis=-1) if x.shape[-1] == 1 else x[..., :1]


def stratified_split(labels: np.ndarray, fractions=(0.70, 0.15, 0.15), seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded per-class split; every class keeps at least one image in train."""
    rng = np.random.default_rng(seed)
    out = {s: [] for s in SPLITS}
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n = len(idx)
        # Classes with ≥ 3 images get at least one validation and one test image.
        n_val = max(int(round(fractions[1] * n)), 1 if n >= 3 and fractions[1] > 0 else 0)
        n_test = max(int(round(fractions[2] * n)), 1 if n >= 3 and fractions[2] > 0 else 0)
        n_train = max(1, n - n_val - n_test)
        # Shrink val/test if rounding left train empty for tiny classes.
        while n_train + n_val + n_test > n:
            if n_test >= n_val and n_test > 0:
                n_test -= 1
            else:
                n_val -= 1
        out["train"].append(idx[:n_train])
        out["validation"].append(idx[n_train:n_train + n_val])
        out["test"].append(idx[n_train + n_val:n_train + n_val + n_test])
    return {s: rng.permutation(np.concatenate(v)) if v else np.array([], dtype=np.int64) for s, v in out.items()}


# --------------------------------------------------------------------------- checks

def dataset_report(ds: Dataset, max_examples: int = 10) -> dict:
    """Split sizes, class counts per split and cross-split exact duplicates.

    Duplicates are byte-identical images found in two splits: leakage that
    inflates test accuracy. Returned as plain data for a page or a JSON file.
    """
    hashes = {}
    for split, (x, _) in ds.splits.items():
        flat = x.reshape(len(x), -1)
        hashes[split] = [hashlib.blake2b(row.tobytes(), digest_size=12).digest() for row in flat]
    leakage = {}
    examples = []
    names = list(ds.splits)
    for i, a in enumerate(names):
        first_index = {}
        for j, h in enumerate(hashes[a]):
            first_index.setdefault(h, j)
        for b in names[i + 1:]:
            shared = [(first_index[h], k) for k, h in enumerate(hashes[b]) if h in first_index]
            leakage[f"{a}-{b}"] = len(shared)
            for ia, ib in shared[: max(0, max_examples - len(examples))]:
                examples.append({"split_a": a, "index_a": int(ia), "split_b": b, "index_b": int(ib)})
    return {
        **ds.describe(),
        "class_counts": {
            s: {name: int(n) for name, n in zip(ds.class_names, np.bincount(y, minlength=ds.n_classes))}
            for s, (_, y) in ds.splits.items()
        },
        "leakage": {"pairs": leakage, "total": int(sum(leakage.values())), "examples": examples},
        "warnings": list(ds.warnings),
    }
