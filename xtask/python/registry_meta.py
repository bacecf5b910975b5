"""Prints, as JSON, torchvision's metadata for the named models: parameter count, GFLOPs and
every pretrained weight descriptor (URL, accuracy, transforms, categories). For the zoo's own
models (zoo_models.py) it measures the same: parameters and GFLOPs of the reference module.
`cargo xtask parity` compares the zoo's registry with it.

Usage: python registry_meta.py MODEL [MODEL ...]
"""
import json
import sys

import torchvision
from torchvision.models import get_model_weights

import zoo_models


def describe(name):
    if name in zoo_models.MODELS:
        return {"source": "zoo", **zoo_models.describe(name)}
    out = describe_torchvision(name)
    if out is not None:
        out["source"] = "torchvision"
        # The size the GFLOPs are given at: the first weights' crop (224 for most; 299 for
        # Inception v3, 384 for regnet_y_128gf's SWAG weights).
        out["image_size"] = out["weights"][0]["crop"] if out["weights"] else 224
        out["num_classes"] = 1000
    return out


def describe_torchvision(name):
    try:
        # Weights without categories (VGG16's IMAGENET1K_FEATURES) have no classifier to
        # describe; the registry leaves them out.
        weights = [w for w in get_model_weights(name) if w.meta.get("categories") is not None]
    except ValueError:
        return None
    if not weights:
        return {"params": None, "gflops": None, "weights": []}
    default = get_model_weights(name).DEFAULT
    first = weights[0].meta
    out = {
        "params": first["num_params"],
        "gflops": first["_ops"],
        "categories": first["categories"],
        "weights": [],
    }
    for w in weights:
        t = w.transforms()
        metrics = w.meta["_metrics"]["ImageNet-1K"]
        out["weights"].append({
            "name": w.name,
            "url": w.url,
            "acc1": metrics["acc@1"],
            "acc5": metrics["acc@5"],
            "file_size_mb": w.meta["_file_size"],
            "default": w == default,
            "num_classes": len(w.meta["categories"]),
            "resize": t.resize_size[0],
            "crop": t.crop_size[0],
            "interpolation": t.interpolation.value,
            "mean": list(t.mean),
            "std": list(t.std),
        })
    return out


def main():
    result = {}
    for name in sys.argv[1:]:
        described = describe(name)
        if described is not None:
            result[name] = described
    result["_torchvision"] = torchvision.__version__
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
