"""FER+ crowd votes as a label set: the loader, its targets, the class mapping, and training on soft targets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fer_core import load_dataset
from fer_core.errors import DatasetError
from fer_core.data.ferplus import VOTE_NAMES, agreement, crowd_agreement, paper_majority, votes_to_targets
from fer_core.labels import AFFECTNET_8, FER2013_7, index_map, to_class_set

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "fer2013"


def _votes(*rows) -> np.ndarray:
    """Rows of {vote name: count} → (N, 10) int16 in FER+ column order."""
    out = np.zeros((len(rows), len(VOTE_NAMES)), np.int16)
    for i, r in enumerate(rows):
        if r is None:
            out[i] = -1
            continue
        for k, v in r.items():
            out[i, VOTE_NAMES.index(k)] = v
    return out


def test_votes_become_majority_labels_and_distributions_in_affectnet_order():
    votes = _votes({"happiness": 8, "neutral": 2}, {"sadness": 4, "neutral": 6}, None, {"NF": 9, "neutral": 1},
                   {"unknown": 5, "anger": 3, "contempt": 2}, {"contempt": 6, "disgust": 4})
    keep, majority, dist = votes_to_targets(votes)
    assert keep.tolist() == [True, True, False, False, False, True]  # unmatched, not-a-face, unknown left out
    assert [AFFECTNET_8[k] for k in majority] == ["happy", "neutral", "contempt"]
    np.testing.assert_allclose(dist.sum(1), 1.0)
    assert dist[0, AFFECTNET_8.index("happy")] == pytest.approx(0.8)
    assert dist[1, AFFECTNET_8.index("sad")] == pytest.approx(0.4)
    assert dist[2, AFFECTNET_8.index("disgust")] == pytest.approx(0.4)


def test_the_papers_test_protocol_drops_single_votes_and_keeps_only_clear_majorities():
    votes = _votes({"happiness": 6, "neutral": 4},  # 6 of 10: kept
                   {"sadness": 5, "neutral": 5},  # a tie: no clear majority, left out
                   {"fear": 5, "anger": 2, "surprise": 1, "disgust": 1, "contempt": 1},  # 5 of 7 once single votes go
                   {"anger": 4, "neutral": 3, "sadness": 3},  # 4 of 10: left out
                   {"unknown": 6, "neutral": 4},  # the majority is not an emotion
                   None,  # unmatched
                   {"contempt": 3, "neutral": 2, "happiness": 1})  # 3 of 5
    keep, label = paper_majority(votes)
    assert keep.tolist() == [True, False, True, False, False, False, True]
    assert [AFFECTNET_8[k] for k in label] == ["happy", "fear", "contempt"]
    plurality_keep, plurality, _ = votes_to_targets(votes)
    assert (plurality_keep | ~keep).all()  # the paper's set lies inside the plurality one, with the same labels
    np.testing.assert_array_equal(plurality[keep[plurality_keep]], label)
    with pytest.raises(DatasetError):
        paper_majority(np.zeros((3, 8)))


def _fer2013_like(tmp_path: Path, n: int = 12) -> tuple[Path, dict]:
    rng = np.random.default_rng(0)
    arrays = {}
    for split in ("train", "validation", "test"):
        arrays[f"{split}_images"] = rng.integers(0, 255, (n, 48, 48), dtype=np.uint8)
        arrays[f"{split}_labels"] = np.arange(n) % 7
    arrays["class_names"] = np.array(FER2013_7)
    path = tmp_path / "fer2013.npz"
    np.savez(path, **arrays)
    return path, arrays


def _write_votes(folder: Path, n: int) -> dict:
    names = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt"]
    votes = {}
    for split in ("train", "validation", "test"):
        rows = [{names[i % 8]: 7, "neutral": 3} if i % 8 else {"neutral": 10} for i in range(n)]
        rows[-1] = None  # one unmatched row per split
        votes[f"{split}_votes"] = _votes(*rows)
    np.savez(folder / "ferplus_votes.npz", **votes)
    return votes


def test_load_dataset_with_ferplus_labels(tmp_path):
    path, arrays = _fer2013_like(tmp_path)
    _write_votes(tmp_path, 12)
    own = load_dataset(path)
    ds = load_dataset(path, labels="ferplus")
    assert ds.class_names == AFFECTNET_8 and ds.labels == "ferplus" and ds.describe()["labels"] == "ferplus"
    for split in ("train", "validation", "test"):
        x, y = ds.splits[split]
        assert len(x) == 11 and len(y) == 11 and ds.targets[split].shape == (11, 8)
        np.testing.assert_array_equal(x[:, :, :, 0], arrays[f"{split}_images"][:11])  # the same faces, in order
        np.testing.assert_array_equal(ds.training_targets(split).argmax(1), y)
    assert ds.fingerprint != own.fingerprint
    assert any("left out" in w for w in ds.warnings)
    assert all(ds.paper_rows[s].shape == (11,) and ds.paper_rows[s].all() for s in ds.splits)  # 7 or 10 of 10 votes
    # one-hot targets for a dataset without votes
    np.testing.assert_array_equal(own.training_targets("train").argmax(1), own.splits["train"][1])


def test_ferplus_labels_need_the_votes_and_matching_splits(tmp_path):
    path, _ = _fer2013_like(tmp_path)
    with pytest.raises(DatasetError, match="no FER\\+ votes file"):
        load_dataset(path, labels="ferplus")
    _write_votes(tmp_path, 10)  # 10 rows for 12 faces
    with pytest.raises(DatasetError, match="does not match"):
        load_dataset(path, labels="ferplus")
    with pytest.raises(DatasetError, match="not the demo faces"):
        load_dataset("demo", labels="ferplus")


def test_agreement_per_fer2013_class(tmp_path):
    path, _ = _fer2013_like(tmp_path, n=14)
    _write_votes(tmp_path, 14)
    report = crowd_agreement(load_dataset(path))
    assert set(report) == {"train", "validation", "test"}
    test = report["test"]
    assert test["n"] == 13 and 0 <= test["overall"] <= 1
    assert sum(r["n"] for r in test["per_class"].values()) == 13
    # a FER2013 'neutral' (label 6) face the crowd calls neutral agrees
    one = agreement(np.array([6, 0]), _votes({"neutral": 10}, {"anger": 9, "fear": 1}))
    assert one["overall"] == 1.0 and one["per_class"]["angry"]["agree"] == 1.0


def test_class_sets_map_by_emotion_name():
    p8 = np.array([[0.1, 0.2, 0.1, 0.1, 0.1, 0.1, 0.2, 0.1]], np.float32)  # AFFECTNET_8 order, contempt 0.1
    p7 = to_class_set(p8, AFFECTNET_8, FER2013_7)
    assert p7.shape == (1, 7) and p7.sum() == pytest.approx(1.0)
    assert p7[0, FER2013_7.index("angry")] == pytest.approx(0.2 / 0.9)  # anger ≡ angry, contempt dropped
    back = to_class_set(p7, FER2013_7, AFFECTNET_8)
    assert back[0, AFFECTNET_8.index("contempt")] == 0 and back.sum() == pytest.approx(1.0)
    assert to_class_set(p8, AFFECTNET_8, AFFECTNET_8) is not None


def test_index_map_moves_labels_between_the_conventions():
    to8 = index_map(FER2013_7, AFFECTNET_8)
    assert [AFFECTNET_8[i] for i in to8] == ["anger", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    to7 = index_map(AFFECTNET_8, FER2013_7)
    assert to7[AFFECTNET_8.index("contempt")] == -1  # FER2013 has no contempt
    assert (to7[to8] == np.arange(7)).all()  # there and back


def test_mixed_votes_add_fer2013s_label_to_train_rows_only():
    from benchmarks.mixed_votes import mixed_votes

    v2f = np.array([6, 3, 5, 4, 0, 1, 2, -1, -1, -1])  # the votes file's vote_to_fer2013
    votes = np.array([[10, 0, 0, 0, 0, 0, 0, 0, 0, 0], [-1] * 10, [0, 0, 0, 2, 0, 0, 0, 0, 8, 0]])
    out = mixed_votes(np.array([2, 2, 4]), votes, v2f, weight=10)  # fear, fear, sad
    assert out[0].tolist() == [10, 0, 0, 0, 0, 0, 10, 0, 0, 0]  # fear's column is 6
    assert out[1].tolist() == [-1] * 10  # unmatched stays unmatched
    assert out[2, 3] == 12 and votes[2, 3] == 2  # sadness; the input is not changed
    keep, majority, dist = votes_to_targets(out)
    assert keep.tolist() == [True, False, True] and AFFECTNET_8[majority[1]] == "sad"


def test_training_on_soft_targets_is_scored_on_the_majority(tmp_path):
    from fer_core.store.runs import load_run
    from fer_core.fit.train import TrainConfig, train_one

    path, _ = _fer2013_like(tmp_path, n=16)
    votes = _write_votes(tmp_path, 16)
    votes["test_votes"][:2] = _votes({"fear": 4, "anger": 3, "surprise": 3}, {"sadness": 5, "neutral": 5})  # split crowds
    np.savez(tmp_path / "ferplus_votes.npz", **votes)
    ds = load_dataset(path, labels="ferplus")
    assert ds.paper_rows["test"].tolist() == [False, False] + [True] * 13  # 15 matched, 2 outside the paper's set
    run = load_run(train_one(ds, TrainConfig(model="compact", epochs=1, batch_size=8, patience=0, precision="float32",
                                             augment=True, augment_mode="photo"), tmp_path / "runs"))
    assert run.metrics["class_names"] == list(AFFECTNET_8)
    assert run.metrics["dataset"]["labels"] == "ferplus"
    assert run.metrics["dataset"]["labels_file"]["file"] == "ferplus_votes.npz"
    assert sum(sum(r) for r in run.metrics["confusion_matrix"]) == len(ds.splits["test"][1])
    paper = run.metrics["ferplus_paper"]  # beside the plurality accuracy: the FER+ paper's test set
    assert paper["n_samples"] == 13 and 0 <= paper["accuracy"] <= 1
    # an ensemble of FER+ runs (here one run behind the blur) records it too
    from training.ensemble import build_ensemble_run

    blurred = load_run(build_ensemble_run([run], str(path), tmp_path / "ens", smooth=0.5, echo=lambda *a: None))
    assert blurred.metrics["ferplus_paper"]["n_samples"] == 13


def test_runs_record_which_votes_file_they_read(tmp_path):
    path, _ = _fer2013_like(tmp_path, n=16)
    _write_votes(tmp_path, 16)
    other = tmp_path / "my_votes.npz"
    other.write_bytes((tmp_path / "ferplus_votes.npz").read_bytes())
    a = load_dataset(path, labels="ferplus").describe()["labels_file"]
    b = load_dataset(path, labels=str(other)).describe()["labels_file"]
    assert a["file"] == "ferplus_votes.npz" and b["file"] == "my_votes.npz"
    assert a["sha256"] == b["sha256"] and len(a["sha256"]) == 16  # the same votes, whatever the name


@pytest.mark.skipif(not (SHARED / "ferplus_votes.npz").is_file(),
                    reason="FER+ votes not here (../shared/datasets/fer2013/ferplus_votes.npz)")
def test_real_ferplus_rows():
    ds = load_dataset(SHARED / "fer2013.npz", labels="ferplus")
    sizes = {s: len(y) for s, (_, y) in ds.splits.items()}
    assert sizes == {"train": 24691, "validation": 3407, "test": 3389}
    assert np.bincount(ds.splits["test"][1], minlength=8)[0] == 1226  # neutral, the crowd's commonest answer
    with np.load(SHARED / "ferplus_votes.npz") as npz:
        keep, label = paper_majority(npz["test_votes"])
    assert int(keep.sum()) == 3001 and np.bincount(label, minlength=8)[0] == 1059
