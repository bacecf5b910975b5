"""PyTorch side of the segmentation parity check (`cargo xtask parity --segmentation`).

For each of torchvision's six segmentation models: `get_model(name, weights=None,
weights_backbone=None, num_classes=7, aux_loss=True)` (LRASPP without aux, which it does not
have), every BatchNorm's statistics and affine parameters drawn at random (as reference.py does
for the classifiers) and every parameter torchvision initialises to a constant (MobileNetV3's
zero convolution biases) drawn too, saved into OUT/<model>/:
  state_dict.pth                 torch.save(model.state_dict()), aux head included, as the
                                 published files are
  case<i>_input.f32              raw little-endian float32, C order
  case<i>_out.f32, _aux.f32      the eval-mode `out` and `aux` maps, computed in float64
  manifest.json                  shapes, versions, parameter count, and the registry metadata
                                 of the published weights (num_params, _ops, _file_size,
                                 mIoU, pixel accuracy, URL, categories, transform)
Cases: a full one (batch 2, 88x120, non-square; Flex) and a small one (1x3x40x56; every
backend).

Usage: python segmentation_ref.py --out DIR MODEL [MODEL ...]
"""
import argparse
import json
import pathlib
import sys

import torch
import torchvision
from torchvision.models import get_model, get_model_weights

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from reference import randomise_batchnorm, randomise_constants  # noqa: E402

FORMAT = 1
NUM_CLASSES = 7
CASES = [("full", (2, 3, 88, 120)), ("small", (1, 3, 40, 56))]


def metadata(name):
    weights = list(get_model_weights(name))
    return [
        {
            "name": w.name,
            "url": w.url,
            "num_params": w.meta["num_params"],
            "gflops": w.meta["_ops"],
            "file_size_mb": w.meta["_file_size"],
            "miou": w.meta["_metrics"]["COCO-val2017-VOC-labels"]["miou"],
            "pixel_acc": w.meta["_metrics"]["COCO-val2017-VOC-labels"]["pixel_acc"],
            "categories": w.meta["categories"],
            "resize": list(w.transforms().resize_size),
            "mean": list(w.transforms().mean),
            "std": list(w.transforms().std),
            "default": w == get_model_weights(name).DEFAULT,
        }
        for w in weights
    ]


def write(out, name, seed):
    folder = out / name
    manifest_path = folder / "manifest.json"
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("format") == FORMAT and manifest.get("torch") == torch.__version__:
            return
    folder.mkdir(parents=True, exist_ok=True)
    aux = not name.startswith("lraspp")
    torch.manual_seed(seed)
    model = get_model(name, weights=None, weights_backbone=None, num_classes=NUM_CLASSES,
                      aux_loss=aux or None)
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        randomise_batchnorm(model, generator)
        randomise_constants(model, generator)
    for key, p in model.named_parameters():
        flat = p.detach().reshape(-1)
        assert flat.numel() == 1 or not bool((flat == flat[0]).all()), f"{name}: {key} constant"
    model.eval()
    torch.save(model.state_dict(), folder / "state_dict.pth")
    model64 = model.double()
    cases = []
    for i, (role, shape) in enumerate(CASES):
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(seed + 100 + i))
        with torch.no_grad():
            result = model64(x.double())
        x.numpy().astype("<f4").tofile(folder / f"case{i}_input.f32")
        case = {"role": role, "input": f"case{i}_input.f32", "input_shape": list(shape)}
        for head in ("out", "aux"):
            if head in result:
                y = result[head].float()
                y.numpy().astype("<f4").tofile(folder / f"case{i}_{head}.f32")
                case[head] = f"case{i}_{head}.f32"
                case[f"{head}_shape"] = list(y.shape)
        cases.append(case)
    manifest = {
        "format": FORMAT,
        "model": name,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "seed": seed,
        "num_classes": NUM_CLASSES,
        "aux_loss": aux,
        "parameters": sum(p.numel() for p in model.parameters()),
        "state_dict": "state_dict.pth",
        "cases": cases,
        "weights": metadata(name),
    }
    manifest_path.write_text(json.dumps(manifest, indent=1))
    print(f"reference written: {name}", flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True, type=pathlib.Path)
    parser.add_argument("models", nargs="+")
    args = parser.parse_args()
    for name in args.models:
        write(args.out, name, seed=2000 + 17 * sum(map(ord, name)))


if __name__ == "__main__":
    main()
