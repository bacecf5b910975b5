"""torchvision's eval transforms on real photos, for `cargo xtask parity` to compare with the
zoo's own preprocessing (model_zoo::transforms).

The photos are scikit-image's sample photos, taken from its wheel on PyPI (downloaded once,
without installing it). For each photo and each resize used by torchvision's ImageNet weights
(256 for V1, 232 for V2), writes into OUT/:
  <photo>.<ext>                     the photo itself
  <photo>-<resize>_raw.f32          Resize(resize, bilinear, antialias) + CenterCrop(224) +
                                    to float in [0, 1], before normalisation (C, H, W)
  <photo>-<resize>_norm.f32         ResNet50_Weights.IMAGENET1K_V{1,2}.transforms()(image)
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
from torchvision.models import ResNet50_Weights
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as F

from reference import is_current

SKIMAGE = "scikit-image==0.26.0"
PHOTOS = ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
          "camera.png"]
FORMAT = 1


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
    weights = {256: ResNet50_Weights.IMAGENET1K_V1, 232: ResNet50_Weights.IMAGENET1K_V2}
    cases = []
    for photo in PHOTOS:
        image = Image.open(out / photo).convert("RGB")
        stem = photo.rsplit(".", 1)[0]
        for resize, w in weights.items():
            t = w.transforms()
            assert t.resize_size == [resize] and t.crop_size == [224]
            raw = F.resize(image, [resize], interpolation=InterpolationMode.BILINEAR,
                           antialias=True)
            raw = F.pil_to_tensor(F.center_crop(raw, [224])).float() / 255
            norm = t(image)
            assert torch.allclose(F.normalize(raw, t.mean, t.std), norm, atol=1e-5)
            raw.numpy().astype("<f4").tofile(out / f"{stem}-{resize}_raw.f32")
            norm.numpy().astype("<f4").tofile(out / f"{stem}-{resize}_norm.f32")
            cases.append({
                "photo": photo,
                "size": list(image.size),
                "resize": resize,
                "crop": 224,
                "raw": f"{stem}-{resize}_raw.f32",
                "norm": f"{stem}-{resize}_norm.f32",
            })
    manifest = {"format": FORMAT, "torchvision": torchvision.__version__, "source": SKIMAGE,
                "cases": cases}
    manifest_path.write_text(json.dumps(manifest, indent=1))


if __name__ == "__main__":
    main()
