"""PyTorch side of the parity oracle.

For each model: build torchvision's model with random weights, randomise every BatchNorm's
running_mean, running_var, weight and bias, and save into OUT/<model>/
  state_dict.pth                 torch.save(model.state_dict())
  case<i>_input.f32, _logits.f32 raw little-endian float32, C order
  manifest.json                  shapes, torch/torchvision versions, parameter count
Eval-mode logits are computed in float64 and stored as float32, so the reference itself carries
no float32 rounding of its own.

Usage: python reference.py --out DIR MODEL [MODEL ...]
"""
import argparse
import json
import pathlib

import torch
import torchvision
from torch import nn

CASES = [(2, 3, 224, 224), (1, 3, 160, 128)]
FORMAT = 2

# The last BatchNorm of each residual branch (what torchvision's zero_init_residual zeroes).
# Its weight is drawn small so that activations stay O(1) through 100+ blocks: with unit-scale
# weights ResNet-152's logits reach 1e7 and a 1e-4 relative tolerance would hide real errors.
RESIDUAL_LAST_BN = {"BasicBlock": "bn2", "Bottleneck": "bn3"}


def randomise_batchnorm(model, generator):
    residual_last = set()
    for m in model.modules():
        name = RESIDUAL_LAST_BN.get(type(m).__name__)
        if name is not None:
            residual_last.add(getattr(m, name))
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=generator) * 0.2)
            m.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
            scale = 0.2 if m in residual_last else 1.0
            m.weight.data.copy_((torch.rand(n, generator=generator) + 0.5) * scale)
            m.bias.data.copy_(torch.randn(n, generator=generator) * 0.2)


def build(name, seed):
    torch.manual_seed(seed)
    model = torchvision.models.get_model(name, weights=None)
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        randomise_batchnorm(model, generator)
    return model.eval()


def write(out, name, seed):
    folder = out / name
    manifest_path = folder / "manifest.json"
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("format") == FORMAT and manifest.get("torch") == torch.__version__:
            return
    folder.mkdir(parents=True, exist_ok=True)
    model = build(name, seed)
    torch.save(model.state_dict(), folder / "state_dict.pth")
    cases = []
    model64 = model.double()
    for i, shape in enumerate(CASES):
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(seed + 100 + i))
        with torch.no_grad():
            logits = model64(x.double()).float()
        x.numpy().astype("<f4").tofile(folder / f"case{i}_input.f32")
        logits.numpy().astype("<f4").tofile(folder / f"case{i}_logits.f32")
        cases.append({
            "input": f"case{i}_input.f32",
            "input_shape": list(shape),
            "logits": f"case{i}_logits.f32",
            "logits_shape": list(logits.shape),
        })
    manifest = {
        "format": FORMAT,
        "model": name,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "seed": seed,
        "parameters": sum(p.numel() for p in model.parameters()),
        "state_dict": "state_dict.pth",
        "cases": cases,
    }
    manifest_path.write_text(json.dumps(manifest, indent=1))
    print(f"reference written: {name}", flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True, type=pathlib.Path)
    parser.add_argument("models", nargs="+")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    for index, name in enumerate(args.models):
        write(args.out, name, seed=1000 + 17 * sum(map(ord, name)))


if __name__ == "__main__":
    main()
