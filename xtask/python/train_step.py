"""PyTorch side of the training-step parity check.

torchvision's resnet18 (10 classes) with random weights and randomised BatchNorm statistics, in
training mode (BatchNorm on batch statistics, running statistics updated with momentum 0.1),
takes two steps of SGD (lr 0.1, momentum 0.9, weight decay 1e-4) on one fixed batch with
cross-entropy. The second step exercises the momentum buffer. Saved into OUT/:
  state_dict.pth            the weights before the first step
  input.f32, targets.i64    the batch (raw little-endian, C order)
  <key>.f32                 selected tensors after the two steps (first conv, a middle BatchNorm's
                            weight, bias and running statistics, fc)
  <bn>.running_var.biased.f32  that BatchNorm's running_var as an implementation that updates it
                            with the biased batch variance (Burn's BatchNorm) computes it:
                            PyTorch uses the unbiased one, n / (n - 1) times larger, n being the
                            values per channel (batch x height x width)
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

FORMAT = 2
BATCH = (8, 3, 64, 64)
NUM_CLASSES = 10
SETTINGS = {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4, "steps": 2}
KEYS = [
    "conv1.weight",
    "layer2.1.bn1.weight",
    "layer2.1.bn1.bias",
    "layer2.1.bn1.running_mean",
    "layer2.1.bn1.running_var",
    "layer4.1.conv2.weight",
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


def finish_case(out, name, batch, losses, state, keys, extra=None):
    """Saves the selected tensors after the steps (`extra` may add to their entries) and the
    manifest."""
    tensors = {}
    for key in keys:
        value = state[key].detach().float()
        file = key + ".f32"
        value.numpy().astype("<f4").tofile(out / file)
        tensors[key] = {"file": file, "shape": list(value.shape)}
    if extra is not None:
        extra(tensors)
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
    bn = model.layer2[1].bn1
    per_channel = []
    bn.register_forward_hook(lambda m, inputs, output: per_channel.append(inputs[0].numel() // inputs[0].shape[1]))
    running_var_before = bn.running_var.clone()

    losses = sgd_steps(model, x, y)
    state = model.state_dict()

    def biased_running_var(tensors):
        # Each step adds momentum * var_unbiased; the biased convention adds (n - 1) / n of
        # that. Closed form over the steps: rv = m0 * rv0 + sum_i c_i * u_i with u_i the
        # unbiased batch variances; the biased update replaces u_i by u_i * (n - 1) / n, so,
        # with one n for all steps, rv_biased = m0 * rv0 + (rv - m0 * rv0) * (n - 1) / n.
        assert len(set(per_channel)) == 1, per_channel
        n = per_channel[0]
        m0 = (1 - bn.momentum) ** len(per_channel)
        key = "layer2.1.bn1.running_var"
        rv = state[key].detach()
        biased = m0 * running_var_before + (rv - m0 * running_var_before) * (n - 1) / n
        biased.float().numpy().astype("<f4").tofile(out / (key + ".biased.f32"))
        tensors[key]["biased_file"] = key + ".biased.f32"
        tensors[key]["values_per_channel"] = n

    finish_case(out, "resnet18", BATCH, losses, state, KEYS, biased_running_var)


if __name__ == "__main__":
    main()
