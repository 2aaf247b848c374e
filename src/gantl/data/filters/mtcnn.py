"""MTCNN face detector (Zhang et al. 2016, "Joint Face Detection and Alignment using Multi-task
Cascaded Convolutional Networks"): three small CNNs, each a finer filter than the last.

Why a CNN cascade next to dlib's HOG detector: HOG's single frontal template misses faces that
curation must catch (three-quarter and profile views, grayscale photos, tight crops, small faces in
whole scenes), and its score cannot tell a frontal cat face from a human one. MTCNN was trained on
WIDER FACE's varied poses and scales and costs a few tens of milliseconds per image on one core
when the pyramid stops at the smallest face the filter cares about.

The cascade, as in the paper and its public ports:

1. **P-Net**, fully convolutional, slides a 12x12 window (stride 2) over an image pyramid whose
   scales step by ``factor`` (0.709, halving the area per two steps) from "the smallest face wanted
   is 12 px" down to "the short side is 12 px". Windows with face probability >= ``thresholds[0]``
   become boxes, refined by P-Net's regression, merged by NMS (IoU 0.5 per scale, 0.7 overall).
2. **R-Net** rescores each candidate cropped and resized to 24x24 (>= ``thresholds[1]``, NMS 0.7).
3. **O-Net** rescores at 48x48 (>= ``thresholds[2]``) and regresses the final box; a last NMS uses
   intersection over the *smaller* box (0.7), so a box inside a larger face box is dropped.

Every stage squares its boxes before cropping; crops reaching past the image border are padded
with zeros, as the original implementation does (so a tightly cropped face still fills the window).
Inputs are RGB scaled by ``(x - 127.5) / 128``. The weights are the MIT-licensed conversion that
ships with facenet-pytorch (see ``weights/README.md``); those networks were ported from a
TensorFlow graph that read images transposed, which is why the dense layers flatten their input in
(width, height, channel) order. This module is our own code; only the layer names and shapes
follow that checkpoint so it loads strictly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

#: The converted weights shipped with the package (P-, R- and O-Net under the prefixes pnet., rnet., onet.).
WEIGHTS = Path(__file__).with_name("weights") / "mtcnn.safetensors"


def _flatten_wh(x: torch.Tensor) -> torch.Tensor:
    """Flatten ``[N, C, H, W]`` in (W, H, C) order, the order the converted dense weights expect."""
    return x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)


class PNet(nn.Module):
    """Proposal net: 12x12 receptive field, stride 2; returns (box offsets [N,4,h,w], face probability [N,h,w])."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, 1)  # face / not face logits
        self.conv4_2 = nn.Conv2d(32, 4, 1)  # box offsets in units of the window side

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), torch.softmax(self.conv4_1(x), dim=1)[:, 1]


class RNet(nn.Module):
    """Refinement net on 24x24 crops; returns (box offsets [N,4], face probability [N])."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu4(self.dense4(_flatten_wh(self.prelu3(self.conv3(x)))))
        return self.dense5_2(x), torch.softmax(self.dense5_1(x), dim=1)[:, 1]


class ONet(nn.Module):
    """Output net on 48x48 crops; returns (box offsets [N,4], five landmarks [N,10], face probability [N])."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu5(self.dense5(_flatten_wh(self.prelu4(self.conv4(x)))))
        return self.dense6_2(x), self.dense6_3(x), torch.softmax(self.dense6_1(x), dim=1)[:, 1]


class MTCNNNets(nn.Module):
    """The three networks under one module, so one strict ``load_state_dict`` checks all of them."""

    def __init__(self) -> None:
        super().__init__()
        self.pnet, self.rnet, self.onet = PNet(), RNet(), ONet()


def load_nets(path: str | Path = WEIGHTS) -> MTCNNNets:
    """The networks with their weights, strictly loaded (a missing or extra tensor is an error), in eval mode."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"MTCNN weights not found at {path}; reinstall gantl or run "
                                "benchmarks/convert_mtcnn_weights.py")
    nets = MTCNNNets()
    nets.load_state_dict(load_file(str(path)), strict=True)
    # channels_last (NHWC): oneDNN's direct convolutions for these thin layers; R-Net and O-Net run
    # ~3.5x faster on one core than in the default NCHW layout (outputs move by ~1e-6)
    return nets.eval().requires_grad_(False).to(memory_format=torch.channels_last)


# ----------------------------------------------------------------------------- box helpers (numpy)


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, *, use_min: bool = False) -> np.ndarray:
    """Greedy non-maximum suppression; indices kept, best first.

    Overlap is IoU, or with ``use_min`` intersection over the smaller box (drops boxes inside a kept one).
    """
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    x0, y0, x1, y1 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    area = np.maximum(x1 - x0, 0) * np.maximum(y1 - y0, 0)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        iw = np.maximum(0.0, np.minimum(x1[i], x1[rest]) - np.maximum(x0[i], x0[rest]))
        ih = np.maximum(0.0, np.minimum(y1[i], y1[rest]) - np.maximum(y0[i], y0[rest]))
        inter = iw * ih
        denom = np.minimum(area[i], area[rest]) if use_min else area[i] + area[rest] - inter
        order = rest[inter <= threshold * np.maximum(denom, 1e-9)]
    return np.asarray(keep, dtype=np.int64)


def square(boxes: np.ndarray) -> np.ndarray:
    """Grow each box to a square around its centre (the networks were trained on square crops)."""
    out = boxes.copy()
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out[:, 0] = boxes[:, 0] + (w - side) / 2
    out[:, 1] = boxes[:, 1] + (h - side) / 2
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def regress(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Apply the networks' box offsets (fractions of the box's width/height) to ``[x0, y0, x1, y1]``."""
    w = (boxes[:, 2] - boxes[:, 0])[:, None]
    h = (boxes[:, 3] - boxes[:, 1])[:, None]
    return boxes[:, :4] + offsets * np.concatenate([w, h, w, h], axis=1)


def crops(image: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """``[N, size, size, 3]`` float32 crops of ``image`` (HxWx3 uint8), zero outside the image."""
    import cv2

    h, w = image.shape[:2]
    out = np.zeros((len(boxes), size, size, 3), np.float32)
    for k, (x0, y0, x1, y1) in enumerate(np.round(boxes[:, :4]).astype(np.int64)):
        bw, bh = x1 - x0, y1 - y0
        if bw < 1 or bh < 1:
            continue
        patch = np.zeros((bh, bw, 3), np.uint8)
        sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if sx1 <= sx0 or sy1 <= sy0:
            continue
        patch[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = image[sy0:sy1, sx0:sx1]
        interp = cv2.INTER_AREA if bw > size else cv2.INTER_LINEAR
        out[k] = cv2.resize(patch, (size, size), interpolation=interp)
    return out


def _to_input(batch: np.ndarray) -> torch.Tensor:
    """``[N, H, W, 3]`` RGB 0-255 -> the networks' ``[N, 3, H, W]`` input in [-1, 1], channels_last in memory."""
    x = torch.from_numpy(np.ascontiguousarray((batch - 127.5) * 0.0078125, dtype=np.float32))
    return x.permute(0, 3, 1, 2)  # an NHWC buffer viewed as NCHW is exactly torch's channels_last layout


# ----------------------------------------------------------------------------- the cascade


@dataclass
class Detection:
    """One face: box ``[x0, y0, x1, y1]`` in pixels of the detector's input, and its O-Net probability."""

    box: tuple[float, float, float, float]
    prob: float


class MTCNN:
    """P-Net -> R-Net -> O-Net on one RGB image; ``detect`` returns faces of at least ``min_face`` px.

    Runs in the calling thread with torch's current thread settings (curation workers choose them);
    nothing here changes them. Only the ``max_proposals`` most probable P-Net boxes go on to R-Net:
    textured photos (fur, foliage) yield several hundred, and R-Net on all of them cost more than the
    whole pyramid, while a real face's windows are among P-Net's most confident.
    """

    def __init__(self, nets: MTCNNNets | None = None, *, thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
                 factor: float = 0.709, max_proposals: int = 100) -> None:
        if not 0 < factor < 1:
            raise ValueError(f"MTCNN pyramid factor must be in (0, 1), got {factor}")
        self.max_proposals = max_proposals
        self.nets = nets if nets is not None else load_nets()
        self.thresholds = thresholds
        self.factor = factor

    def scales(self, h: int, w: int, min_face: float) -> list[float]:
        """Pyramid scales: the first maps a ``min_face`` px face to P-Net's 12 px window, then x ``factor``."""
        if min_face <= 0:
            raise ValueError(f"min_face must be positive, got {min_face}")
        scale = 12.0 / min_face  # > 1 (upsampling) only when asked for faces under 12 px
        out = []
        while min(h, w) * scale >= 12:
            out.append(scale)
            scale *= self.factor
        return out

    @torch.inference_mode()
    def stage1(self, image: np.ndarray, min_face: float) -> np.ndarray:
        """P-Net proposals ``[N, 5]`` (box, probability), regressed and squared."""
        import cv2

        h, w = image.shape[:2]
        found = []
        level = image
        for scale in self.scales(h, w, min_face):
            sw, sh = int(np.ceil(w * scale)), int(np.ceil(h * scale))
            interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            # each level from the previous one: area-averaging a 0.709x smaller source is ~3x cheaper
            level = cv2.resize(level, (sw, sh), interpolation=interp)
            reg, prob = self.nets.pnet(_to_input(level[None].astype(np.float32)))
            prob, reg = prob[0].numpy(), reg[0].numpy()
            ys, xs = np.nonzero(prob >= self.thresholds[0])
            if not len(ys):
                continue
            # window (x, y) of the stride-2 map covers [2x, 2x + 12) at this scale
            boxes = np.stack([2 * xs, 2 * ys, 2 * xs + 12, 2 * ys + 12], axis=1).astype(np.float32) / scale
            cand = np.concatenate([boxes, prob[ys, xs][:, None], reg[:, ys, xs].T], axis=1)
            found.append(cand[nms(cand[:, :4], cand[:, 4], 0.5)])
        if not found:
            return np.zeros((0, 5), np.float32)
        cand = np.concatenate(found)
        cand = cand[nms(cand[:, :4], cand[:, 4], 0.7)[:self.max_proposals]]  # best first
        return np.concatenate([square(regress(cand[:, :4], cand[:, 5:9])), cand[:, 4:5]], axis=1)

    @torch.inference_mode()
    def refine(self, image: np.ndarray, boxes: np.ndarray, *, last: bool) -> np.ndarray:
        """R-Net (``last=False``, 24 px) or O-Net (``last=True``, 48 px) rescoring and box regression."""
        if not len(boxes):
            return boxes
        net, size, thr = (self.nets.onet, 48, self.thresholds[2]) if last else (self.nets.rnet, 24, self.thresholds[1])
        out = net(_to_input(crops(image, boxes, size)))
        reg, prob = out[0].numpy(), out[-1].numpy()
        ok = prob >= thr
        boxes, reg, prob = boxes[ok], reg[ok], prob[ok]
        if not last:
            keep = nms(boxes[:, :4], prob, 0.7)
            return np.concatenate([square(regress(boxes[keep], reg[keep])), prob[keep, None]], axis=1)
        final = np.concatenate([regress(boxes, reg), prob[:, None]], axis=1)
        return final[nms(final[:, :4], final[:, 4], 0.7, use_min=True)]

    def detect(self, image: np.ndarray, min_face: float = 20.0) -> list[Detection]:
        """Faces in ``image`` (HxWx3 uint8 RGB; HxW gray is replicated), best first."""
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"MTCNN wants an HxWx3 uint8 RGB image, got {image.shape} {image.dtype}")
        image = np.ascontiguousarray(image)
        boxes = self.refine(image, self.refine(image, self.stage1(image, min_face), last=False), last=True)
        return [Detection(tuple(float(v) for v in b[:4]), float(b[4])) for b in boxes]  # type: ignore[arg-type]
