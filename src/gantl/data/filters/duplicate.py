"""``duplicate``: perceptual-hash near-duplicates, mirrored copies included; the best copy is kept.

Each image gets a 64-bit pHash (DCT of a 32x32 grayscale thumbnail, sign of the low
frequencies) of itself and of its mirror image. Two images are duplicates when the Hamming
distance between one's hash and the other's plain *or mirrored* hash is at most the threshold;
duplicates are grouped transitively (union-find). In each group one copy is kept: among the
copies no other filter rejects, the largest of those about as sharp as the sharpest (see
``decide``): so the original beats its half-size, blurred or re-compressed copies.

The score written to the manifest is the distance to the nearest other image (64 = nothing
alike), so the report can show pairs just inside and just outside the threshold.

Default threshold 6 of 64 bits: on filterbench, half-size, JPEG-q30, +20% brightness and
mirrored copies are all within 2 of their original, while the closest pair of *different*
photos is 14 apart. The number of unrelated pairs grows with N^2, so a threshold that is safe on
60 images can pair strangers among thousands: on cats-raw.zip (2,000 photos) every pair at
distance 0-2 is a true copy and every pair at 8 is two different cats in a similar pose, so 6 is
the largest safe value there. A 5% crop or a 5-degree rotation moves the hash by 6-18, so those
are caught only sometimes: a known limit of global perceptual hashes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from gantl.config import option
from gantl.data.filters.base import Direction, Views

NO_MATCH = 64
#: Copies at least this share of the group's best blur score count as "as sharp". The blur score
#: (edge sharpness, 1 / edge width) ignores contrast; on filterbench a re-saved, brightened,
#: flipped, cropped or rotated copy scores 0.71-1.23x its original (a half-size copy is sharper
#: per pixel), a sigma-1.5 blurred copy at most 0.62x, so 2/3 keeps the original over its edited
#: copies and still never prefers a visibly blurred one.
SHARP_ENOUGH = 0.67


@dataclass
class DuplicateConfig:
    enabled: bool = option(True, help="Reject near-duplicates (also mirrored), keeping the best copy.")
    threshold: float = option(6, min=0, max=64, help="Largest pHash Hamming distance (of 64 bits) still a duplicate.")
    mirror: bool = option(True, help="Also match mirror images.")


#: The 8 lowest-frequency rows of the unnormalised 32-point DCT-II (scipy.fftpack.dct's default):
#: pHash keeps only the top-left 8x8 of the 2-D DCT, so two small matrix products give it without
#: importing scipy (0.6 s per worker process).
_DCT8 = 2.0 * np.cos(np.pi * np.arange(8)[:, None] * (2 * np.arange(32)[None, :] + 1) / 64.0)


def _phash_hex(pixels: np.ndarray) -> str:
    """``str(imagehash.phash(img))`` from ``img``'s 32x32 Lanczos luma: DCT, top-left 8x8, above the median."""
    low = _DCT8 @ np.asarray(pixels, dtype=np.float64) @ _DCT8.T
    bits = (low > np.median(low)).reshape(-1)
    return f"{int(np.packbits(bits).view('>u8')[0]):016x}"


def phash_pair(image: Image.Image | Views) -> tuple[str, str]:
    """Hex pHash of the image and of its mirror image (bit-identical to ``imagehash.phash``).

    The image is reduced to 128 px first (pHash looks at 32x32; ~10x faster). The mirror's hash
    comes from the mirrored 32x32 thumbnail: Pillow's Lanczos reduction is left-right symmetric,
    so this equals hashing the mirrored image (checked on all 2,185 cats-raw and filterbench
    images) at half the cost.
    """
    gray = Image.fromarray(Views.of(image).gray(128), "L")
    small = np.asarray(gray.resize((32, 32), Image.Resampling.LANCZOS))
    return _phash_hex(small), _phash_hex(small[:, ::-1])


def _popcount(x: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x)
    table = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)  # pragma: no cover
    return table[x.view(np.uint8)].reshape(*x.shape, 8).sum(-1)  # pragma: no cover


def distance_matrix(hashes: Sequence[int], mirrors: Sequence[int] | None) -> np.ndarray:
    """Pairwise Hamming distances [N, N] (min over plain and mirrored), diagonal set to 64."""
    h = np.array([int(v) for v in hashes], dtype=np.uint64)
    d = _popcount(h[:, None] ^ h[None, :]).astype(np.int16)
    if mirrors is not None:
        m = np.array([int(v) for v in mirrors], dtype=np.uint64)
        d = np.minimum(d, _popcount(h[:, None] ^ m[None, :]).astype(np.int16))
        d = np.minimum(d, d.T)
    np.fill_diagonal(d, NO_MATCH)
    return d


@dataclass
class DuplicateDecision:
    """Per image: nearest distance (the score) and the index of the copy kept (None = it is kept)."""

    distance: list[int]
    duplicate_of: list[int | None]


class DuplicateFilter:
    """Set-level filter: needs every image's hash, so it decides after all images are scored."""

    name = "duplicate"
    direction: Direction = "above"  # only for drawing; the decision is group-based (see decide)
    description = "pHash Hamming distance to the nearest other image (mirrors included)"

    def __init__(self, cfg: DuplicateConfig) -> None:
        self.threshold = cfg.threshold
        self.mirror = cfg.mirror

    def decide(self, hashes: Sequence[tuple[str, str] | None], clean: Sequence[bool],
               sharpness: Sequence[float], pixels: Sequence[int]) -> DuplicateDecision:
        """Group near-duplicates and pick one keeper per group.

        ``hashes[i]`` is ``(phash_hex, mirrored_phash_hex)`` or None for images that could not be
        decoded. The keeper is chosen among the group's ``clean`` copies (no other filter rejects
        them) if there are any; among those, copies within ``SHARP_ENOUGH`` of the sharpest count
        as equally sharp, and the one with most pixels wins, then the sharper.
        """
        n = len(hashes)
        distance = [NO_MATCH] * n
        duplicate_of: list[int | None] = [None] * n
        idx = [i for i, h in enumerate(hashes) if h is not None]
        if len(idx) < 2:
            return DuplicateDecision(distance, duplicate_of)
        plain = [int(hashes[i][0], 16) for i in idx]  # type: ignore[index]
        mirrored = [int(hashes[i][1], 16) for i in idx] if self.mirror else None  # type: ignore[index]
        d = distance_matrix(plain, mirrored)
        nearest = d.min(axis=1)
        parent = list(range(len(idx)))

        def find(a: int) -> int:
            while parent[a] != a:
                parent[a] = parent[parent[a]]
                a = parent[a]
            return a

        rows, cols = np.nonzero(np.triu(d <= self.threshold, k=1))
        for a, b in zip(rows.tolist(), cols.tolist(), strict=True):
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[rb] = ra
        groups: dict[int, list[int]] = {}
        for k in range(len(idx)):
            groups.setdefault(find(k), []).append(k)
        for k, i in enumerate(idx):
            distance[i] = int(nearest[k])
        for members in groups.values():
            if len(members) < 2:
                continue
            pool = [k for k in members if clean[idx[k]]] or members
            sharpest = max(sharpness[idx[k]] for k in pool)
            pool = [k for k in pool if sharpness[idx[k]] >= SHARP_ENOUGH * sharpest]
            keeper = max(pool, key=lambda k: (pixels[idx[k]], sharpness[idx[k]], -k))
            for k in members:
                if k != keeper:
                    duplicate_of[idx[k]] = idx[keeper]
        return DuplicateDecision(distance, duplicate_of)


def hamming(a: tuple[str, str], b: tuple[str, str], mirror: bool = True) -> int:
    """Distance between two images' (plain, mirrored) hashes, mirrors included when asked."""
    d = bin(int(a[0], 16) ^ int(b[0], 16)).count("1")
    if mirror:
        d = min(d, bin(int(a[0], 16) ^ int(b[1], 16)).count("1"), bin(int(a[1], 16) ^ int(b[0], 16)).count("1"))
    return d
