"""PyTorch reference modules of the zoo's own models, the ones torchvision does not have.

Each is written from the same description as its Rust twin (see the doc comments in
model-zoo/src), with the same state_dict keys, so `cargo xtask parity` checks them exactly as it
checks torchvision's models: random weights, randomised BatchNorm, logits compared.
"""
import torch
from torch import nn
from torchvision.models.googlenet import BasicConv2d, Inception


class LeNet5(nn.Module):
    """PyTorch's CIFAR-10 tutorial LeNet-5: ReLU after each conv and hidden linear layer,
    2x2 max-pools, and an adaptive 5x5 average pool (the identity at 32x32)."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.avgpool = nn.AdaptiveAvgPool2d((5, 5))
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x):
        x = self.pool(torch.relu(self.conv1(x)))
        x = self.pool(torch.relu(self.conv2(x)))
        x = torch.flatten(self.avgpool(x), 1)
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        return self.fc3(x)


class AlexNetHalf(nn.Module):
    """torchvision's AlexNet layout at half width: 48-128-192-192-128, classifier 2048 wide."""

    def __init__(self, num_classes=1000, dropout=0.5):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 48, kernel_size=11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(48, 128, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(128, 192, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(192, 192, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(192, 128, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = classifier(128 * 6 * 6, 2048, num_classes, dropout)

    def forward(self, x):
        x = torch.flatten(self.avgpool(self.features(x)), 1)
        return self.classifier(x)


def classifier(features, hidden, num_classes, dropout):
    return nn.Sequential(
        nn.Dropout(p=dropout),
        nn.Linear(features, hidden),
        nn.ReLU(inplace=True),
        nn.Dropout(p=dropout),
        nn.Linear(hidden, hidden),
        nn.ReLU(inplace=True),
        nn.Linear(hidden, num_classes),
    )


class AlexNetCifar(nn.Module):
    """AlexNet for 32x32: per stage a 3x3 conv (padding 1), a 2x2 max-pool (stages 1, 2 and 5),
    ReLU and BatchNorm; channels 48-128-192-192-128; FC 2048 -> 2048 -> classes, dropout 0.5."""

    def __init__(self, num_classes=10, dropout=0.5):
        super().__init__()
        layers = []
        c_in = 3
        for stage, c_out in enumerate([48, 128, 192, 192, 128]):
            layers.append(nn.Conv2d(c_in, c_out, kernel_size=3, padding=1))
            if stage in (0, 1, 4):
                layers.append(nn.MaxPool2d(2))
            layers += [nn.ReLU(inplace=True), nn.BatchNorm2d(c_out)]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((4, 4))
        self.classifier = classifier(128 * 4 * 4, 2048, num_classes, dropout)

    def forward(self, x):
        x = torch.flatten(self.avgpool(self.features(x)), 1)
        return self.classifier(x)


class Vgg16Cifar(nn.Module):
    """VGG-16's 13 convolutions with BatchNorm (torchvision's vgg16_bn features), pooled to 1x1,
    classifier 512 -> 4096 -> 4096 -> classes with dropout."""

    def __init__(self, num_classes=10, dropout=0.5):
        super().__init__()
        from torchvision.models.vgg import cfgs, make_layers

        self.features = make_layers(cfgs["D"], batch_norm=True)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.classifier = nn.Sequential(
            nn.Linear(512, 4096),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        x = torch.flatten(self.avgpool(self.features(x)), 1)
        return self.classifier(x)


class GoogLeNetCifar(nn.Module):
    """GoogLeNet's inception stack for 32x32: a 3x3 BasicConv2d stem to 192 channels, blocks
    3a-5b with max-pools 3 and 4 (ceil mode), no aux heads, adaptive average pooling,
    dropout 0.4, 1024 -> classes."""

    def __init__(self, num_classes=10, dropout=0.4):
        super().__init__()
        self.conv1 = BasicConv2d(3, 192, kernel_size=3, padding=1)
        self.inception3a = Inception(192, 64, 96, 128, 16, 32, 32)
        self.inception3b = Inception(256, 128, 128, 192, 32, 96, 64)
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception4a = Inception(480, 192, 96, 208, 16, 48, 64)
        self.inception4b = Inception(512, 160, 112, 224, 24, 64, 64)
        self.inception4c = Inception(512, 128, 128, 256, 24, 64, 64)
        self.inception4d = Inception(512, 112, 144, 288, 32, 64, 64)
        self.inception4e = Inception(528, 256, 160, 320, 32, 128, 128)
        self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.inception5a = Inception(832, 256, 160, 320, 32, 128, 128)
        self.inception5b = Inception(832, 384, 192, 384, 48, 128, 128)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(1024, num_classes)

    def forward(self, x):
        x = self.conv1(x)
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        for block in (self.inception4a, self.inception4b, self.inception4c, self.inception4d):
            x = block(x)
        x = self.maxpool4(self.inception4e(x))
        x = self.inception5b(self.inception5a(x))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(self.dropout(x))


# name -> (constructor, class count, input side it is designed for)
MODELS = {
    "lenet5": (LeNet5, 10, 32),
    "alexnet_half": (AlexNetHalf, 1000, 224),
    "alexnet_cifar": (AlexNetCifar, 10, 32),
    "vgg16_cifar": (Vgg16Cifar, 10, 32),
    "googlenet_cifar": (GoogLeNetCifar, 10, 32),
}


def gmacs(model, size):
    """Giga multiply-accumulates of one size x size image, as torchvision's `_ops`:
    FlopCounterMode's FLOPs (2 per MAC) halved, rounded to 3 decimals."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model.eval()(torch.zeros(1, 3, size, size))
    return round(counter.get_total_flops() / 2 / 1e9, 3)


def describe(name):
    """Registry metadata of a zoo model: parameters and GMACs."""
    make, num_classes, size = MODELS[name]
    model = make(num_classes=num_classes)
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "gflops": gmacs(model, size),
        "image_size": size,
        "num_classes": num_classes,
        "weights": [],
    }
