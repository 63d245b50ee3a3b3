"""Shot encoder f_ENC: a torchvision ResNet without its classifier (method.md §5.1).

The class reuses torchvision's ``ResNet`` blocks, ``_make_layer`` and forward, so parameter names stay
torchvision's (``conv1``, ``bn1``, ``layer1.0.conv1``, ``layerN.0.downsample.{0,1}``) and official BaSSL
checkpoints load unchanged. Only the stem/stage widths are a parameter, which gives the CPU-sized
``resnet_tiny`` from the same code path.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

from bassl.config import ConfigError, EncoderConfig
from bassl.errors import DataError

# arch -> (block, blocks per stage, stem width). Output dim = 8 * width * block.expansion.
ARCHS: dict[str, tuple[type[BasicBlock] | type[Bottleneck], list[int], int]] = {
    "resnet50": (Bottleneck, [3, 4, 6, 3], 64),  # 2048-d, the paper
    "resnet18": (BasicBlock, [2, 2, 2, 2], 64),  # 512-d
    "resnet_tiny": (BasicBlock, [1, 1, 1, 1], 16),  # 128-d, for tests and CPU demos
}


class ShotEncoder(ResNet):
    """ResNet trunk + global average pool: ``[N, 3, H, W] -> [N, feature_dim]``."""

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        layers: list[int],
        width: int = 64,
        zero_init_residual: bool = True,
    ) -> None:
        nn.Module.__init__(self)  # torchvision's __init__ hard-codes width 64 and an fc layer
        self._norm_layer = nn.BatchNorm2d
        self.inplanes, self.dilation, self.groups, self.base_width = width, 1, 1, 64
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(block, width * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(block, width * 8, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Identity()  # no classifier; parameter-free, so no fc.* keys
        self.feature_dim = width * 8 * block.expansion
        self._init_weights(zero_init_residual)

    def _init_weights(self, zero_init_residual: bool) -> None:
        # torchvision's init; zero-init residual makes every block start as the identity (Goyal et al. 2017).
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.zeros_(m.bn3.weight)
                elif isinstance(m, BasicBlock):
                    nn.init.zeros_(m.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._forward_impl(x)  # [N, 3, H, W] -> [N, D]


# arch -> torchvision's ImageNet weights (the enum and member of torchvision.models), for model.encoder.init=imagenet
IMAGENET = {"resnet50": ("ResNet50_Weights", "IMAGENET1K_V1"), "resnet18": ("ResNet18_Weights", "IMAGENET1K_V1")}


def imagenet_state(arch: str) -> dict[str, torch.Tensor]:
    """torchvision's ImageNet weights for ``arch`` through its own weights API and cache (``$TORCH_HOME/hub/
    checkpoints``), without the classifier. A file that is not cached and cannot be fetched is an error naming both."""
    from urllib.error import URLError

    from torchvision import models

    if arch not in IMAGENET:
        raise ConfigError(f"model.encoder.init=imagenet: torchvision has ImageNet weights for {', '.join(IMAGENET)}, "
                          f"not {arch}; set model.encoder.arch or model.encoder.init=random")
    enum, member = IMAGENET[arch]
    weights = getattr(models, enum)[member]
    cache = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    try:
        state = weights.get_state_dict(progress=False)
    except (URLError, OSError, RuntimeError) as e:
        raise DataError(f"model.encoder.init=imagenet: {cache} is not there and {weights.url} could not be fetched "
                        f"({type(e).__name__}: {e}); download that file where there is a network and copy it to "
                        f"{cache} (or point TORCH_HOME at a directory holding hub/checkpoints/{cache.name})") from e
    return {k: v for k, v in state.items() if not k.startswith("fc.")}


def build_encoder(cfg: EncoderConfig, initialise: bool = True) -> ShotEncoder:
    """The shot encoder named by ``cfg.arch``: random init (the paper) or, with ``cfg.init=imagenet``, torchvision's
    ImageNet weights. ``initialise=False`` skips loading those when saved weights are loaded right after."""
    if cfg.arch not in ARCHS:
        raise ValueError(f"model.encoder.arch: {cfg.arch!r} is unknown; choose one of {', '.join(ARCHS)}")
    block, layers, width = ARCHS[cfg.arch]
    encoder = ShotEncoder(block, layers, width=width, zero_init_residual=cfg.zero_init_residual)
    if initialise and cfg.init == "imagenet":
        encoder.load_state_dict(imagenet_state(cfg.arch), strict=True)
    return encoder
