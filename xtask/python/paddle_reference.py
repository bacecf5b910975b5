"""PaddlePaddle side of the parity oracle: Paddle ResNets with random weights.

For each case: build the network in Paddle, with random weights and randomised BatchNorm
statistics, `paddle.save` its state_dict, and record the eval-mode logits on random inputs, in
OUT/<case>/:
  model.pdparams                 paddle.save(model.state_dict(), protocol=...)
  case<i>_input.f32, _logits.f32 raw little-endian float32, C order
  manifest.json                  the zoo model it loads into, shapes, layout, paddle version

Two layouts:
  vision_<depth>     paddle.vision.models.resnet<depth>
  tutorial_<depth>   the dygraph ResNet tutorial's network (ConvBNLayer / BottleneckBlock,
                     sublayers `conv`, `bb_{stage}_{block}`, `short`, `out`), written below with
                     the tutorial's names, for depth 50, 101, 152; `tutorial_50_c17` has
                     class_dim 17 and is saved with pickle protocol 2.

Each case has full-size inputs (2x3x224x224 and 1x3x160x128, role "full") and one small one
(1x3x64x48, role "small"), as reference.py's.
Eval-mode logits are computed in float64 from the float32 weights saved.

Usage: python paddle_reference.py --out DIR [CASE ...]   (default: every case)
"""
import argparse
import json
import math
import pathlib

import numpy as np
import paddle
import paddle.nn.functional as F
from paddle import nn

FORMAT = 1
FULL = [(2, 3, 224, 224), (1, 3, 160, 128)]
SMALL = [(1, 3, 64, 48)]


class ConvBNLayer(nn.Layer):
    def __init__(self, num_channels, num_filters, filter_size, stride=1, groups=1, act=None):
        super().__init__()
        self._conv = nn.Conv2D(
            in_channels=num_channels,
            out_channels=num_filters,
            kernel_size=filter_size,
            stride=stride,
            padding=(filter_size - 1) // 2,
            groups=groups,
            bias_attr=False,
        )
        self._batch_norm = nn.BatchNorm2D(num_filters)
        self.act = act

    def forward(self, inputs):
        y = self._batch_norm(self._conv(inputs))
        if self.act == "relu":
            y = F.relu(y)
        return y


class BottleneckBlock(nn.Layer):
    def __init__(self, num_channels, num_filters, stride, shortcut=True):
        super().__init__()
        self.conv0 = ConvBNLayer(num_channels, num_filters, 1, act="relu")
        self.conv1 = ConvBNLayer(num_filters, num_filters, 3, stride=stride, act="relu")
        self.conv2 = ConvBNLayer(num_filters, num_filters * 4, 1, act=None)
        if not shortcut:
            self.short = ConvBNLayer(num_channels, num_filters * 4, 1, stride=stride)
        self.shortcut = shortcut
        self._num_channels_out = num_filters * 4

    def forward(self, inputs):
        y = self.conv2(self.conv1(self.conv0(inputs)))
        short = inputs if self.shortcut else self.short(inputs)
        return F.relu(paddle.add(x=short, y=y))


class TutorialResNet(nn.Layer):
    def __init__(self, layers=50, class_dim=1):
        super().__init__()
        depth = {50: [3, 4, 6, 3], 101: [3, 4, 23, 3], 152: [3, 8, 36, 3]}[layers]
        num_filters = [64, 128, 256, 512]
        self.conv = ConvBNLayer(3, 64, 7, stride=2, act="relu")
        self.pool2d_max = nn.MaxPool2D(kernel_size=3, stride=2, padding=1)
        self.bottleneck_block_list = []
        num_channels = 64
        for block in range(len(depth)):
            shortcut = False
            for i in range(depth[block]):
                bottleneck_block = self.add_sublayer(
                    "bb_%d_%d" % (block, i),
                    BottleneckBlock(
                        num_channels=num_channels,
                        num_filters=num_filters[block],
                        stride=2 if i == 0 and block != 0 else 1,
                        shortcut=shortcut,
                    ),
                )
                num_channels = bottleneck_block._num_channels_out
                self.bottleneck_block_list.append(bottleneck_block)
                shortcut = True
        self.pool2d_avg = nn.AdaptiveAvgPool2D(output_size=1)
        stdv = 1.0 / math.sqrt(2048 * 1.0)
        self.out = nn.Linear(
            in_features=2048,
            out_features=class_dim,
            weight_attr=paddle.ParamAttr(initializer=nn.initializer.Uniform(-stdv, stdv)),
        )

    def forward(self, inputs):
        y = self.pool2d_max(self.conv(inputs))
        for bottleneck_block in self.bottleneck_block_list:
            y = bottleneck_block(y)
        y = self.pool2d_avg(y)
        y = paddle.reshape(y, [y.shape[0], -1])
        return self.out(y)


# case: (zoo model, builder, class count, pickle protocol)
CASES = {
    "vision_18": ("resnet18", lambda: paddle.vision.models.resnet18(), 1000, 4),
    "vision_50": ("resnet50", lambda: paddle.vision.models.resnet50(), 1000, 4),
    "vision_101": ("resnet101", lambda: paddle.vision.models.resnet101(), 1000, 4),
    "vision_152": ("resnet152", lambda: paddle.vision.models.resnet152(), 1000, 4),
    "tutorial_50": ("resnet50", lambda: TutorialResNet(50, 1000), 1000, 4),
    "tutorial_101": ("resnet101", lambda: TutorialResNet(101, 1000), 1000, 4),
    "tutorial_152": ("resnet152", lambda: TutorialResNet(152, 1000), 1000, 4),
    "tutorial_50_c17": ("resnet50", lambda: TutorialResNet(50, 17), 17, 2),
}


def residual_last_batchnorms(model):
    """The last BatchNorm of each residual branch, drawn small (as reference.py does) so that
    activations stay O(1) through 50 blocks."""
    last = set()
    for layer in model.sublayers():
        name = type(layer).__name__
        if name == "BottleneckBlock" and hasattr(layer, "conv2") and hasattr(layer.conv2, "_batch_norm"):
            last.add(id(layer.conv2._batch_norm))
        elif name == "BottleneckBlock" and hasattr(layer, "bn3"):
            last.add(id(layer.bn3))
        elif name == "BasicBlock":
            last.add(id(layer.bn2))
    return last


def randomise(model, rng):
    last = residual_last_batchnorms(model)
    for layer in model.sublayers():
        if isinstance(layer, nn.layer.norm._BatchNormBase):
            n = layer._mean.shape[0]
            scale = 0.2 if id(layer) in last else 1.0
            layer._mean.set_value((rng.standard_normal(n) * 0.2).astype("float32"))
            layer._variance.set_value((rng.random(n) + 0.5).astype("float32"))
            layer.weight.set_value(((rng.random(n) + 0.5) * scale).astype("float32"))
            layer.bias.set_value((rng.standard_normal(n) * 0.2).astype("float32"))
        elif isinstance(layer, nn.Linear):
            layer.bias.set_value((rng.standard_normal(layer.bias.shape[0]) * 0.1).astype("float32"))


def write_case(out, case, rng):
    zoo_model, build, num_classes, protocol = CASES[case]
    model = build()
    randomise(model, rng)
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    paddle.save(model.state_dict(), str(out / "model.pdparams"), protocol=protocol)
    parameters = sum(int(np.prod(p.shape)) for p in model.parameters() if not p.stop_gradient)
    # The same float32 weights, evaluated in float64.
    model.to(dtype="float64")
    cases = []
    for i, (role, shape) in enumerate([("full", s) for s in FULL] + [("small", s) for s in SMALL]):
        x = rng.standard_normal(shape).astype("float32")
        with paddle.no_grad():
            logits = model(paddle.to_tensor(x.astype("float64"))).numpy().astype("float32")
        x.tofile(out / f"case{i}_input.f32")
        logits.tofile(out / f"case{i}_logits.f32")
        cases.append({
            "role": role,
            "input": f"case{i}_input.f32",
            "input_shape": list(shape),
            "logits": f"case{i}_logits.f32",
            "logits_shape": list(logits.shape),
        })
    manifest = {
        "format": FORMAT,
        "case": case,
        "model": zoo_model,
        "layout": case.split("_")[0],
        "num_classes": num_classes,
        "protocol": protocol,
        "weights": "model.pdparams",
        "parameters": parameters,
        "paddle": paddle.__version__,
        "cases": cases,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))


def current(out):
    try:
        manifest = json.loads((out / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    return manifest.get("format") == FORMAT and manifest.get("paddle") == paddle.__version__ and all(
        (out / c["logits"]).is_file() for c in manifest["cases"]
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True, type=pathlib.Path)
    parser.add_argument("cases", nargs="*")
    args = parser.parse_args()
    paddle.set_device("cpu")
    for case in args.cases or list(CASES):
        if case not in CASES:
            raise SystemExit(f"unknown case {case}; known: {', '.join(CASES)}")
        out = args.out / case
        if current(out):
            continue
        seed = sum(map(ord, case))
        paddle.seed(seed)
        write_case(out, case, np.random.default_rng(seed))
        print(f"wrote paddle reference {case}", flush=True)


if __name__ == "__main__":
    main()
