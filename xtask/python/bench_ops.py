"""PyTorch side of `cargo xtask bench --ops`: where the time of a forward goes, op by op.

  bench_ops.py record --model vit_b_16 --batch 8 --size 224 --threads 2 --warmup 2 --runs 5
      [--no-time]
      Runs the model's forward once (eval, no_grad, a random `batch x 3 x size x size` input)
      under a TorchDispatchMode that records every aten op PyTorch runs: its name, its arguments
      in schema order (tensors as shape, strides and dtype; every other argument as its value,
      defaults filled in) and its outputs' shapes. Identical (op, arguments) calls are one row
      with their count. Each row is then timed alone (median of `runs` calls after `warmup`, on
      fresh random tensors of the same shapes and strides; an in-place op gets a fresh copy of
      its input before each call, outside the clock), and so is the whole forward. Prints one
      JSON object: {"rows": [...], "model_seconds": ..., ...}. With --no-time: the rows only.

  bench_ops.py train --spec FILE --threads 2 --warmup 2 --runs 7
      The convolutions of `bench --ops --ops-train` (xtask's bench_ops::Op as JSON, a list in
      FILE): each forward, input gradient or weight gradient alone; prints a list of medians.
"""
import argparse
import json
import statistics
import time

import torch
import torchvision
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_map

import zoo_models


def build(name):
    """What the zoo's `create(name, ...)` mirrors: torchvision's builder without weights, or the
    zoo's own PyTorch twin (zoo_models.py)."""
    if name in zoo_models.MODELS:
        make, num_classes, _ = zoo_models.MODELS[name]
        return make(num_classes=num_classes)
    return torchvision.models.get_model(name, weights=None)


class Spec:
    """A tensor argument as recorded: shape, strides, dtype (no values)."""

    __slots__ = ("shape", "stride", "dtype")

    def __init__(self, t):
        self.shape = tuple(t.shape)
        self.stride = tuple(t.stride())
        self.dtype = t.dtype

    def key(self):
        return ("T", self.shape, self.stride, str(self.dtype))

    def json(self):
        return {
            "shape": list(self.shape),
            "stride": list(self.stride),
            "dtype": str(self.dtype).removeprefix("torch."),
        }

    def make(self):
        """A fresh tensor of this shape and layout: random normal floats, zero integers (valid
        indices for any index op), false booleans."""
        storage = 1 + sum((n - 1) * s for n, s in zip(self.shape, self.stride) if n > 0)
        if any(n == 0 for n in self.shape):
            storage = 0
        if self.dtype.is_floating_point:
            base = torch.randn(storage, dtype=self.dtype)
        else:
            base = torch.zeros(storage, dtype=self.dtype)
        return base.as_strided(self.shape, self.stride)


def spec_of(value):
    return Spec(value) if isinstance(value, torch.Tensor) else value


def key_of(value):
    """A hashable, printable key of a recorded argument tree."""
    if isinstance(value, Spec):
        return value.key()
    if isinstance(value, (list, tuple)):
        return tuple(key_of(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, key_of(v)) for k, v in value.items()))
    return repr(value)


def to_json(value):
    """A recorded argument as JSON: a tensor as {shape, stride, dtype}, lists as lists, numbers,
    booleans, strings and None as they are, anything else (a dtype, a memory format, a device)
    as its name."""
    if isinstance(value, Spec):
        return {"tensor": value.json()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        if isinstance(value, float) and value != value:
            return None
        return value
    return str(value).removeprefix("torch.")


def describe(func, named):
    """One line for the row's shape column: tensors as their shapes (with their strides when
    they are not contiguous), other arguments as name=value where they differ from the
    schema's default."""
    parts = []
    defaults = {a.name: a for a in func._schema.arguments}

    def text(v):
        if isinstance(v, Spec):
            dims = ",".join(map(str, v.shape))
            contiguous = torch.empty_strided(v.shape, v.stride, device="meta").is_contiguous()
            extra = "" if contiguous else " strides " + ",".join(map(str, v.stride))
            dtype = "" if v.dtype == torch.float32 else f" {str(v.dtype).removeprefix('torch.')}"
            return f"[{dims}]{extra}{dtype}"
        if isinstance(v, (list, tuple)):
            if any(isinstance(x, Spec) for x in v):
                return "(" + ", ".join(text(x) for x in v) + ")"
            return "[" + ",".join(str(x) for x in v) + "]"
        return str(v)

    for name, value in named:
        arg = defaults[name]
        if isinstance(value, Spec) or (
            isinstance(value, (list, tuple)) and any(isinstance(x, Spec) for x in value)
        ):
            parts.append(text(value))
            continue
        if value is None:
            continue
        if arg.has_default_value():
            default = arg.default_value
            try:
                if value == default or (
                    isinstance(value, (list, tuple)) and list(value) == list(default)
                ):
                    continue
            except Exception:
                pass
        parts.append(f"{name}={text(value)}")
    return ", ".join(parts)


class Recorder(TorchDispatchMode):
    """Every aten op of what runs under it, grouped by (op, arguments)."""

    def __init__(self):
        super().__init__()
        self.rows = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        args_spec = tree_map(spec_of, args)
        kwargs_spec = tree_map(spec_of, kwargs)
        key = (str(func), key_of(args_spec), key_of(kwargs_spec))
        row = self.rows.get(key)
        if row is None:
            named = []
            for i, arg in enumerate(func._schema.arguments):
                if i < len(args) and not arg.kwarg_only:
                    value = args_spec[i]
                elif arg.name in kwargs_spec:
                    value = kwargs_spec[arg.name]
                elif arg.has_default_value():
                    value = arg.default_value
                else:
                    value = None
                named.append((arg.name, value))
            outputs = [
                list(t.shape)
                for t in (out if isinstance(out, (list, tuple)) else [out])
                if isinstance(t, torch.Tensor)
            ]
            row = self.rows[key] = {
                "func": func,
                "args": args_spec,
                "kwargs": kwargs_spec,
                "named": named,
                "outputs": outputs,
                "count": 0,
                "order": len(self.rows),
            }
        row["count"] += 1
        return out


def median_seconds(call, make, warmup, runs):
    times = []
    for i in range(warmup + max(runs, 1)):
        arg = make()
        start = time.perf_counter()
        call(arg)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_row(row, warmup, runs):
    """Median seconds of one call of the row's op on fresh tensors of its shapes."""
    func = row["func"]
    name = func._schema.name
    inplace = name.endswith("_") or any(
        a.alias_info is not None and a.alias_info.is_write for a in func._schema.arguments
    )

    def make_args():
        return tree_map(lambda v: v.make() if isinstance(v, Spec) else v, row["args"]), tree_map(
            lambda v: v.make() if isinstance(v, Spec) else v, row["kwargs"]
        )

    fixed = make_args()
    if inplace:
        # A fresh copy before each call (outside the clock): an in-place op must not run on
        # what the previous call left, as the model never does.
        def make():
            args, kwargs = fixed
            return (
                tree_map(lambda v: v.clone() if isinstance(v, torch.Tensor) else v, args),
                kwargs,
            )
    else:
        make = lambda: fixed
    with torch.no_grad():
        return median_seconds(lambda a: func(*a[0], **a[1]), make, warmup, runs)


def record(args):
    torch.manual_seed(0)
    model = build(args.model).eval()
    x = torch.randn(args.batch, 3, args.size, args.size)
    recorder = Recorder()
    with torch.no_grad(), recorder:
        model(x)
    rows = sorted(recorder.rows.values(), key=lambda r: r["order"])
    out = []
    for row in rows:
        entry = {
            "name": str(row["func"]),
            "args": [[n, to_json(v)] for n, v in row["named"]],
            "outputs": row["outputs"],
            "count": row["count"],
            "text": describe(row["func"], row["named"]),
        }
        if not args.no_time:
            entry["seconds"] = time_row(row, args.warmup, args.runs)
        out.append(entry)
    result = {
        "engine": "pytorch",
        "torch": torch.__version__,
        "model": args.model,
        "batch": args.batch,
        "size": args.size,
        "threads": args.threads,
        "rows": out,
    }
    if not args.no_time:
        with torch.no_grad():
            result["model_seconds"] = median_seconds(
                lambda x: model(x), lambda: x, args.warmup, args.runs
            )
    print(json.dumps(result))


def time_conv_grad(op, input_grad, warmup, runs):
    """Median seconds of a convolution's input or weight gradient by autograd: forward and
    backward with only that tensor requiring a gradient, less the forward alone (as xtask's
    bench_ops times burn)."""
    x = torch.randn(op["n"], op["cin"], op["size"], op["size"], requires_grad=input_grad)
    w = torch.randn(op["cout"], op["cin"], op["k"], op["k"], requires_grad=not input_grad)
    conv = lambda: torch.nn.functional.conv2d(x, w, None, op["stride"], op["pad"])
    upstream = torch.randn(conv().shape)

    def both(_):
        (x if input_grad else w).grad = None
        (conv() * upstream).sum().backward()

    def forward(_):
        with torch.no_grad():
            conv() * upstream

    return max(
        median_seconds(both, lambda: None, warmup, runs)
        - median_seconds(forward, lambda: None, warmup, runs),
        0.0,
    )


def time_train_op(op, warmup, runs):
    kind = op["op"]
    if kind in ("conv_input_grad", "conv_weight_grad"):
        return time_conv_grad(op, kind == "conv_input_grad", warmup, runs)
    if kind == "conv2d":
        x = torch.randn(op["n"], op["cin"], op["size"], op["size"])
        w = torch.randn(op["cout"], op["cin"], op["k"], op["k"])
        with torch.no_grad():
            return median_seconds(
                lambda x: torch.nn.functional.conv2d(x, w, None, op["stride"], op["pad"]),
                lambda: x,
                warmup,
                runs,
            )
    raise SystemExit(f"unknown op {kind}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["record", "train"])
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-time", action="store_true")
    parser.add_argument("--spec", help="train: a file with the op list (JSON)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.what == "train":
        with open(args.spec) as f:
            ops = json.load(f)
        print(json.dumps([time_train_op(op, args.warmup, args.runs) for op in ops]))
        return
    record(args)


if __name__ == "__main__":
    main()
