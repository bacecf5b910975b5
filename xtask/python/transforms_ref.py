"""torchvision's eval transforms on real photos, for `cargo xtask parity` to compare with the
zoo's own preprocessing (model_zoo::transforms).

The photos are scikit-image's sample photos, taken from its wheel on PyPI (downloaded once,
without installing it). For each photo and each kind of eval transform of torchvision's ImageNet weights (bilinear
resize 256 or 232, crop 224: ResNet-50 V1 and V2; bilinear 342, crop 299: Inception v3; bicubic
224 and 384 crops: RegNet Y 16GF's SWAG weights), writes into OUT/:
  <photo>.<ext>                     the photo itself
  <photo>-<tag>_raw.f32             Resize(resize, interpolation, antialias) + CenterCrop(crop)
                                    + to float in [0, 1], before normalisation (C, H, W)
  <photo>-<tag>_norm.f32            the weights' own transforms()(image)
  manifest.json

Usage: python transforms_ref.py --out DIR
"""
import argparse
import json
import pathlib
import subprocess
import sys
import tempfile
import zipfile

import torch
import torchvision
from PIL import Image
from torchvision.models import Inception_V3_Weights, RegNet_Y_16GF_Weights, ResNet50_Weights
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as F

from reference import is_current

SKIMAGE = "scikit-image==0.26.0"
PHOTOS = ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
          "camera.png"]
FORMAT = 2


def fetch_photos(out):
    missing = [p for p in PHOTOS if not (out / p).exists()]
    if not missing:
        return
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "--only-binary=:all:", "-d", tmp, SKIMAGE], check=True)
        wheel = next(pathlib.Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as z:
            for photo in missing:
                (out / photo).write_bytes(z.read(f"skimage/data/{photo}"))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=pathlib.Path, required=True)
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / "manifest.json"
    if is_current(manifest_path, FORMAT, "torchvision", torchvision.__version__):
        return
    fetch_photos(out)
    weights = [
        ResNet50_Weights.IMAGENET1K_V1,
        ResNet50_Weights.IMAGENET1K_V2,
        Inception_V3_Weights.IMAGENET1K_V1,
        RegNet_Y_16GF_Weights.IMAGENET1K_SWAG_LINEAR_V1,
        RegNet_Y_16GF_Weights.IMAGENET1K_SWAG_E2E_V1,
    ]
    cases = []
    for photo in PHOTOS:
        image = Image.open(out / photo).convert("RGB")
        stem = photo.rsplit(".", 1)[0]
        for w in weights:
            t = w.transforms()
            resize, crop = t.resize_size[0], t.crop_size[0]
            interpolation = t.interpolation
            tag = f"{resize}-{crop}-{interpolation.value}"
            raw = F.resize(image, [resize], interpolation=interpolation, antialias=True)
            raw = F.pil_to_tensor(F.center_crop(raw, [crop])).float() / 255
            norm = t(image)
            assert torch.allclose(F.normalize(raw, t.mean, t.std), norm, atol=1e-5)
            raw.numpy().astype("<f4").tofile(out / f"{stem}-{tag}_raw.f32")
            norm.numpy().astype("<f4").tofile(out / f"{stem}-{tag}_norm.f32")
            cases.append({
                "photo": photo,
                "size": list(image.size),
                "resize": resize,
                "crop": crop,
                "interpolation": interpolation.value,
                "raw": f"{stem}-{tag}_raw.f32",
                "norm": f"{stem}-{tag}_norm.f32",
            })
    manifest = {"format": FORMAT, "torchvision": torchvision.__version__, "source": SKIMAGE,
                "cases": cases}
    manifest_path.write_text(json.dumps(manifest, indent=1))


if __name__ == "__main__":
    main()
