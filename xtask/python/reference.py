"""PyTorch side of the parity oracle.

For each model: build torchvision's model (or, for the zoo's own models, its reference module in
zoo_models.py) with random weights, randomise every BatchNorm's
running_mean, running_var, weight and bias, and save into OUT/<model>/
  state_dict.pth                 torch.save(model.state_dict())
  case<i>_input.f32, _logits.f32 raw little-endian float32, C order
  manifest.json                  shapes, torch/torchvision versions, parameter count
GoogLeNet is saved as torchvision's weight file is, aux heads included; its logits are those of
the model torchvision's builder returns (aux heads dropped, inputs transformed), and
case<i>_aux1.f32 / _aux2.f32 hold the aux heads' training-mode outputs (BatchNorm and dropout
in eval mode) for the model built with them.
Eval-mode logits are computed in float64 and stored as float32, so the reference itself carries
no float32 rounding of its own.

Each model also gets a "small" case, one image of the size given after the model's name
(`resnet50:64x48`, chosen by `cargo xtask parity` near the model's minimum input): the slow
backends (NdArray, and wgpu on a software Vulkan) are checked on it, Flex on the full-size cases.

DenseNet is saved with the old dense-layer keys of torchvision's published files
(`denselayer1.norm.1.weight`), and ViT with the old MLP keys (`mlp.linear_1.weight`), which
torchvision renames when it loads them.

ViT and MaxViT take one input size: 224x224 as torchvision builds them without weights, so
their full-size case is the first one only. MaxViT's small case is 224x224 too (its smallest
input). ViT's is 2x2 patches (32x32 for B/16), from the model torchvision's
`interpolate_embeddings` makes for that size out of the same weights: the zoo's model is
resized the same way (`for_input_size`), so that the slow backends check every weight of the
encoder on 5 tokens instead of 197.

ConvNeXt, ViT, Swin and MaxViT have their constant-initialised parameters (LayerNorm ones, zero
biases and class token, layer scales of 1e-6, ViT's zero head) drawn at random too.

`mnasnet0_5` is saved as torchvision's published file is: with the first version's stem
(32/32/16 channels) and state_dict version 1, which torchvision's `_load_from_state_dict` turns
back into that stem; the logits are those of the model torchvision loads from it.

GoogLeNet and Inception v3 also get the models a PyTorch user trains from scratch,
`get_model(name, weights=None, num_classes=N)` with and without `aux_logits` (their builders
set `transform_input=True` only when weights are given): none_<variant>.pth and
case<i>_none_<variant>.f32. torchvision's own initialisation (`init_weights=True`, weights of
std 0.01 to 0.1) lets almost nothing of the input reach the logits, which would hide a wrong
input transform: every convolution and linear weight is drawn again with variance 2 / fan-in
(1 / fan-in for the classifiers), and the script checks that the input transform moves the
logits by a tenth of their scale at least.

Feature maps: given `--features FILE` (JSON: model -> the module paths of the Rust model's
`feature_info()`), the first full-size case and the small case also get
case<i>_feat<k>.f32, the outputs of those modules from torchvision's
`create_feature_extractor` on the same model and input, in float64 stored as float32. The
extractor also returns the model's output, which must equal the stored logits (so the maps come
from the model the logits did). Swin's channels-last stage outputs are permuted to NCHW, and
ViT's encoder layers' tokens (class token dropped) laid out on the patch grid, as timm's
`output_fmt='NCHW'`. A manifest without maps, or with maps of other modules, gets them added
without the rest being written again.

Usage: python reference.py --out DIR [--features FILE] MODEL[:HxW] [MODEL[:HxW] ...]
"""
import argparse
import os
import sys
import traceback
import json
import pathlib
import re
from collections import OrderedDict

import numpy

import torch
import torchvision
from torch import nn

import zoo_models

CASES = [(2, 3, 224, 224), (1, 3, 160, 128)]
# The 32x32 models: their design size, and a larger, non-square one.
CIFAR_CASES = [(2, 3, 32, 32), (1, 3, 48, 40)]
FORMAT = 3
# Of the feature maps, which are added to a manifest of FORMAT without writing the rest again.
FEATURES_FORMAT = 1

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


# Families whose torchvision initialisation leaves parameters constant (LayerNorm ones, zero
# biases and class token, ConvNeXt's layer_scale of 1e-6, ViT's zero head), which would let a
# wrong bias or a skipped block pass unseen: their constant parameters are drawn at random.
RANDOMISE_CONSTANTS = ("convnext", "vit_", "swin", "maxvit")


def randomise_constants(model, generator):
    for key, p in model.named_parameters():
        flat = p.detach().reshape(-1)
        if flat.numel() > 1 and not bool((flat == flat[0]).all()):
            continue
        shape = p.shape
        if key.endswith("layer_scale"):
            value = torch.rand(shape, generator=generator) * 0.3 + 0.1
        elif bool((flat == 1).all()):
            value = torch.rand(shape, generator=generator) + 0.5
        elif p.dim() >= 2:
            fan_in = max(1, p[0].numel()) if p.dim() >= 2 and p.shape[0] > 1 else p.shape[-1]
            value = torch.randn(shape, generator=generator) / fan_in ** 0.5
        else:
            value = torch.randn(shape, generator=generator) * 0.2
        p.data.copy_(value)


def construct(name):
    if name in zoo_models.MODELS:
        make, num_classes, _ = zoo_models.MODELS[name]
        return make(num_classes=num_classes)
    if name == "googlenet":
        # What torchvision's builder makes before loading the pretrained file.
        return torchvision.models.GoogLeNet(aux_logits=True, transform_input=True, init_weights=True)
    if name == "inception_v3":
        # What torchvision's builder makes before loading the pretrained file.
        return torchvision.models.Inception3(aux_logits=True, transform_input=True, init_weights=False)
    return torchvision.models.get_model(name, weights=None)


# Models that take one input size, 224x224 as torchvision builds them without weights.
FIXED_SIZE = ("vit_", "maxvit")


VIT_PATCH = {"vit_b_16": 16, "vit_b_32": 32, "vit_l_16": 16, "vit_l_32": 32, "vit_h_14": 14}


def vit_resized(name, model, side):
    """torchvision's ViT for side x side inputs, its position embedding interpolated from
    `model`'s by torchvision's `interpolate_embeddings`, in `model`'s precision."""
    from torchvision.models.vision_transformer import interpolate_embeddings

    state = interpolate_embeddings(side, VIT_PATCH[name], model.state_dict())
    resized = torchvision.models.get_model(name, weights=None, image_size=side).to(next(model.parameters()).dtype)
    resized.load_state_dict(state)
    return resized.eval()


def cases(name):
    if name in zoo_models.MODELS and zoo_models.MODELS[name][2] == 32:
        return CIFAR_CASES
    if name.startswith(FIXED_SIZE):
        return CASES[:1]
    return CASES


def mnasnet_v1_stem(model):
    """torchvision's `MNASNet._load_from_state_dict` for a version-1 file: the fixed stem."""
    from torchvision.models import mnasnet
    depths = mnasnet._get_depths(model.alpha)
    momentum = mnasnet._BN_MOMENTUM
    v1_stem = [
        nn.Conv2d(3, 32, 3, padding=1, stride=2, bias=False),
        nn.BatchNorm2d(32, momentum=momentum),
        nn.ReLU(inplace=True),
        nn.Conv2d(32, 32, 3, padding=1, stride=1, groups=32, bias=False),
        nn.BatchNorm2d(32, momentum=momentum),
        nn.ReLU(inplace=True),
        nn.Conv2d(32, 16, 1, padding=0, stride=1, bias=False),
        nn.BatchNorm2d(16, momentum=momentum),
        mnasnet._stack(16, depths[2], 3, 2, 3, 3, momentum),
    ]
    for idx, layer in enumerate(v1_stem):
        model.layers[idx] = layer
    model._version = 1
    return model


# Models whose published weight file has an older layout than the builder's.
OLD_LAYOUT = {"mnasnet0_5": mnasnet_v1_stem}


def densenet_old_keys(state_dict):
    """The dense-layer keys as torchvision's published files spell them (`norm.1`, `conv.2`),
    which torchvision's `densenet._load_state_dict` renames back when loading."""
    pattern = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))((?:[12])\.(?:weight|bias|running_mean|running_var))$")
    return OrderedDict(
        (pattern.sub(r"\1.\2", key), value) for key, value in state_dict.items()
    )


def torchvision_loads(name, state_dict):
    """Loads `state_dict` as torchvision's builder loads its published file."""
    model = torchvision.models.get_model(name, weights=None)
    if name.startswith("densenet"):
        from torchvision.models import densenet

        class Published:
            def get_state_dict(self, progress, check_hash):
                return dict(state_dict)

        densenet._load_state_dict(model, Published(), progress=False)
    else:
        model.load_state_dict(state_dict)
    return model


def vit_old_keys(state_dict):
    """The MLP keys as torchvision's published ViT files spell them (`mlp.linear_1`,
    `mlp.linear_2`), which `MLPBlock._load_from_state_dict` renames back when loading."""
    pattern = re.compile(r"^(encoder\.layers\.encoder_layer_\d+\.mlp\.)([03])\.(weight|bias)$")
    return OrderedDict(
        (pattern.sub(lambda m: f"{m[1]}linear_{int(m[2]) // 3 + 1}.{m[3]}", key), value)
        for key, value in state_dict.items()
    )


# Models whose published weight file spells keys the old way.
OLD_KEYS = {f"densenet{n}": densenet_old_keys for n in (121, 161, 169, 201)}
OLD_KEYS.update({f"vit_{v}": vit_old_keys for v in ("b_16", "b_32", "l_16", "l_32", "h_14")})


def build(name, seed):
    torch.manual_seed(seed)
    model = construct(name)
    if name in OLD_LAYOUT:
        model = OLD_LAYOUT[name](model)
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        randomise_batchnorm(model, generator)
        if name.startswith(RANDOMISE_CONSTANTS):
            randomise_constants(model, generator)
    return model.eval()


# torchvision's `weights=None` models whose builders set more than `num_classes` for weights:
# the class count of their from-scratch references (odd on purpose).
WEIGHTS_NONE = {"googlenet": 7, "inception_v3": 13}


def fan_in_scaled(model, generator):
    """Every convolution and linear weight drawn from N(0, 2 / fan_in) (N(0, 1 / fan_in) for a
    linear layer), so that the input, and how it is transformed, shows in the logits."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            fan_in = m.weight[0].numel()
            gain = 2.0 if isinstance(m, nn.Conv2d) else 1.0
            m.weight.copy_(torch.randn(m.weight.shape, generator=generator) * (gain / fan_in) ** 0.5)
            if m.bias is not None:
                m.bias.copy_(torch.randn(m.bias.shape, generator=generator) * 0.1)


def weights_none(name, seed, aux_logits):
    """`get_model(name, weights=None, num_classes=..., aux_logits=...)` as a user trains it from
    scratch (`transform_input=False`, `init_weights=True`), with random fan-in-scaled weights and
    randomised BatchNorm."""
    torch.manual_seed(seed)
    model = torchvision.models.get_model(
        name, weights=None, num_classes=WEIGHTS_NONE[name], aux_logits=aux_logits, init_weights=True
    )
    assert not model.transform_input
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        fan_in_scaled(model, generator)
        randomise_batchnorm(model, generator)
    return model.eval()


def write_weights_none(folder, name, seed, inputs):
    """The from-scratch references of `name` (see WEIGHTS_NONE): one entry per variant, and per
    case the logits file of each."""
    variants = []
    per_case = [{} for _ in inputs]
    for variant, aux_logits in (("aux", True), ("noaux", False)):
        model = weights_none(name, seed + 7 + aux_logits, aux_logits)
        state_dict_file = f"none_{variant}.pth"
        torch.save(model.state_dict(), folder / state_dict_file)
        model64 = model.double()
        for i, x in enumerate(inputs):
            with torch.no_grad():
                logits = model64(x.double())
                # The check is only as good as its power to see a wrong input transform.
                model64.transform_input = True
                transformed = model64(x.double())
                model64.transform_input = False
            scale = logits.abs().max().item()
            moved = (transformed - logits).abs().max().item()
            assert moved > 0.1 * scale, f"{name} {variant}: transform_input moves the logits by {moved} of {scale}"
            logits_file = f"case{i}_none_{variant}.f32"
            logits.float().numpy().astype("<f4").tofile(folder / logits_file)
            per_case[i][variant] = logits_file
        variants.append({
            "variant": variant,
            "aux_logits": aux_logits,
            "num_classes": WEIGHTS_NONE[name],
            "state_dict": state_dict_file,
            "parameters": sum(p.numel() for p in model.parameters()),
        })
    return variants, per_case


def is_current(manifest_path, format, key="torch", version=torch.__version__):
    """Whether the references of `manifest_path` exist in this format for this `key` version."""
    if not manifest_path.exists():
        return False
    manifest = json.loads(manifest_path.read_text())
    return manifest.get("format") == format and manifest.get(key) == version


def as_nchw(name, x, input_shape, module):
    """A feature map in NCHW, as the zoo returns it (see the module docs)."""
    if name.startswith("swin"):
        return x.permute(0, 3, 1, 2)
    if name in VIT_PATCH and module.startswith("encoder.layers."):
        n, _, d = x.shape
        h, w = input_shape[2] // VIT_PATCH[name], input_shape[3] // VIT_PATCH[name]
        return x[:, 1:, :].reshape(n, h, w, d).permute(0, 3, 1, 2)
    return x


def output_node(model):
    """The name torch.fx gives the model's output in eval mode."""
    from torchvision.models.feature_extraction import get_graph_node_names

    return get_graph_node_names(model)[1][-1]


def not_in_place(graph_module):
    """Turns the in-place activations of a traced model out of place, so that a returned node's
    value is not overwritten by what runs after it (DenseNet's `F.relu(features, inplace=True)`
    after `features.norm5`; `nn.ReLU(inplace=True)` modules)."""
    for m in graph_module.modules():
        if getattr(m, "inplace", False) is True:
            m.inplace = False
    for node in graph_module.graph.nodes:
        if node.kwargs.get("inplace") is True:
            node.kwargs = {**node.kwargs, "inplace": False}
    graph_module.recompile()


def write_features(folder, name, model64, manifest, modules, small_model=None):
    """Adds the feature maps of `modules` to the first full-size case and the small case of
    `manifest` (see the module docs), checking the extractor's output against the logits."""
    from torchvision.models.feature_extraction import create_feature_extractor

    roles_done = set()
    for i, case in enumerate(manifest["cases"]):
        case.pop("features", None)
        if case["role"] in roles_done:
            continue
        roles_done.add(case["role"])
        model = small_model if case["role"] == "small" and small_model is not None else model64
        shape = case["input_shape"]
        x = torch.from_numpy(
            numpy.fromfile(folder / case["input"], dtype="<f4").reshape(shape)
        ).double()
        out_node = output_node(model)
        nodes = {m: f"feature{k}" for k, m in enumerate(modules)}
        nodes[out_node] = "logits"
        extractor = create_feature_extractor(model, return_nodes=nodes).eval()
        not_in_place(extractor)
        with torch.no_grad():
            out = extractor(x)
        expected = torch.from_numpy(
            numpy.fromfile(folder / case["logits"], dtype="<f4").reshape(case["logits_shape"])
        ).double()
        logits = out["logits"]
        diff = (logits - expected).abs().max().item()
        scale = max(1e-3, expected.abs().max().item())
        assert diff <= 1e-5 * scale, f"{name}: the extractor's output is {diff} off the logits ({scale})"
        maps = []
        for k, module in enumerate(modules):
            fmap = as_nchw(name, out[f"feature{k}"], shape, module).contiguous().float()
            file = f"case{i}_feat{k}.f32"
            fmap.numpy().astype("<f4").tofile(folder / file)
            maps.append({"module": module, "file": file, "shape": list(fmap.shape)})
        case["features"] = maps
    manifest["feature_modules"] = list(modules)
    manifest["features_format"] = FEATURES_FORMAT


# Models also checked for other input channels: torchvision's RGB weights adapted by timm's
# `adapt_input_conv`, on an input of that many channels (the small case's size).
IN_CHANS = {"resnet18": 1, "convnext_tiny": 4}


def write_in_chans(folder, name, model64, manifest):
    """The `in_chans` case of `name` (see IN_CHANS): the model with its first convolution's
    weight adapted by timm, its input and logits."""
    import copy

    import timm
    from timm.models._manipulate import adapt_input_conv

    channels = IN_CHANS[name]
    model = copy.deepcopy(model64)
    conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    with torch.no_grad():
        conv.weight = nn.Parameter(adapt_input_conv(channels, conv.weight.detach()))
    conv.in_channels = channels
    shape = (1, channels, *manifest["small"])
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(manifest["seed"] + 500))
    with torch.no_grad():
        logits = model(x.double()).float()
    x.numpy().astype("<f4").tofile(folder / "in_chans_input.f32")
    logits.numpy().astype("<f4").tofile(folder / "in_chans_logits.f32")
    manifest["in_chans"] = {
        "channels": channels,
        "timm": timm.__version__,
        "input": "in_chans_input.f32",
        "input_shape": list(shape),
        "logits": "in_chans_logits.f32",
        "logits_shape": list(logits.shape),
    }


def write(out, name, seed, small, modules=None):
    folder = out / name
    manifest_path = folder / "manifest.json"
    if (
        is_current(manifest_path, FORMAT)
        and json.loads(manifest_path.read_text()).get("small") == list(small)
        and (name not in WEIGHTS_NONE or "weights_none" in json.loads(manifest_path.read_text()))
    ):
        manifest = json.loads(manifest_path.read_text())
        features_missing = modules is not None and (
            manifest.get("feature_modules") != list(modules)
            or manifest.get("features_format") != FEATURES_FORMAT
        )
        in_chans_missing = name in IN_CHANS and "in_chans" not in manifest
        if not features_missing and not in_chans_missing:
            return
        # Only the maps or the in_chans case are missing: the same model (same seed), the
        # stored inputs.
        model64 = build(name, seed).double()
        if features_missing:
            small_model = None
            if name in VIT_PATCH:
                small_model = vit_resized(name, model64, 2 * VIT_PATCH[name])
            write_features(folder, name, model64, manifest, modules, small_model)
        if in_chans_missing:
            write_in_chans(folder, name, model64, manifest)
        manifest_path.write_text(json.dumps(manifest, indent=1))
        print(f"references added: {name}", flush=True)
        return
    folder.mkdir(parents=True, exist_ok=True)
    model = build(name, seed)
    state_dict = model.state_dict()
    if name in OLD_KEYS:
        state_dict = OLD_KEYS[name](state_dict)
    torch.save(state_dict, folder / "state_dict.pth")
    if name in OLD_LAYOUT or name in OLD_KEYS:
        # The file must load into torchvision's own builder, which converts the layout or the
        # keys, and give the same model.
        loaded = torchvision_loads(name, torch.load(folder / "state_dict.pth"))
        assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))
    model64 = model.double()
    requested_small = small
    if name in VIT_PATCH:
        small = (2 * VIT_PATCH[name],) * 2
    shapes = cases(name) + [(1, 3, *small)]
    roles = ["full"] * len(cases(name)) + ["small"]
    inputs = [
        torch.randn(*shape, generator=torch.Generator().manual_seed(seed + 100 + i))
        for i, shape in enumerate(shapes)
    ]
    aux = {}
    if name == "googlenet":
        # Training-mode forward of the model with aux heads, BatchNorm and dropout in eval mode.
        model64.train()
        for m in model64.modules():
            if isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.Dropout)):
                m.eval()
        for i, x in enumerate(inputs):
            with torch.no_grad():
                out = model64(x.double())
            for head in ("aux1", "aux2"):
                getattr(out, f"aux_logits{head[-1]}").float().numpy().astype("<f4").tofile(
                    folder / f"case{i}_{head}.f32"
                )
            aux[i] = {"aux1": f"case{i}_aux1.f32", "aux2": f"case{i}_aux2.f32"}
        # What torchvision's builder does after loading the weights without aux_logits=True.
        model64.eval()
        model64.aux_logits = False
        model64.aux1 = None
        model64.aux2 = None
    none_variants, none_per_case = (
        write_weights_none(folder, name, seed, inputs) if name in WEIGHTS_NONE else (None, None)
    )
    cases_out = []
    for i, x in enumerate(inputs):
        case_model = model64
        if name in VIT_PATCH and roles[i] == "small":
            case_model = vit_resized(name, model64, small[0])
        with torch.no_grad():
            logits = case_model(x.double()).float()
        x.numpy().astype("<f4").tofile(folder / f"case{i}_input.f32")
        logits.numpy().astype("<f4").tofile(folder / f"case{i}_logits.f32")
        cases_out.append({
            "input": f"case{i}_input.f32",
            "input_shape": list(x.shape),
            "logits": f"case{i}_logits.f32",
            "logits_shape": list(logits.shape),
            "role": roles[i],
            **({"aux": aux[i]} if i in aux else {}),
            **({"weights_none": none_per_case[i]} if none_per_case else {}),
        })
    manifest = {
        "format": FORMAT,
        "model": name,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "seed": seed,
        "small": list(requested_small),
        "parameters": sum(p.numel() for p in model.parameters()),
        "state_dict": "state_dict.pth",
        "cases": cases_out,
        **({"weights_none": none_variants} if none_variants else {}),
    }
    if modules is not None:
        small_model = vit_resized(name, model64, small[0]) if name in VIT_PATCH else None
        write_features(folder, name, model64, manifest, modules, small_model)
    if name in IN_CHANS:
        write_in_chans(folder, name, model64, manifest)
    manifest_path.write_text(json.dumps(manifest, indent=1))
    print(f"reference written: {name}", flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True, type=pathlib.Path)
    parser.add_argument("--features", type=pathlib.Path)
    parser.add_argument("models", nargs="+")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    features = json.loads(args.features.read_text()) if args.features else {}
    for spec in args.models:
        name, _, small = spec.partition(":")
        small = tuple(int(d) for d in small.split("x")) if small else (64, 48)
        # Each model in a child forked from this process (torch imported once, no compute run
        # here before the fork): whatever one model's references hold (vit_h_14's and
        # regnet_y_128gf's float64 copies, traced extractors) goes back to the system when the
        # child exits, where one process for all 85 grew past 24 GB and was OOM-killed.
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                write(args.out, name, seed=1000 + 17 * sum(map(ord, name)), small=small,
                      modules=features.get(name))
            except BaseException:
                traceback.print_exc()
                code = 1
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        if status != 0:
            sys.exit(f"{name}: writing the references failed (wait status {status})")


if __name__ == "__main__":
    main()
