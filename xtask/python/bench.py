"""PyTorch side of `cargo xtask bench`: one measurement per invocation, so that its peak RSS is
its own. Prints one JSON object.

  bench.py infer  --model resnet50 --batch 8 --size 224 --threads 2 --warmup 2 --runs 5
      [--device cuda]  (on a GPU: the logits are copied back to the host before the clock stops,
      as burn reads them back; a training step ends with the loss read back and a synchronize)
  bench.py ort    --model resnet50 --batch 8 --size 224 --threads 2 --warmup 2 --runs 5
      (ONNX Runtime, CPU: the model and input of `infer`, exported to ONNX once and cached under
      ~/.cache/burn-model-zoo/bench/onnx/, timed in a child process that imports no torch (so
      that its peak RSS is ONNX Runtime's), its logits checked against PyTorch's)
  bench.py train  --model resnet18 --batch 8 --size 224 --threads 2 --warmup 1 --runs 3
  bench.py import --file resnet152.pth --model resnet152 --threads 2
  bench.py write-weights --model resnet152 --out FILE   (random weights, torchvision's keys)
  bench.py ops --spec '[{"op":"conv2d",...}, ...]' --threads 2 --warmup 2 --runs 7
      (each op alone, as torchvision's ResNet runs it; prints a list of median seconds)
"""
import argparse
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

# `ort-run` (the ONNX Runtime child of `ort`) must not load torch: its peak RSS is ONNX Runtime's.
if not (__name__ == "__main__" and sys.argv[1:2] == ["ort-run"]):
    import torch
    import torchvision

# The ONNX files of `ort`; the opset and the largest accepted difference of ONNX Runtime's
# logits from PyTorch's, relative to the largest PyTorch logit.
ONNX_OPSET = 17
ORT_TOLERANCE = 1e-3
# torch 2.15's `torch.onnx.export` defaults to the dynamo exporter, which needs onnxscript and
# traces through torch.export; the legacy TorchScript exporter (`dynamo=False`) needs only the
# `onnx` package, runs offline and exports every torchvision classifier the bench times.
EXPORTER = "torchscript (torch.onnx.export dynamo=False)"


def build(name, num_classes=1000):
    if name == "googlenet":
        return torchvision.models.googlenet(
            num_classes=num_classes, aux_logits=False, init_weights=True, transform_input=True
        )
    return getattr(torchvision.models, name)(num_classes=num_classes)


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def peak_rss_mb_own():
    """This process's own peak RSS (VmHWM, as xtask reads burn's): in a child started by a
    process that has loaded torch, `ru_maxrss` still holds the parent's peak (Linux carries it
    across fork and exec)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return peak_rss_mb()


# Inference warms up for at least this long as well as `--warmup` calls, in every engine
# (burn's side: `WARMUP_SECONDS` in bench.rs): on this project's 2-core VM a process's first
# forwards of a small model ran up to 3x slower than its later ones (MobileNetV3-Small at batch
# 1 after 2 warm-up calls: 123-407 img/s over 8 processes; after 30: 327-475), so two calls were
# not enough for the median of nine to measure the steady state.
WARMUP_SECONDS = 1.0


def timed(fn, warmup, runs, min_warmup_seconds=0.0):
    """Median and all of `runs` timed calls after `warmup` calls (and at least
    `min_warmup_seconds` of them): each call's wall time, or the seconds it returns (a
    training step timing one of its phases)."""
    start = time.perf_counter()
    done = 0
    while done < warmup or time.perf_counter() - start < min_warmup_seconds:
        fn()
        done += 1
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        seconds = fn()
        times.append(time.perf_counter() - start if seconds is None else seconds)
    return statistics.median(times), times


def time_conv_grad(op, input_grad, warmup, runs):
    """Median seconds of a convolution's input or weight gradient by autograd: forward and
    backward with only that tensor requiring a gradient, less the forward alone (as xtask's
    bench_ops times burn)."""
    x = torch.randn(op["n"], op["cin"], op["size"], op["size"], requires_grad=input_grad)
    w = torch.randn(op["cout"], op["cin"], op["k"], op["k"], requires_grad=not input_grad)
    conv = lambda: torch.nn.functional.conv2d(x, w, None, op["stride"], op["pad"])
    upstream = torch.randn(conv().shape)

    def median(fn):
        times = []
        for i in range(warmup + max(runs, 1)):
            start = time.perf_counter()
            fn()
            if i >= warmup:
                times.append(time.perf_counter() - start)
        return statistics.median(times)

    def both():
        (x if input_grad else w).grad = None
        (conv() * upstream).sum().backward()

    def forward():
        with torch.no_grad():
            conv() * upstream

    return max(median(both) - median(forward), 0.0)


def time_op(op, warmup, runs):
    """Median seconds of one call of `op` (a dict from xtask's bench_ops::Op) on fresh inputs."""
    kind = op["op"]
    F = torch.nn.functional
    if kind in ("conv_input_grad", "conv_weight_grad"):
        return time_conv_grad(op, kind == "conv_input_grad", warmup, runs)
    if kind == "conv2d":
        x = torch.randn(op["n"], op["cin"], op["size"], op["size"])
        w = torch.randn(op["cout"], op["cin"], op["k"], op["k"])
        make, call = (lambda: x), (lambda x: F.conv2d(x, w, None, op["stride"], op["pad"]))
    elif kind == "subsampled":
        # PyTorch runs the strided 1x1 convolution as it is.
        x = torch.randn(op["n"], op["cin"], op["size"], op["size"])
        w = torch.randn(op["cout"], op["cin"], 1, 1)
        make, call = (lambda: x), (lambda x: F.conv2d(x, w, None, op["stride"]))
    elif kind == "linear":
        x = torch.randn(op["n"], op["cin"])
        w = torch.randn(op["cout"], op["cin"])
        b = torch.randn(op["cout"])
        make, call = (lambda: x), (lambda x: F.linear(x, w, b))
    else:
        shape = (op["n"], op["c"], op["size"], op["size"])
        x = torch.randn(shape)
        if kind == "batch_norm":
            mean, weight, bias = torch.randn(op["c"]), torch.randn(op["c"]), torch.randn(op["c"])
            var = torch.rand(op["c"]) + 0.5
            make = lambda: x
            call = lambda x: F.batch_norm(x, mean, var, weight, bias, False, 0.1, 1e-5)
        elif kind == "relu":
            # torchvision's ReLU(inplace=True), on a fresh copy (made outside the clock).
            make, call = (lambda: x.clone()), (lambda x: F.relu(x, inplace=True))
        elif kind == "add":
            # torchvision's `out += identity`.
            y = torch.randn(shape)
            make, call = (lambda: x.clone()), (lambda x: x.add_(y))
        elif kind == "max_pool":
            make, call = (lambda: x), (lambda x: F.max_pool2d(x, 3, 2, 1))
        else:
            raise SystemExit(f"unknown op {kind}")
    times = []
    with torch.no_grad():
        for i in range(warmup + max(runs, 1)):
            arg = make()
            start = time.perf_counter()
            call(arg)
            if i >= warmup:
                times.append(time.perf_counter() - start)
    return statistics.median(times)


def onnx_dir():
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "burn-model-zoo", "bench", "onnx")


def weights_digest(model):
    """sha256 over the names, shapes and bytes of the state_dict: what the ONNX file holds."""
    digest = hashlib.sha256()
    for key, value in model.state_dict().items():
        digest.update(f"{key} {tuple(value.shape)} {value.dtype}".encode())
        digest.update(value.detach().cpu().contiguous().numpy())
    return digest.hexdigest()


def onnx_file(model, name, x):
    """The ONNX export of `model` (eval mode) for inputs of `x`'s shape (a fixed batch: one file
    per model, batch and size), cached as <name>-b<batch>-<size>.onnx beside a .json of what it
    was made from; exported again when the weights, torch or the opset differ."""
    import warnings

    directory = onnx_dir()
    os.makedirs(directory, exist_ok=True)
    stem = os.path.join(directory, f"{name}-b{x.shape[0]}-{x.shape[-1]}")
    path, meta_path = stem + ".onnx", stem + ".json"
    meta = {
        "model": name,
        "input": list(x.shape),
        "opset": ONNX_OPSET,
        "exporter": EXPORTER,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "weights_sha256": weights_digest(model),
    }
    try:
        with open(meta_path) as f:
            if json.load(f) == meta and os.path.isfile(path):
                return path, False
    except (OSError, ValueError):
        pass
    tmp = f"{path}.{os.getpid()}.tmp"
    with warnings.catch_warnings():
        # The legacy exporter's deprecation notice, on every call.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            (x,),
            tmp,
            dynamo=False,
            opset_version=ONNX_OPSET,
            input_names=["x"],
            output_names=["logits"],
        )
    os.replace(tmp, path)
    with open(meta_path, "w") as f:
        json.dump(meta, f, indent=1)
    return path, True


def ort_run(argv):
    """The child of `ort`: times ONNX Runtime on the saved input and saves the last logits.
    Imports onnxruntime and numpy only."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--onnx", required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument("--logits", required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(args.onnx, options, providers=["CPUExecutionProvider"])
    x = np.load(args.input)
    out = {}

    def step():
        out["logits"] = session.run(["logits"], {"x": x})[0]

    median, times = timed(step, args.warmup, args.runs, WARMUP_SECONDS)
    np.save(args.logits, out["logits"])
    print(
        json.dumps(
            {
                "onnxruntime": ort.__version__,
                "providers": session.get_providers(),
                "seconds": median,
                "times": times,
                "peak_rss_mb": peak_rss_mb_own(),
            }
        )
    )


def ort(args, result):
    """`infer`'s model and input (the same seed), exported to ONNX, timed by ONNX Runtime in a
    child process with the same threads and protocol; fails when its logits differ from
    PyTorch's by more than ORT_TOLERANCE of the largest logit."""
    if args.device != "cpu":
        raise SystemExit("ort: CPUExecutionProvider only (--device cpu)")
    model = build(args.model).eval()
    x = torch.randn(args.batch, 3, args.size, args.size)
    with torch.no_grad():
        reference = model(x).numpy()
    path, exported = onnx_file(model, args.model, x)
    del model
    with tempfile.TemporaryDirectory(prefix="zoo-bench-ort-") as tmp:
        x_path, logits_path = os.path.join(tmp, "x.npy"), os.path.join(tmp, "logits.npy")
        np.save(x_path, x.numpy())
        child = subprocess.run(
            [
                sys.executable,
                os.path.abspath(__file__),
                "ort-run",
                "--onnx",
                path,
                "--input",
                x_path,
                "--logits",
                logits_path,
                "--threads",
                str(args.threads),
                "--warmup",
                str(args.warmup),
                "--runs",
                str(args.runs),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        if child.returncode != 0:
            sys.stderr.write(child.stderr)
            raise SystemExit(f"onnxruntime failed on {path} (exit {child.returncode})")
        timing = json.loads(child.stdout.strip().splitlines()[-1])
        logits = np.load(logits_path)
    if logits.shape != reference.shape:
        raise SystemExit(f"onnxruntime's logits are {logits.shape}, PyTorch's {reference.shape}")
    scale = float(np.abs(reference).max())
    diff = float(np.abs(logits.astype(np.float64) - reference).max()) / max(scale, 1e-30)
    if not diff <= ORT_TOLERANCE:
        raise SystemExit(
            f"onnxruntime's logits differ from PyTorch's: max |ort - torch| / max |torch| = "
            f"{diff:.3g} > {ORT_TOLERANCE:g} ({args.model}, batch {args.batch}, {path})"
        )
    result.update(
        engine="onnxruntime",
        onnxruntime=timing["onnxruntime"],
        providers=timing["providers"],
        exporter=EXPORTER,
        opset=ONNX_OPSET,
        onnx=path,
        exported=exported,
        max_rel_diff=diff,
        seconds=timing["seconds"],
        images_per_second=args.batch / timing["seconds"],
        times=timing["times"],
        peak_rss_mb=timing["peak_rss_mb"],
    )
    print(json.dumps(result))


def main():
    if sys.argv[1:2] == ["ort-run"]:
        ort_run(sys.argv[2:])
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["infer", "ort", "train", "import", "write-weights", "ops"])
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--file")
    parser.add_argument("--out")
    parser.add_argument("--spec")
    parser.add_argument(
        "--phase",
        choices=["step", "forward", "backward"],
        default="step",
        help="train: the part of each step timed (forward and loss; backward and update)",
    )
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    result = {"engine": "pytorch", "torch": torch.__version__, "threads": args.threads}
    device = torch.device(args.device)
    if device.type == "cuda":
        result["device"] = torch.cuda.get_device_name(device)

    if args.what == "ops":
        print(json.dumps([time_op(op, args.warmup, args.runs) for op in json.loads(args.spec)]))
        return
    if args.what == "ort":
        ort(args, result)
        return
    if args.what == "write-weights":
        torch.save(build(args.model).state_dict(), args.out)
        return
    if args.what == "import":
        model = build(args.model)
        start = time.perf_counter()
        state = torch.load(args.file, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
        result.update(seconds=time.perf_counter() - start, peak_rss_mb=peak_rss_mb())
        print(json.dumps(result))
        return

    model = build(args.model).to(device)
    x = torch.randn(args.batch, 3, args.size, args.size, device=device)
    if args.what == "infer":
        model.eval()

        def step():
            with torch.no_grad():
                # Read back, as burn's side does: on a GPU this waits for the forward.
                model(x).cpu()

    else:
        model.train()
        y = torch.randint(0, 1000, (args.batch,), device=device)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

        def step():
            """The whole step; the seconds of the phase timed."""
            sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
            start = time.perf_counter()
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.item()
            forward = time.perf_counter() - start
            loss.backward()
            optimizer.step()
            sync()
            total = time.perf_counter() - start
            return {"step": total, "forward": forward, "backward": total - forward}[args.phase]

    median, times = timed(
        step, args.warmup, args.runs, WARMUP_SECONDS if args.what == "infer" else 0.0
    )
    result.update(
        seconds=median,
        images_per_second=args.batch / median,
        times=times,
        peak_rss_mb=peak_rss_mb(),
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
