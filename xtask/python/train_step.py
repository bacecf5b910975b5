"""PyTorch side of the training-step parity check.

torchvision's resnet18 (10 classes) with random weights and randomised BatchNorm statistics, in
training mode (BatchNorm on batch statistics, running statistics updated with momentum 0.1),
takes two steps of SGD (lr 0.1, momentum 0.9, weight decay 1e-4) on one fixed batch with
cross-entropy. The second step exercises the momentum buffer. Saved into OUT/:
  state_dict.pth            the weights before the first step
  input.f32, targets.i64    the batch (raw little-endian, C order)
  <key>.f32                 selected tensors after the two steps (first conv, a middle BatchNorm's
                            weight, bias and running statistics, the stem's and the last
                            BatchNorm's running statistics, fc). PyTorch's running_var takes the
                            unbiased batch variance, n / (n - 1) times the biased one, n being
                            the values per channel (batch x height x width): 8192 in the stem,
                            32 in layer4 at 64x64, where the factor is 3%
  manifest.json             losses of both steps, shapes, settings, versions

A second case, in OUT/vit_b_32/, does the same for torchvision's vit_b_32 built for 64x64
inputs (4 patches and the class token; dropout and stochastic depth are 0 in the builder), its
constant-initialised parameters (zero head, class token and biases, LayerNorm ones) drawn at
random as for the forward references, so that every layer gets a gradient. It checks attention,
LayerNorm and GELU backward, with no BatchNorm.

Usage: python train_step.py --out DIR
"""
import argparse
import json
import pathlib

import torch
import torchvision
from torch import nn

from reference import is_current, randomise_batchnorm, randomise_constants

FORMAT = 3
BATCH = (8, 3, 64, 64)
NUM_CLASSES = 10
SETTINGS = {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4, "steps": 2}
KEYS = [
    "conv1.weight",
    "bn1.running_var",
    "layer2.1.bn1.weight",
    "layer2.1.bn1.bias",
    "layer2.1.bn1.running_mean",
    "layer2.1.bn1.running_var",
    "layer4.1.conv2.weight",
    "layer4.1.bn2.running_mean",
    "layer4.1.bn2.running_var",
    "fc.weight",
    "fc.bias",
]


VIT_BATCH = (8, 3, 64, 64)
VIT_KEYS = [
    "conv_proj.weight",
    "class_token",
    "encoder.pos_embedding",
    "encoder.layers.encoder_layer_0.self_attention.in_proj_weight",
    "encoder.layers.encoder_layer_0.self_attention.in_proj_bias",
    "encoder.layers.encoder_layer_5.ln_1.weight",
    "encoder.layers.encoder_layer_11.self_attention.out_proj.weight",
    "encoder.layers.encoder_layer_11.mlp.3.weight",
    "encoder.ln.bias",
    "heads.head.weight",
    "heads.head.bias",
]


def sgd_steps(model, x, y):
    """The steps of SETTINGS in training mode; the losses."""
    model.train()
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=SETTINGS["lr"],
        momentum=SETTINGS["momentum"],
        weight_decay=SETTINGS["weight_decay"],
    )
    losses = []
    for _ in range(SETTINGS["steps"]):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def start_case(out, build, randomise, seed, batch):
    """Builds the model (torch seed 0), randomises it with a generator seeded `seed`, and saves
    its state_dict and a random batch; returns the model and the batch."""
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(seed)
    model = build()
    with torch.no_grad():
        randomise(model, generator)
    torch.save(model.state_dict(), out / "state_dict.pth")
    x = torch.randn(batch, generator=generator)
    y = torch.randint(0, NUM_CLASSES, (batch[0],), generator=generator)
    x.numpy().astype("<f4").tofile(out / "input.f32")
    y.numpy().astype("<i8").tofile(out / "targets.i64")
    return model, x, y


def finish_case(out, name, batch, losses, state, keys):
    """Saves the selected tensors after the steps and the manifest."""
    tensors = {}
    for key in keys:
        value = state[key].detach().float()
        file = key + ".f32"
        value.numpy().astype("<f4").tofile(out / file)
        tensors[key] = {"file": file, "shape": list(value.shape)}
    manifest = {
        "format": FORMAT,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "model": name,
        "num_classes": NUM_CLASSES,
        "input_shape": list(batch),
        "settings": SETTINGS,
        "losses": losses,
        "tensors": tensors,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    print(f"train step reference: {name} losses {losses} in {out}")


def vit_case(out):
    """Two SGD steps of vit_b_32 at 64x64, as the resnet18 case."""
    if is_current(out / "manifest.json", FORMAT):
        return
    model, x, y = start_case(
        out,
        lambda: torchvision.models.vit_b_32(image_size=VIT_BATCH[-1], num_classes=NUM_CLASSES),
        randomise_constants,
        4321,
        VIT_BATCH,
    )
    losses = sgd_steps(model, x, y)
    finish_case(out, "vit_b_32", VIT_BATCH, losses, model.state_dict(), VIT_KEYS)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True, type=pathlib.Path)
    args = parser.parse_args()
    vit_case(args.out / "vit_b_32")
    resnet_case(args.out)


def resnet_case(out):
    if is_current(out / "manifest.json", FORMAT):
        return
    model, x, y = start_case(
        out,
        lambda: torchvision.models.resnet18(num_classes=NUM_CLASSES),
        randomise_batchnorm,
        1234,
        BATCH,
    )
    losses = sgd_steps(model, x, y)
    finish_case(out, "resnet18", BATCH, losses, model.state_dict(), KEYS)


if __name__ == "__main__":
    main()
