"""Dataset page (AppTest): split sizes, class distribution, samples per class, leakage across splits."""

import numpy as np

from app_helpers import all_text, data_dir, no_runs, open_page, plotly_figures, with_runs  # noqa: F401


def _npz_with_leak(path, leaks: int = 3):
    rng = np.random.default_rng(1)
    x = {s: rng.integers(0, 255, (n, 48, 48), dtype=np.uint8) for s, n in (("train", 40), ("validation", 10), ("test", 10))}
    y = {s: np.arange(len(v)) % 4 for s, v in x.items()}
    x["test"][:leaks] = x["train"][:leaks]  # the same images in train and test
    np.savez(path, **{f"{s}_images": v for s, v in x.items()}, **{f"{s}_labels": v for s, v in y.items()},
             class_names=np.array(["a", "b", "c", "d"]))


def test_dataset_demo(no_runs):
    at = open_page("dataset")
    at.number_input(key="dataset_demo_per_class").set_value(10).run()
    assert not at.exception and not at.error
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Classes"] == "8" and metrics["Images"] == "80"
    assert (metrics["Train"], metrics["Validation"], metrics["Test"]) == ("56", "16", "8")  # 7 + 2 + 1 per class
    fig = plotly_figures(at, "dataset_distribution")["dataset_distribution"]
    assert [t["name"] for t in fig["data"]] == ["train", "validation", "test"]  # a bar group per split
    assert len(fig["data"][0]["x"]) == 8
    sample_rows = [m.value for m in at.markdown if " images" in m.value and m.value.startswith("**")]
    assert len(sample_rows) == 8  # a row of samples per class
    assert sum(len(i.proto.imgs) for i in at.image) == 8 * 6  # 6 samples per class by default
    assert "No image appears in two splits" in all_text(at)


def test_dataset_under_data_root_reports_leakage(no_runs, data_dir):
    (data_dir / "mine").mkdir()
    _npz_with_leak(data_dir / "mine" / "faces.npz")
    at = open_page("dataset")
    box = at.selectbox(key="dataset_choice")
    option = next(o for o in box.options if o.endswith("mine/faces.npz"))
    box.select_index(box.options.index(option)).run()
    assert not at.exception
    assert "3 image(s) appear in more than one split" in all_text(at)
    leak = next(d.value for d in at.dataframe if "identical images" in d.value.columns)
    assert dict(zip(leak["splits"], leak["identical images"]))["train-test"] == 3
    assert "train #0 = test #0" in " ".join(str(c) for i in at.image for c in i.captions)
    assert "imbalanced" not in all_text(at)


def test_dataset_path_outside_data_root_is_refused(no_runs, data_dir):
    at = open_page("dataset")
    box = at.selectbox(key="dataset_choice")
    box.select_index(len(box.options) - 1).run()  # "Another path under the data root…"
    at.text_input(key="dataset_path_text").input("../../etc").run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "data root" in errors[0] and "\n" not in errors[0], errors
    assert not at.metric  # nothing loaded


def test_dataset_of_existing_runs_is_offered(with_runs):
    at = open_page("dataset")
    box = at.selectbox(key="dataset_choice")
    option = next(o for o in box.options if o.startswith("demo as trained by runs"))
    box.select_index(box.options.index(option)).run()
    assert not at.exception and not at.error
    assert {m.label: m.value for m in at.metric}["Images"] == "48"  # 8 classes × 6 faces, like the runs


def test_dataset_unreadable_file_gives_a_message(no_runs, data_dir):
    (data_dir / "broken.npz").write_bytes(b"not an archive at all")
    at = open_page("dataset")
    box = at.selectbox(key="dataset_choice")
    box.select_index(box.options.index(next(o for o in box.options if o.endswith("broken.npz")))).run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "broken.npz" in errors[0] and "\n" not in errors[0], errors
