"""torchvision.transforms.v2's training augmentations on uint8 images, for `cargo xtask parity`
to compare with the zoo's own (zoo_trainer::augment).

Inputs are cut from one of scikit-image's photos (fetched by transforms_ref.py into PHOTOS):
a 97x64 crop (odd width, not square), a 64x64 square (torchvision turns squares by quarter
turns without resampling), and a dim, low-contrast copy of the crop (for AutoContrast and
Equalize). Writes into OUT/:
  <image>.u8                 the input, HWC uint8
  case_<n>.u8 / .f32         each output: an operation of the automatic augmentations at a fixed
                             magnitude (through `_AutoAugmentBase._apply_image_or_video_transform`,
                             the function the policies call), nearest and bilinear; the hue
                             adjustment of ColorJitter; AugMix's forward with its random draws
                             recorded; RandomErasing's `erase`; MixUp and CutMix on a batch with
                             their drawn parameters recorded
  manifest.json              the cases, and the augmentation spaces (operations, magnitudes for
                             the crop's size, AutoAugment's sub-policies) as torchvision defines them

Usage: python augment_ref.py --out DIR --photos TRANSFORMS_DIR
"""
import argparse
import json
import pathlib

import numpy as np
import torch
import torchvision
from PIL import Image
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from reference import is_current
from transforms_ref import fetch_photos

FORMAT = 1
PHOTO = "chelsea.png"


def hwc(t):
    return t.permute(1, 2, 0).contiguous().numpy().astype(np.uint8)


def chw(a):
    return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1).contiguous()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=pathlib.Path, required=True)
    parser.add_argument("--photos", type=pathlib.Path, required=True)
    args = parser.parse_args()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / "manifest.json"
    if is_current(manifest_path, FORMAT, "torchvision", torchvision.__version__):
        return
    fetch_photos(args.photos)
    photo = np.asarray(Image.open(args.photos / PHOTO).convert("RGB"))
    images = {
        "crop": photo[100:164, 150:247],
        "square": photo[60:124, 200:264],
    }
    images["dim"] = (images["crop"].astype(np.float32) * 0.4 + 70).astype(np.uint8)
    for name, a in images.items():
        a = np.ascontiguousarray(a)
        images[name] = a
        a.tofile(out / f"{name}.u8")

    cases = []

    def add(kind, image, output, **fields):
        n = len(cases)
        if output.dtype == torch.uint8:
            path = f"case_{n:03}.u8"
            hwc(output).tofile(out / path)
        else:
            path = f"case_{n:03}.f32"
            output.numpy().astype("<f4").tofile(out / path)
        cases.append({"kind": kind, "image": image, "out": path, **fields})

    apply = v2.TrivialAugmentWide()._apply_image_or_video_transform
    signed = {
        "ShearX": [0.1, -0.3, 0.66, -0.99],
        "ShearY": [0.1, -0.3, 0.66, -0.99],
        "TranslateX": [5.3, -14.9, 32.0, -1.0],
        "TranslateY": [5.3, -14.9, 32.0, -1.0],
        "Rotate": [4.5, -30.0, 90.0, -90.0, 135.0, 180.0],
        "Brightness": [-0.99, -0.4, 0.33, 0.9],
        "Color": [-0.99, -0.4, 0.33, 0.9],
        "Contrast": [-0.99, -0.4, 0.33, 0.9],
        "Sharpness": [-0.99, -0.4, 0.33, 0.9],
        "Posterize": [1, 2, 4, 6, 8],
        "Solarize": [1.0, 0.7333333492279053, 0.5, 0.06666667014360428, 0.0],
    }
    geometric = {"ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate"}
    for image in images:
        x = chw(images[image])
        for op, magnitudes in signed.items():
            for m in magnitudes:
                for interpolation in (["nearest", "bilinear"] if op in geometric else ["nearest"]):
                    y = apply(x, op, float(m), interpolation=v2.InterpolationMode(interpolation),
                              fill={type(x): None})
                    add("op", image, y, op={"op": op, "magnitude": m}, resample=interpolation)
        for op in ["Identity", "AutoContrast", "Equalize", "Invert"]:
            y = apply(x, op, 0.0, interpolation=v2.InterpolationMode.NEAREST, fill={type(x): None})
            add("op", image, y, op={"op": op}, resample="nearest")
        for hue in [-0.5, -0.23, 0.1, 0.4]:
            add("hue", image, F.adjust_hue(x, hue), factor=hue)

    # AugMix's forward, its draws recorded: the Dirichlet weights and each chain's operations.
    for seed, interpolation in [(0, "bilinear"), (1, "bilinear"), (2, "nearest"), (3, "bilinear")]:
        augmix = v2.AugMix(severity=3, interpolation=v2.InterpolationMode(interpolation))
        x = chw(images["crop"]).unsqueeze(0)
        draws, chains = [], []
        sample = augmix._sample_dirichlet
        augmix._sample_dirichlet = lambda p: draws.append(sample(p)) or draws[-1]
        base = augmix._apply_image_or_video_transform

        def record(img, transform_id, magnitude, interpolation, fill):
            if img.data_ptr() == x.data_ptr():
                chains.append([])
            entry = {"op": transform_id}
            if transform_id not in ("AutoContrast", "Equalize"):
                entry["magnitude"] = int(magnitude) if transform_id == "Posterize" else magnitude
            chains[-1].append(entry)
            return base(img, transform_id, magnitude, interpolation, fill)

        augmix._apply_image_or_video_transform = record
        torch.manual_seed(seed)
        y = augmix(x)[0]
        m, w = draws
        weights = [float(m[0, 0])] + [float(v) for v in (w * m[:, 1].reshape(1, -1))[0]]
        add("augmix", "crop", y, weights=weights, chains=chains, resample=interpolation)

    # RandomErasing's erase on a normalised image.
    normalised = F.normalize(chw(images["crop"]).float() / 255, [0.485, 0.456, 0.406],
                             [0.229, 0.224, 0.225])
    for rect in [(3, 7, 20, 31), (0, 0, 64, 1), (50, 90, 14, 7)]:
        add("erase", "crop", F.erase(normalised, *rect, torch.tensor([0.0])[:, None, None]),
            rect=list(rect))

    # MixUp and CutMix on a batch of four, their parameters recorded.
    batch = torch.stack([F.normalize(chw(a).float() / 255, [0.5] * 3, [0.25] * 3)
                         for a in [images["crop"], images["dim"], images["crop"][:, ::-1],
                                   images["dim"][::-1]]])
    labels = torch.tensor([0, 2, 1, 2])
    batch.numpy().astype("<f4").tofile(out / "batch.f32")
    for seed, transform in [(0, v2.MixUp(alpha=0.2, num_classes=3)),
                            (1, v2.CutMix(alpha=1.0, num_classes=3)),
                            (2, v2.CutMix(alpha=1.0, num_classes=3))]:
        params = []
        make = transform.make_params
        transform.make_params = lambda flat: params.append(make(flat)) or params[-1]
        torch.manual_seed(seed)
        mixed, soft = transform(batch, labels)
        p = params[0]
        fields = {"lam": p["lam"]} if "lam" in p else {"box": list(p["box"])}
        soft_path = f"soft_{len(cases):03}.f32"
        soft.numpy().astype("<f4").tofile(out / soft_path)
        add("mix", "batch", mixed, labels=labels.tolist(), classes=3, soft=soft_path, **fields)

    # The augmentation spaces as torchvision defines them, for the crop's size.
    h, w = images["crop"].shape[:2]
    spaces = {}
    for name, cls, bins in [("ta_wide", v2.TrivialAugmentWide, 31), ("ra", v2.RandAugment, 31),
                            ("autoaugment", v2.AutoAugment, 10), ("augmix", v2.AugMix, 10)]:
        space = {}
        for op, (fn, is_signed) in cls._AUGMENTATION_SPACE.items():
            values = fn(bins, h, w)
            space[op] = None if values is None else {
                "values": [float(v) for v in values], "signed": is_signed}
        spaces[name] = {"ops": list(cls._AUGMENTATION_SPACE), "magnitudes": space}
    policies = {p.value: [[list(step) for step in sub] for sub in
                          v2.AutoAugment(policy=p)._policies]
                for p in v2.AutoAugmentPolicy}

    manifest = {"format": FORMAT, "torchvision": torchvision.__version__,
                "images": {k: list(v.shape) for k, v in images.items()},
                "batch": list(batch.shape), "spaces": spaces, "policies": policies,
                "cases": cases}
    manifest_path.write_text(json.dumps(manifest, indent=1))


if __name__ == "__main__":
    main()
