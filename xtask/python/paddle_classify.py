"""Paddle's top-5 for a `paddle.vision.models` ResNet `.pdparams` on images, preprocessed as
`examples/classify` and torchvision do (PIL: shorter side to 256 with antialiased bilinear,
center crop 224, ImageNet mean/std), to compare with `classify --weights FILE.pdparams`.

Usage: python paddle_classify.py --model resnet50 --weights model.pdparams IMAGE...
"""
import argparse

import numpy as np
import paddle
from PIL import Image

MEAN = np.array([0.485, 0.456, 0.406], dtype="float32")
STD = np.array([0.229, 0.224, 0.225], dtype="float32")


def preprocess(path, resize=256, crop=224):
    image = Image.open(path).convert("RGB")
    w, h = image.size
    if w <= h:
        size = (resize, int(resize * h / w))
    else:
        size = (int(resize * w / h), resize)
    image = image.resize(size, Image.BILINEAR, reducing_gap=None)
    w, h = image.size
    top, left = int(round((h - crop) / 2.0)), int(round((w - crop) / 2.0))
    image = image.crop((left, top, left + crop, top + crop))
    x = (np.asarray(image, dtype="float32") / 255.0 - MEAN) / STD
    return x.transpose(2, 0, 1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--weights", required=True)
    parser.add_argument("images", nargs="+")
    args = parser.parse_args()
    paddle.set_device("cpu")
    model = getattr(paddle.vision.models, args.model)()
    model.set_state_dict(paddle.load(args.weights))
    model.eval()
    for path in args.images:
        x = paddle.to_tensor(preprocess(path)[None])
        with paddle.no_grad():
            probs = paddle.nn.functional.softmax(model(x), axis=1).numpy()[0]
        top = np.argsort(-probs)[:5]
        print(path)
        for i in top:
            print(f"  {probs[i] * 100:6.2f}%  class {i}")


if __name__ == "__main__":
    main()
