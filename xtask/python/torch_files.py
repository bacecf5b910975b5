"""Files as `torch.save` writes them, for `cargo xtask parity --torch-files` to read back through
zoo-import (`TorchImport::read_state_dict`) and compare tensor for tensor, bit for bit.

Writes into OUT/ a few hundred state_dicts, drawn from a fixed seed:
  - random ones: 1 to 500 keys named as real state_dicts are (`layer2.1.bn1.running_mean`,
    `blocks.7.attn.qkv.weight`), shapes of 0 to 4 dims (scalars and zero-size dims included),
    every dtype PyTorch saves that the reader has an equivalent for (float32/16/64, bfloat16,
    int8/16/32/64, uint8/16/32/64, bool), floats with NaN, infinities, -0.0 and subnormals,
    views that share one storage (slices at a storage offset, transposed, strided, stepped,
    expanded with stride 0, overlapping `unfold` windows, diagonals), Parameters beside plain
    tensors;
  - both serializations: zip (the default) and legacy (`_use_new_zipfile_serialization=False`);
  - file names of every stem length from 1 to 64 (zip), several of exactly 21 characters:
    a zip entry's root is the file's stem, and a 21-character stem makes the first central
    directory header exactly as long as the zip64 end records (76 bytes), which zip 9.1 to 9.9
    mistake for an archive offset; a few saved through a file object (root `archive/`);
  - torchvision models as a user builds them (`get_model(name, weights=None,
    num_classes=<odd>)`), `mobilenet_v3_small_11.pth` among them;
  - checkpoints that nest the state_dict (`{"epoch": 3, "state_dict": sd, "optimizer": ...}`);
  - one file for each dtype burn has no equivalent for (complex64/128, float8_e4m3fn/e5m2),
    marked `unsupported` with the word its error must hold (`complex`, `float8`): it must be
    refused with an error naming the dtype, never a panic (or, once read, read bit for bit);
  - one file near 100 MB and one near 25 MB; the rest are small, so the check stays fast.
  manifest.json   per file: name, serialization, writer, zip root, top-level key, torchvision
                  model and class count, and every tensor: name, dtype, shape, and the sha256
                  of its values as contiguous little-endian bytes (`t.contiguous()`'s)

Every file is loaded back with `torch.load(weights_only=True)` and hashed again before the
manifest is written. The files are regenerated only when the manifest is missing or of another
FORMAT or torch version (the folder is emptied first).

Usage: python torch_files.py --out DIR
"""
import argparse
import hashlib
import json
import math
import pathlib
import random
import string
import zipfile
from collections import OrderedDict

import torch
import torchvision
from torch import nn

from reference import is_current

FORMAT = 3
SEED = 20240521

# Every dtype torch.save writes that burn has an equivalent for; each random file draws from it.
DTYPES = [torch.float32, torch.float16, torch.float64, torch.bfloat16, torch.int64,
          torch.int32, torch.int16, torch.int8, torch.uint8, torch.uint16, torch.uint32,
          torch.uint64, torch.bool]
# How often each is drawn: float32 most, as in real files.
DTYPE_WEIGHTS = [10, 3, 2, 3, 3, 2, 1, 1, 2, 1, 1, 1, 2]
# The legacy format has no storage class for these: torch.save writes an untyped storage that
# torch.load itself cannot read back (`'UntypedStorage' has no attribute 'dtype'`).
NOT_LEGACY = {torch.uint16, torch.uint32, torch.uint64}
# Dtypes burn has no equivalent for: zoo-import must refuse these files with an error (or, once
# it reads them, read them bit for bit); each gets a file of its own, beside a float32 tensor.
UNSUPPORTED = [torch.complex64, torch.complex128, torch.float8_e4m3fn, torch.float8_e5m2]

# (torchvision model, count): small models, each built with a random odd class count below 100
# (a classifier of 1000 would make most of the files' size);
# `mobilenet_v3_small` once more with 11 classes as mobilenet_v3_small_11.pth.
TORCHVISION = [
    ("mobilenet_v3_small", 3), ("shufflenet_v2_x0_5", 7), ("squeezenet1_1", 5),
    ("squeezenet1_0", 1), ("mnasnet0_5", 4), ("shufflenet_v2_x1_0", 2), ("mnasnet0_75", 1),
    ("mobilenet_v2", 1), ("efficientnet_b0", 1), ("regnet_x_400mf", 1), ("regnet_y_400mf", 1),
    ("densenet121", 1), ("resnet18", 1),
]

WORDS = ["features", "layer1", "layer2", "layer3", "layer4", "blocks", "block", "conv", "bn",
         "conv1", "bn1", "conv2", "bn2", "downsample", "classifier", "head", "fc", "attn", "qkv",
         "proj", "mlp", "norm", "norm1", "norm2", "encoder", "decoder", "layers",
         "encoder_layer_11", "stem", "trunk_output", "block1", "f", "a", "b", "se", "fc1", "fc2",
         "squeeze", "expand1x1", "expand3x3", "denseblock4", "denselayer12", "transition2",
         "branch1", "branch2", "stage3", "pos_embed", "cls_token", "patch_embed", "lm_head",
         "embed_tokens", "self_attn", "q_proj", "k_proj", "v_proj", "o_proj", "ln_f",
         "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "23", "127"]
LEAVES = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked",
          "relative_position_bias_table", "relative_position_index", "in_proj_weight",
          "in_proj_bias", "scale", "gamma", "beta", "inv_freq", "mask", "alpha", "weight_g",
          "weight_v", "layer_scale", "anchors"]
STEM_WORDS = ["resnet", "model", "ckpt", "best", "final", "epoch", "step", "finetuned", "cifar",
              "imagenet", "ema", "student", "teacher", "v2", "run", "seed", "lr", "swa", "backup",
              "mobilenet", "vit", "small", "large", "export", "weights", "state", "dict", "tmp"]
EXTENSIONS = [".pth", ".pth", ".pth", ".pt", ".pt", ".bin", ".ckpt", ".tar"]


def stem_of_length(rng, length):
    """A file stem like a real one (`resnet18_finetuned-epoch_12`) of exactly `length`
    characters; a few hold dots, which the zip root keeps (only the extension is dropped)."""
    parts = []
    while sum(len(p) + 1 for p in parts) < length + 1:
        roll = rng.random()
        if roll < 0.6:
            parts.append(rng.choice(STEM_WORDS))
        elif roll < 0.85:
            parts.append(str(rng.randrange(1000)))
        else:
            parts.append("".join(rng.choice(string.ascii_lowercase) for _ in range(5)))
    seps = "_" * 8 + "-" * 3 + "."
    stem = parts[0]
    for p in parts[1:]:
        stem += rng.choice(seps) + p
    stem = stem[:length]
    # No leading or trailing separator, and no trailing dot (it would be taken for an extension).
    stem = stem.strip("_-.")
    while len(stem) < length:
        stem += rng.choice(string.ascii_lowercase + string.digits)
    return stem


def key_names(rng, count):
    names = []
    seen = set()
    while len(names) < count:
        depth = rng.choice([0, 1, 1, 2, 2, 3, 3, 3, 4, 5])
        path = [rng.choice(WORDS) for _ in range(depth)]
        name = ".".join(path + [rng.choice(LEAVES)])
        if name in seen:
            name = f"{name[:-len(name.split('.')[-1])]}{len(names)}.{name.split('.')[-1]}"
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


def random_shape(rng, budget):
    """0 to 4 dims, elements at most about `budget`; a zero-size dim now and then."""
    ndim = rng.choices([0, 1, 2, 3, 4], weights=[1, 4, 4, 2, 3])[0]
    if ndim == 0:
        return []
    shape = []
    for _ in range(ndim):
        left = max(1, budget // max(1, math.prod(shape)))
        top = max(1, int(left ** (1 / max(1, ndim - len(shape)))))
        shape.append(rng.randint(1, max(1, min(top * 2, left))))
    if rng.random() < 0.05:
        shape[rng.randrange(ndim)] = 0
    return shape


def random_values(gen, rng, dtype, shape):
    """Values of `dtype` filling `shape`, over the dtype's whole range; floats with special
    values mixed in."""
    n = math.prod(shape)
    if dtype.is_floating_point:
        t = torch.randn(shape, generator=gen, dtype=torch.float64) * (10.0 ** rng.randint(-3, 3))
        t = t.to(dtype)
        if n and rng.random() < 0.3:
            flat = t.view(-1)
            info = torch.finfo(dtype)
            specials = [math.nan, math.inf, -math.inf, -0.0, info.tiny / 4, info.max, info.min,
                        info.eps]
            for _ in range(min(n, 6)):
                flat[rng.randrange(n)] = rng.choice(specials)
        return t
    if dtype == torch.bool:
        return torch.randint(0, 2, shape, generator=gen).bool()
    if dtype in (torch.uint16, torch.uint32, torch.uint64):
        # randint stops at int64's maximum: draw the bits as int64 and reinterpret them.
        bits = {torch.uint16: torch.int16, torch.uint32: torch.int32, torch.uint64: torch.int64}
        info = torch.iinfo(bits[dtype])
        return torch.randint(info.min, info.max, shape, generator=gen,
                             dtype=bits[dtype]).view(dtype)
    info = torch.iinfo(dtype)
    return torch.randint(info.min, info.max, shape, generator=gen, dtype=dtype)


def views_of(gen, rng, dtype, budget):
    """A base tensor and views of it that share its storage, each its own entry."""
    rows = rng.randint(3, max(3, min(64, int(math.sqrt(budget)))))
    cols = rng.randint(3, max(3, min(64, budget // rows)))
    base = random_values(gen, rng, dtype, [rows, cols])
    views = [
        ("base", base),
        ("rows", base[1:rows - 1]),  # storage offset
        ("transposed", base.t()),
        ("strided", base[:, ::2]),  # every other column
        ("row", base[rows // 2]),  # a select: offset, one dim
        ("column", base[:, 1]),  # stride = cols
        ("stepped", base[::2, 1::3]),
        ("expanded", base[:1].expand(4, cols)),  # stride 0
        ("diagonal", base.diagonal()),
        ("windows", base[0].unfold(0, 2, 1)),  # overlapping windows
        ("flat_slice", base.view(-1)[3:3 + rng.randint(0, rows * cols - 3)]),
        ("empty", base[2:2]),  # zero size at an offset
        ("permuted", base.view(1, rows, cols, 1).permute(2, 3, 0, 1)),
        ("element", base[rows - 1, cols - 1]),  # a scalar view at the storage's end
    ]
    rng.shuffle(views)
    return views[:rng.randint(3, len(views))]


def random_state_dict(gen, rng, keys, budget, legacy=False):
    """`keys` entries (about) of about `budget` elements in all; some share storages, some are
    Parameters; an OrderedDict as `state_dict()` returns, sometimes with its `_metadata`."""
    sd = OrderedDict()
    names = key_names(rng, keys)
    per_key = max(1, budget // max(1, keys))
    i = 0
    while i < len(names):
        dtype = rng.choices(DTYPES, weights=DTYPE_WEIGHTS)[0]
        if legacy and dtype in NOT_LEGACY:
            dtype = torch.int64
        if rng.random() < 0.08 and len(names) - i >= 3:
            for suffix, view in views_of(gen, rng, dtype, per_key * 4):
                if i >= len(names):
                    break
                sd[f"{names[i]}.{suffix}"] = view
                i += 1
            continue
        shape = random_shape(rng, per_key if rng.random() < 0.9 else per_key * 8)
        t = random_values(gen, rng, dtype, shape)
        roll = rng.random()
        if roll < 0.2:
            t = nn.Parameter(t, requires_grad=dtype.is_floating_point)
        elif roll < 0.25 and dtype.is_floating_point:
            t.requires_grad_(True)
        elif roll < 0.35 and len(shape) >= 2:
            # Saved transposed: the storage is written in the other order, strides say so.
            t = t.transpose(0, len(shape) - 1).contiguous().transpose(0, len(shape) - 1)
        sd[names[i]] = t
        i += 1
    if rng.random() < 0.3:
        sd._metadata = OrderedDict([("", {"version": 1})])
    return sd


def big_state_dict(gen, rng, specs, legacy):
    """Large tensors (`specs`: name, dtype, shape), views of the first, and a few small ones."""
    sd = OrderedDict()
    for name, dtype, shape in specs:
        sd[name] = random_values(gen, rng, dtype, shape)
    first = sd[specs[0][0]]
    sd["views.transposed"] = first.t()
    sd["views.rows"] = first[100:200]
    sd["views.strided"] = first[::7, 3::5]
    sd.update(random_state_dict(gen, rng, 50, 20_000, legacy))
    return sd


def digest(t):
    t = t.detach().contiguous().reshape(-1)
    return hashlib.sha256(t.view(torch.uint8).numpy().tobytes()).hexdigest()


def describe(sd):
    return [{"name": k, "dtype": str(v.dtype).removeprefix("torch."), "shape": list(v.shape),
             "sha256": digest(v)} for k, v in sd.items()]


def save(path, obj, legacy, file_object):
    kwargs = {"_use_new_zipfile_serialization": False} if legacy else {}
    if file_object:
        with open(path, "wb") as f:
            torch.save(obj, f, **kwargs)
    else:
        torch.save(obj, path, **kwargs)


def zip_root(path):
    if not zipfile.is_zipfile(path):
        return None
    with zipfile.ZipFile(path) as z:
        first = z.namelist()[0]
    return first.split("/")[0]


def nest(rng, sd):
    """A training checkpoint holding `sd` under a key, beside an epoch count and an optimizer
    state (its own tensors, integer keys)."""
    key = rng.choice(["state_dict", "model", "model_state_dict", "net", "ema", "student"])
    some = list(sd.items())[:3]
    optimizer = {
        "state": {i: {"step": torch.tensor(float(rng.randint(1, 9999))),
                      "exp_avg": torch.zeros_like(v.detach())}
                  for i, (_, v) in enumerate(some)},
        "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999), "params": list(range(len(some)))}],
    }
    return key, {"epoch": rng.randint(0, 300), "arch": "resnet", key: sd, "optimizer": optimizer,
                 "best_acc1": rng.random(), "note": "saved by torch_files.py"}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=pathlib.Path, required=True)
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / "manifest.json"
    if is_current(manifest_path, FORMAT):
        return
    for old in out.iterdir():
        if old.is_file():
            old.unlink()
    rng = random.Random(SEED)
    gen = torch.Generator().manual_seed(SEED)
    torch.manual_seed(SEED)
    used = set()

    def file_name(stem_length, ext=None):
        while True:
            name = stem_of_length(rng, stem_length) + (ext or rng.choice(EXTENSIONS))
            if name not in used:
                used.add(name)
                return name

    # (file name, what to save, tensors it holds, serialization, writer, top-level key, model)
    plan = []
    unsupported = {}  # file name: the word its refusal must hold

    def synthetic(name, legacy, file_object=False, nested=False, keys=None, budget=None):
        keys = keys or max(1, int(math.exp(rng.uniform(0, math.log(500)))))
        budget = budget or int(math.exp(rng.uniform(math.log(max(keys, 100)), math.log(3e5))))
        sd = random_state_dict(gen, rng, keys, budget, legacy)
        key, obj = nest(rng, sd) if nested else (None, sd)
        plan.append((name, obj, sd, legacy, file_object, key, None))

    # Every stem length from 1 to 64, zip (the root of a zip's entries is the stem); five more
    # 21-character stems, one legacy.
    for length in range(1, 65):
        synthetic(file_name(length), legacy=False)
    for i in range(5):
        synthetic(file_name(21), legacy=i == 4, nested=i == 3)
    # Through a file object: the zip root is `archive`.
    for i in range(6):
        synthetic(file_name(rng.randint(1, 64)), legacy=i >= 4, file_object=True)
    # Checkpoints nesting the state_dict.
    for i in range(14):
        synthetic(file_name(rng.randint(1, 64)), legacy=i % 2 == 1, nested=True)
    # Random state_dicts, half of them legacy.
    for i in range(180):
        synthetic(file_name(rng.randint(1, 64)), legacy=i % 2 == 1)
    # As PyTorch's ImageNet example names its checkpoints (the zip root is `model_best.pth`).
    for name in ["checkpoint.pth.tar", "model_best.pth.tar"]:
        used.add(name)
        synthetic(name, legacy=False, nested=True)
    # Dtypes without an equivalent; complex64 legacy too (torch cannot read float8 back from a
    # legacy file).
    for dtype, legacy in [(d, False) for d in UNSUPPORTED] + [(torch.complex64, True)]:
        name = f"unsupported_{str(dtype).removeprefix('torch.')}{'_legacy' if legacy else ''}.pth"
        values = torch.randn(3, 4, generator=gen, dtype=torch.float64)
        if dtype.is_complex:
            values = torch.complex(values, torch.randn(3, 4, generator=gen, dtype=torch.float64))
        sd = OrderedDict([("fc.weight", torch.randn(3, 4, generator=gen)),
                          ("fc.values", values.to(dtype))])
        unsupported[name] = "complex" if dtype.is_complex else "float8"
        plan.append((name, sd, sd, legacy, False, None, None))
    # Big: near 100 MB (zip) and 25 MB (legacy).
    big = big_state_dict(gen, rng, [("embed.weight", torch.float32, [22000, 1000]),
                                    ("lm_head.weight", torch.float16, [5000, 1000]),
                                    ("pos.weight", torch.bfloat16, [1000, 1000])], False)
    plan.append(("big_100mb_zip.pth", big, big, False, False, None, None))
    big = big_state_dict(gen, rng, [("blocks.0.weight", torch.bfloat16, [2000, 3000]),
                                    ("blocks.1.weight", torch.float32, [1500, 2000]),
                                    ("blocks.2.index", torch.int64, [100, 100])], True)
    plan.append(("big_25mb_legacy.pth", big, big, True, False, None, None))

    # torchvision models as a user builds them: random odd class counts, a third legacy, some
    # nested in a checkpoint, some saved with keep_vars (Parameters).
    models = [("mobilenet_v3_small", 11, "mobilenet_v3_small_11.pth")]
    for model, count in TORCHVISION:
        for _ in range(count):
            classes = rng.randrange(1, 100, 2)
            models.append((model, classes, f"{model}_{classes}.pth"))
    for i, (model, classes, name) in enumerate(models):
        if name in used:
            name = name.replace(".pth", f"_{i}.pth")
        used.add(name)
        torch.manual_seed(SEED + i)
        net = torchvision.models.get_model(model, weights=None, num_classes=classes)
        sd = net.state_dict(keep_vars=i % 5 == 4)
        legacy = i % 3 == 2
        key, obj = nest(rng, sd) if i % 6 == 5 else (None, sd)
        plan.append((name, obj, sd, legacy, i % 7 == 6, key, (model, classes)))

    files = []
    for name, obj, sd, legacy, file_object, key, model in plan:
        path = out / name
        save(path, obj, legacy, file_object)
        tensors = describe(sd)
        # Read back by PyTorch: the manifest holds what torch.load gives.
        loaded = torch.load(path, weights_only=True)
        if key is not None:
            loaded = loaded[key]
        assert describe(loaded) == tensors, name
        entry = {"file": name, "serialization": "legacy" if legacy else "zip",
                 "writer": "file object" if file_object else "path", "zip_root": zip_root(path),
                 "bytes": path.stat().st_size, "top_level_key": key, "tensors": tensors}
        if model is not None:
            entry["model"], entry["num_classes"] = model
        if name in unsupported:
            entry["unsupported"] = unsupported[name]
        files.append(entry)
    roots = {len(f["zip_root"]) for f in files
             if f["zip_root"] and f["writer"] == "path"}
    assert roots >= set(range(1, 65)), sorted(set(range(1, 65)) - roots)
    manifest = {"format": FORMAT, "torch": torch.__version__,
                "torchvision": torchvision.__version__, "seed": SEED, "files": files}
    tmp = manifest_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, indent=0))
    tmp.rename(manifest_path)


if __name__ == "__main__":
    main()
