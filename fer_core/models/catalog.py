"""The zoo: every model FER Studio can train, as data (no Keras import; builders load on use).

Registration order is listing order: the seed's five first (``--models all``),
then the compact family. Each builder lives beside its architecture
(:mod:`.baseline`, :mod:`.transfer`, :mod:`.compact`, :mod:`.from_compact`).
"""

from __future__ import annotations

from dataclasses import replace

from .registry import ModelSpec, register_model

_PKG = __name__.rpartition(".")[0]  # fer_core.models

register_model(ModelSpec(
    name="baseline",
    description="Seed baseline CNN: Conv64-MaxPool4-Conv32-MaxPool2-Conv16-Dense64-Dropout0.2, from scratch",
    builder=f"{_PKG}.baseline:build_baseline", kind="scratch", default_image_size=128, channels=3,
    gradcam_layer="conv3", min_image_size=36,  # below 36 px the third conv has nothing left to see
))


def _transfer(name, backbone, description, gradcam_layer, weights_file, min_size):
    """A frozen ``keras.applications`` backbone (``backbone``: its class name) + the BN-Dropout-softmax head."""
    register_model(ModelSpec(
        name=name, description=description, builder=f"{_PKG}.transfer:build_transfer", kind="transfer",
        default_image_size=128, channels=3, gradcam_layer=gradcam_layer,
        min_image_size=min_size, backbone=backbone, weights_file=weights_file,
    ))


_transfer("resnet50v2", "ResNet50V2", "ResNet50V2 ImageNet backbone (frozen, 23.6M) + BN-Dropout-softmax head",
          "post_relu", "resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5", 32)
_transfer("inception_resnet_v2", "InceptionResNetV2", "InceptionResNetV2 ImageNet backbone (frozen, 54.3M) + BN-Dropout-softmax head",
          "conv_7b_ac", "inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5", 75)
_transfer("inception_v3", "InceptionV3", "InceptionV3 ImageNet backbone (frozen, 21.8M) + BN-Dropout-softmax head",
          "mixed10", "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5", 75)
_transfer("vgg19", "VGG19", "VGG19 ImageNet backbone (frozen, 20.0M) + BN-Dropout-softmax head",
          "block5_conv4", "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5", 32)

_compact = register_model(ModelSpec(
    name="compact",
    description="Compact FER CNN (VGG-style, 48 px gray, BN, GAP head), from scratch; bundled FER2013 model",
    builder=f"{_PKG}.compact:build_compact", kind="scratch", default_image_size=48, channels=1,
    gradcam_layer="block4b_relu", min_image_size=32, in_all=False, supports_tta=True,
))

register_model(replace(  # compact in every field but its width
    _compact, name="compact_wide",
    description="compact at twice the width (64-512 filters, 4× the compute); "
                "--init-from a compact run widens it (Net2Net, same function at the start)",
    builder=f"{_PKG}.compact:build_compact_wide",
))

register_model(ModelSpec(
    name="fer_compact",
    description="compact's FER2013 trunk (bundled models/compact, or --init-from RUN) + a new head for any class "
                "set; 48 px gray, trunk frozen (--fine-tune-layers K: top K of its 8 convs)",
    builder=f"{_PKG}.from_compact:build_fer_compact", kind="transfer", default_image_size=48, channels=1,
    gradcam_layer="block4b_relu", min_image_size=32, in_all=False, backbone="compact", trunk_from_run=True,
))
