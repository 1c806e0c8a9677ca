"""Model registry, the baseline's exact stack, transfer models, weights handling."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from fer_core import ModelError, WeightsUnavailableError  # noqa: E402
from fer_core.models import create_model, get_spec, list_models, parse_model_list, split_transfer_model, unfreeze_top  # noqa: E402
from fer_core.models import weights as weights_mod  # noqa: E402

TRANSFER = ["resnet50v2", "inception_resnet_v2", "inception_v3", "vgg19"]


def test_registry_lists_the_five_in_seed_order_and_rejects_unknown():
    assert list_models(only_all=True) == ["baseline", *TRANSFER]
    assert "compact" in list_models()
    assert parse_model_list("all") == ["baseline", *TRANSFER]
    assert parse_model_list("vgg19, baseline,vgg19") == ["vgg19", "baseline"]
    with pytest.raises(ModelError, match="unknown model 'resnet'.*known models: baseline"):
        parse_model_list("resnet")


def test_the_zoo_lists_and_validates_without_importing_keras():
    """The CLI and the app list models and reject a mistyped one before TensorFlow's ~6 s import."""
    import subprocess
    import sys

    code = ("import sys; from fer_core.models import get_spec, list_models, parse_model_list\n"
            "names = parse_model_list('all') + ['compact_wide']\n"
            "print(len(list_models()), get_spec('compact_wide').supports_tta, 'keras' in sys.modules, "
            "'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == [str(len(list_models())), "True", "False", "False"]


def test_every_registered_builder_resolves_and_compact_wide_is_twice_compact():
    for name in list_models():
        assert callable(get_spec(name).build_function()), name
    narrow, wide = create_model("compact", 7), create_model("compact_wide", 7)
    assert wide.get_layer("block1a_conv").filters == 2 * narrow.get_layer("block1a_conv").filters == 64
    assert create_model("compact_wide", 7, tta_flip=True).get_layer("tta_flip") is not None


def test_baseline_is_exactly_the_seed_stack():
    m = create_model("baseline", 8)
    kinds = [(type(l).__name__, getattr(l, "filters", None) or getattr(l, "units", None) or getattr(l, "pool_size", None)
              or getattr(l, "rate", None)) for l in m.layers[2:]]  # after Input and Rescaling
    assert kinds == [("Conv2D", 64), ("MaxPooling2D", (4, 4)), ("Conv2D", 32), ("MaxPooling2D", (2, 2)),
                     ("Conv2D", 16), ("Flatten", None), ("Dense", 64), ("Dropout", 0.2), ("Dense", 8)]
    assert m.input_shape == (None, 128, 128, 3)
    assert m.layers[-1].activation.__name__ == "softmax"
    probs = np.asarray(m(np.full((2, 128, 128, 3), 255, np.float32)))
    assert probs.shape == (2, 8) and np.allclose(probs.sum(1), 1, atol=1e-5)


@pytest.mark.parametrize("name", TRANSFER)
def test_transfer_models_build_frozen_with_head(name):
    size = 75
    m = create_model(name, 7, image_size=size, weights="none")
    assert m.input_shape == (None, size, size, 3)
    assert [l.name for l in m.layers[-3:]] == ["head_bn", "head_dropout", "head_dense"]
    trainable = {w.path.split("/")[0] for w in m.trainable_weights}
    assert trainable == {"head_bn", "head_dense"}  # backbone frozen
    m.get_layer(get_spec(name).gradcam_layer)  # Grad-CAM layer exists in the flat graph
    feats, head = split_transfer_model(m)
    x = np.random.default_rng(0).integers(0, 256, (2, size, size, 3)).astype(np.float32)
    full = np.asarray(m(x, training=False))
    via_head = np.asarray(head(feats(x, training=False), training=False))
    assert full.shape == (2, 7) and np.allclose(full, via_head, atol=1e-5)


def test_fine_tune_unfreezes_top_layers_but_not_batchnorm():
    m = create_model("resnet50v2", 3, image_size=32, weights="none")
    n = unfreeze_top(m, 5)
    assert n == 5
    unfrozen = [l for l in m.layers if l.trainable and l.weights and not l.name.startswith("head_")]
    assert len(unfrozen) == 5
    assert not any(isinstance(l, keras.layers.BatchNormalization) for l in unfrozen)


def test_weights_file_round_trip(tmp_path):
    a = create_model("vgg19", 3, image_size=32, weights="none")
    bb = keras.Model(a.inputs, a.get_layer("head_bn").input)
    path = tmp_path / "vgg19_local.weights.h5"
    # Keras applications load a plain weights file into the backbone they build.
    backbone_only = keras.applications.VGG19(include_top=False, weights=None, input_shape=(32, 32, 3), pooling="avg")
    backbone_only.set_weights([np.asarray(w) for w in bb.weights])
    backbone_only.save_weights(path)
    b = create_model("vgg19", 3, image_size=32, weights=str(path))
    x = np.random.default_rng(1).integers(0, 256, (2, 32, 32, 3)).astype(np.float32)
    fa = np.asarray(split_transfer_model(a)[0](x))
    fb = np.asarray(split_transfer_model(b)[0](x))
    assert np.allclose(fa, fb, atol=1e-4)
    c = create_model("vgg19", 3, image_size=32, weights="none")
    assert not np.allclose(fa, np.asarray(split_transfer_model(c)[0](x)), atol=1e-4)


def test_missing_or_wrong_weights_file(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        create_model("vgg19", 3, image_size=32, weights=str(tmp_path / "nope.h5"))
    bad = tmp_path / "bad.weights.h5"
    bad.write_bytes(b"not hdf5")
    with pytest.raises(ModelError, match="cannot load weights"):
        create_model("vgg19", 3, image_size=32, weights=str(bad))


def test_imagenet_offline_fails_fast_with_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(weights_mod, "_online", lambda timeout=3.0: False)
    with pytest.raises(WeightsUnavailableError) as err:
        create_model("resnet50v2", 7, image_size=32, weights="imagenet")
    msg = str(err.value)
    assert "resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5" in msg
    assert str(tmp_path / "keras" / "models") in msg and "KERAS_HOME" in msg
    assert "--weights none" in msg and "--weights PATH" in msg and "\n" not in msg


def test_imagenet_uses_the_cache_when_present(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / get_spec("vgg19").weights_file).write_bytes(b"")
    monkeypatch.setattr(weights_mod, "_online", lambda timeout=3.0: False)
    assert weights_mod.resolve_weights("vgg19", "imagenet", get_spec("vgg19").weights_file) == "imagenet"


def test_size_and_class_checks():
    with pytest.raises(ModelError, match="below its minimum of 75"):
        create_model("inception_v3", 7, image_size=48, weights="none")
    with pytest.raises(ModelError, match="at least 2 classes"):
        create_model("baseline", 1)


def test_compact_model_is_small_gray_and_fast_to_build():
    m = create_model("compact", 7)
    assert m.input_shape == (None, 48, 48, 1)
    assert m.count_params() < 2_500_000  # ≤ 10 MB of float32 weights
    m.get_layer(get_spec("compact").gradcam_layer)


def test_compact_mirror_tta_averages_the_face_and_its_mirror_with_the_same_weights():
    from fer_core.inference.gradcam import gradcam

    plain = create_model("compact", 7)
    tta = create_model("compact", 7, tta_flip=True)
    tta.set_weights(plain.get_weights())  # the two TTA layers carry no weights
    x = np.random.default_rng(0).integers(0, 256, (3, 48, 48, 1)).astype(np.float32)
    expected = (np.asarray(plain(x)) + np.asarray(plain(x[:, :, ::-1]))) / 2
    got = np.asarray(tta(x))
    assert got.shape == (3, 7) and np.allclose(got, expected, atol=1e-5)
    heat = gradcam(tta, get_spec("compact").gradcam_layer, x[0].astype(np.uint8), int(got[0].argmax()))
    assert heat.shape == (48, 48) and 0 <= heat.min() and heat.max() <= 1
    with pytest.raises(ModelError, match="mirror test-time augmentation is not available"):
        create_model("baseline", 7, tta_flip=True)


@pytest.mark.parametrize("sigma", [0.5, 0.7, 1.3])
def test_gaussian_smooth_is_scipys_blur_keeps_flat_images_and_round_trips(sigma, tmp_path):
    """The ensemble's input blur: SciPy's Gaussian (edges repeated), no drift in brightness, saved safely."""
    from scipy.ndimage import gaussian_filter

    from fer_core.models.layers import GaussianSmooth

    layer = GaussianSmooth(sigma)
    x = np.random.default_rng(0).uniform(0, 255, (2, 48, 40, 3)).astype(np.float32)  # non-square, RGB
    want = gaussian_filter(x, sigma=(0, sigma, sigma, 0), mode="nearest", truncate=layer.radius / sigma)
    got = np.asarray(layer(x))
    assert got.shape == x.shape and np.max(np.abs(got - want)) < 1e-3
    flat = np.full((1, 48, 48, 1), 200.0, np.float32)
    assert np.allclose(np.asarray(layer(flat)), 200.0, atol=1e-3)
    inputs = keras.Input((48, 48, 1))
    model = keras.Model(inputs, GaussianSmooth(sigma)(inputs))
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert np.array_equal(np.asarray(again(flat)), np.asarray(model(flat)))
    with pytest.raises(ValueError, match="sigma must be > 0"):
        GaussianSmooth(0)
