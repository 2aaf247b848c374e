"""Build the blur, text and face development set of issue 13 from images available offline; writes ``labels.csv``.

Usage: python benchmarks/build_filter_devset.py [--out /tmp/filter-devset] [--cats 120] [--seed 0]
                                                [--skimage-data DIR]

Nothing is committed: the set is rebuilt from the shared datasets and from Debian icon themes
(``apt-get install adwaita-icon-theme gnome-icon-theme moka-icon-theme``). Every row says where the
image came from and under which licence. Kinds (``blurry`` is the label):

- ``photo``: sharp photos, filterbench/photos (minus the motion-blurred clock) and a seeded sample of
  cats-raw.zip at least 300 px, reduced to a 512 px long side like filterbench's variants.  blurry=0
- ``chip``: the same photos reduced to a 128-200 px long side (small face chips, thumbnails).  blurry=0
- ``defocus``: a photo Gaussian-blurred with sigma 2, 3 or 4 px at 512 px.  blurry=1
- ``motion``: a photo convolved with a linear motion kernel 9-21 px long at a random angle.  blurry=1
- ``icon``: a 256/512 px theme icon over a plain or gradient background, reduced to 128 or 256 px.  blurry=0
- ``flat``: synthetic flat-shaded art (antialiased polygons, ellipses, outlines) at 128 px.  blurry=0

Text kinds (``has_text`` is the label; empty where unknown, e.g. whole cats-raw photos):

- ``caption``: a sharp photo with 1-4 words drawn on it (DejaVu/Liberation fonts from Debian,
  4-12% of the image height, outlined or shadowed, up to 12 degrees rotated).  has_text=1
- ``sign``: 1-3 lines of text on a coloured plate pasted into a photo.  has_text=1
- ``fbtext``: filterbench photos labelled with prominent text, as they are.  has_text=1
- ``fur``: a 30-60% crop of a cats-raw photo (fur, whiskers: the texture OCR confuses).  has_text=0
- ``hair``: the top half of a filterbench portrait without text (hair, jewellery).  has_text=0
- ``plain``: filterbench photos labelled without text, as they are.  has_text=0
- ``hard``: cats-raw photos the OCR flagged, labelled by eye (``HARD_TEXT``): fur, cat faces
  and eyes read as 2-letter words (has_text=0), and weak real text (has_text=1).

Face kinds (``has_face`` is the label: a human face covering at least ~5% of the short side, the
face filter's default threshold; cat faces are not human faces):

- ``fbface`` / ``fbnoface``: filterbench photos with / without faces, as they are (640 px).  has_face=1 / 0
- ``gray``: the face photos in grayscale, saved as 1-channel JPEG.  has_face=1
- ``flip`` / ``rot``: the face photos mirrored / rotated 10-15 degrees either way.  has_face=1
- ``reenc``: the face photos re-encoded as BMP (RGB) or PGM (grayscale).  has_face=1
- ``lfw``: the 100 tight 25x25 grayscale face crops of scikit-image's ``lfw_subset`` (LFW), enlarged to
  100 px (needs the wheel's ``skimage/data``: ``pip download scikit-image --no-deps`` and unzip, or an
  installed scikit-image).  has_face=1
- ``small``: a face in a whole scene: an lfw crop (8-16% of the scene's short side) or a filterbench face
  photo (sized so that its largest face is 7-15% of the short side) pasted into a cats-raw photo.  has_face=1
- ``cat``: cats-raw photos as they are (640 px); ``HARD_FACE`` labels by eye those where a detector fired
  (people are positives, cat faces negatives).  has_face=0 (or 1 per ``HARD_FACE``)
- ``cifar``: CIFAR-10 test images (no person class) enlarged to 128 px.  has_face=0
- ``icon`` and ``flat`` rows above, and ``fur`` crops, also carry has_face=0 (icons named like faces or
  avatars excluded).

Sizes of faces inside filterbench photos (for ``small``) come from running both detectors on the
originals (the larger of MTCNN's and HOG's largest face), only to choose the paste scale; the label
itself is filterbench's.

Blur is applied at 512 px (the scale filterbench's sigmas are defined at); ``chip`` and the
flat kinds test the other side of the issue: small sharp images must not be called blurry.
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

ICON_THEMES = {  # theme folder -> (sizes to take, licence from its Debian copyright file)
    "Moka": (["256x256"], "CC-BY-SA-4.0 or GPL-3+ (Debian moka-icon-theme)"),
    "Adwaita": (["512x512", "256x256"], "CC-BY-SA-3.0 or LGPL-3 (Debian adwaita-icon-theme)"),
    "gnome": (["256x256"], "GPL-2+/GPL-3+ (Debian gnome-icon-theme)"),
}


def reduce(img: Image.Image, long_side: int) -> Image.Image:
    w, h = img.size
    s = long_side / max(w, h)
    if s >= 1:
        return img
    return img.resize((max(1, round(w * s)), max(1, round(h * s))), Image.Resampling.LANCZOS)


def motion_kernel(length: int, angle_deg: float) -> np.ndarray:
    """A normalised line of ``length`` px at ``angle_deg``, antialiased by 4x supersampling."""
    n = length + 2
    big = Image.new("L", (4 * n, 4 * n), 0)
    c = 2 * n
    a = np.deg2rad(angle_deg)
    dx, dy = 2 * (length - 1) * np.cos(a), 2 * (length - 1) * np.sin(a)
    ImageDraw.Draw(big).line([(c - dx, c - dy), (c + dx, c + dy)], fill=255, width=4)
    k = np.asarray(big.resize((n, n), Image.Resampling.BOX), np.float32)
    return k / k.sum()


def motion_blur(img: Image.Image, length: int, angle: float) -> Image.Image:
    import cv2

    arr = np.asarray(img.convert("RGB"), np.float32)
    out = cv2.filter2D(arr, -1, motion_kernel(length, angle), borderType=cv2.BORDER_REFLECT)
    return Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8))


def flat_art(rng: random.Random, size: int = 128) -> Image.Image:
    """Random flat-shaded shapes drawn at 4x and box-reduced: sharp, antialiased edges, no texture."""
    s = 4 * size
    palette = [tuple(rng.randrange(256) for _ in range(3)) for _ in range(6)]
    img = Image.new("RGB", (s, s), palette[0])
    d = ImageDraw.Draw(img)
    for _ in range(rng.randint(2, 7)):
        col = rng.choice(palette[1:])
        x0, y0 = rng.randrange(s), rng.randrange(s)
        w, h = rng.randint(s // 8, s // 2), rng.randint(s // 8, s // 2)
        kind = rng.random()
        outline = (20, 20, 20) if rng.random() < 0.5 else None
        if kind < 0.4:
            d.ellipse([x0 - w, y0 - h, x0 + w, y0 + h], fill=col, outline=outline, width=8)
        elif kind < 0.8:
            pts = [(x0 + rng.randint(-w, w), y0 + rng.randint(-h, h)) for _ in range(rng.randint(3, 6))]
            d.polygon(pts, fill=col, outline=outline, width=8)
        else:
            d.rectangle([x0 - w, y0 - h // 3, x0 + w, y0 + h // 3], fill=col, outline=outline, width=8)
    return img.resize((size, size), Image.Resampling.BOX)


#: cats-raw photos the text filter flagged (scorer v3), checked by eye: 1 = legible text, 0 = none.
HARD_TEXT = {"b/Cat102.jpg": 0, "b/Cat185.jpg": 0, "b/Cat537.jpg": 0, "a/cat.147.jpg": 0, "a/cat.82.jpg": 0,
             "a/cat.835.jpg": 0, "a/cat.968.jpg": 0, "a/cat.509.jpg": 0, "a/cat.337.jpg": 0,
             "a/cat.108.jpg": 1, "a/cat.187.jpg": 1, "a/cat.679.jpg": 1, "a/cat.27.jpg": 1, "a/cat.567.jpg": 1,
             "a/cat.609.jpg": 1, "b/Cat511.jpg": 1}
WORDS = ("open", "sale", "cafe", "hotel", "street", "exit", "parking", "welcome", "london", "happy birthday",
         "photo", "copyright", "summer 2019", "best cat", "no entry", "bus stop", "pizza", "market", "main st",
         "apollo", "station", "library", "bakery", "garden", "museum", "fresh fish", "since 1984", "call 555 0199",
         "www.example.com", "@catlover", "team blue", "final", "north", "hello world", "beware of the cat")
FONTS = sorted(str(p) for d in ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/truetype/liberation")
               for p in Path(d).glob("*.ttf")) if Path("/usr/share/fonts/truetype").is_dir() else []


def draw_text(img: Image.Image, rng: random.Random, plate: bool) -> Image.Image:
    """Words drawn over a photo: a caption (outlined) or a sign (text on a coloured plate)."""
    from PIL import ImageFont

    img = img.copy()
    w, h = img.size
    font = ImageFont.truetype(rng.choice(FONTS), max(8, int(h * rng.uniform(0.04, 0.12))))
    lines = [rng.choice(WORDS) for _ in range(rng.randint(1, 3) if plate else 1)]
    lines = [ln.upper() if rng.random() < 0.4 else ln for ln in lines]
    text = "\n".join(lines)
    box = ImageDraw.Draw(img).multiline_textbbox((0, 0), text, font=font)
    tw, th = box[2] - box[0] + 8, box[3] - box[1] + 8
    layer = Image.new("RGBA", (tw + 16, th + 16), (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    fg = tuple(rng.randrange(256) for _ in range(3))
    if plate:
        bg = tuple(255 - c for c in fg)
        d.rectangle([0, 0, tw + 15, th + 15], fill=(*bg, 255))
        d.multiline_text((8 - box[0], 8 - box[1]), text, font=font, fill=(*fg, 255))
    else:
        stroke = (0, 0, 0) if sum(fg) > 380 else (255, 255, 255)
        d.multiline_text((8 - box[0], 8 - box[1]), text, font=font, fill=(*fg, 255),
                         stroke_width=max(1, int(font.size) // 15), stroke_fill=(*stroke, 255))
    layer = layer.rotate(rng.uniform(-12, 12), expand=True, resample=Image.Resampling.BICUBIC)
    if layer.size[0] > w or layer.size[1] > h:
        layer = layer.resize((min(w, layer.size[0]), min(h, layer.size[1])), Image.Resampling.LANCZOS)
    x, y = rng.randint(0, w - layer.size[0]), rng.randint(0, h - layer.size[1])
    img.paste(layer, (x, y), layer)
    return img


def icon_on_background(path: Path, rng: random.Random, size: int) -> Image.Image:
    icon = Image.open(path).convert("RGBA")
    a, b = (tuple(rng.randrange(256) for _ in range(3)) for _ in range(2))
    if rng.random() < 0.5:
        bg = Image.new("RGBA", icon.size, (*a, 255))
    else:  # vertical gradient: smooth content with no edges at all
        t = np.linspace(0, 1, icon.size[1])[:, None, None]
        grad = (1 - t) * np.array(a) + t * np.array(b)
        bg = Image.fromarray(np.broadcast_to(grad, (icon.size[1], icon.size[0], 3)).astype(np.uint8)).convert("RGBA")
    return Image.alpha_composite(bg, icon).convert("RGB").resize((size, size), Image.Resampling.LANCZOS)


#: cats-raw photos (of the seed-0 sample) where a face detector fired, checked by eye: 1 = a human face
#: of at least ~5% of the short side, 0 = cat faces only, "" = unclear (a tiny or hidden person; left out).
#: All 16 of the sample's flags are cat faces (MTCNN with probability >= 0.7 or HOG with score >= -0.5).
HARD_FACE: dict[str, str] = {n: "0" for n in (
    "b/Cat179.jpg", "a/cat.200.jpg", "b/Cat1004.jpg", "b/Cat941.jpg", "b/Cat809.jpg", "a/cat.345.jpg", "b/Cat105.jpg",
    "a/cat.594.jpg", "b/Cat17.jpg", "a/cat.695.jpg", "a/cat.947.jpg", "b/Cat586.jpg", "b/Cat46.jpg", "a/cat.795.jpg",
    "a/cat.547.jpg", "a/cat.161.jpg")}
CATS_LICENCE = "Kaggle Dogs vs. Cats / cat-breeds (research use; see shared/datasets/README.md)"


def skimage_data(path: str | None) -> Path | None:
    if path:
        return Path(path)
    try:
        import skimage  # noqa: F401 - only its data folder is used
    except ImportError:
        return None
    return Path(skimage.__file__).parent / "data"


def largest_face_share(img: Image.Image) -> float:
    """Largest face side / short side by the larger of MTCNN's and HOG's (upsample 1) answers; sizing only."""
    from gantl.data.filters.face import FaceConfig, FaceFilter

    cfgs = [FaceConfig(detector="mtcnn", min_face=0.02), FaceConfig(detector="hog", upsample=1)]
    return max(FaceFilter(c).score(img).score for c in cfgs)


def face_kinds(args: argparse.Namespace, shared: Path, photos: list[tuple[str, Image.Image, str, str]],
               save: Callable[..., None]) -> None:
    """The face rows (has_face), from their own seeded generator so the blur/text rows stay as they were."""
    rng = random.Random(args.seed + 13)
    fb = shared / "filterbench" / "photos"
    with (fb / "labels.csv").open(newline="") as fh:
        fb_labels = {r["file"]: r for r in csv.DictReader(fh)}
    faces, scenes = [], []
    for stem, img, origin, lic in photos:
        name = origin.split(" ")[0].removeprefix("filterbench/photos/")
        lab = fb_labels.get(name)
        if lab is None:  # a cats-raw photo: a negative unless HARD_FACE says otherwise, and a scene to paste into
            n = origin.removeprefix("cats-raw.zip:")
            if HARD_FACE.get(n, "0") != "":
                save(reduce(img, 640), f"{stem}__cat.jpg", "cat", -1, origin, lic, "reduced to 640 px",
                     has_face=HARD_FACE.get(n, "0"))
            if HARD_FACE.get(n, "0") == "0":  # no person: a scene to paste faces into
                scenes.append(img)
            continue
        base = reduce(img, 640)
        if lab["has_face"] == "0":
            save(base, f"{stem}__fbnoface.jpg", "fbnoface", -1, origin, lic, "reduced to 640 px", has_face="0")
            continue
        faces.append((stem, img, origin, lic))
        save(base, f"{stem}__fbface.jpg", "fbface", -1, origin, lic, "reduced to 640 px", has_face="1")
        save(base.convert("L"), f"{stem}__gray.jpg", "gray", -1, origin, lic, "grayscale (1 channel)", has_face="1")
        save(base.transpose(Image.Transpose.FLIP_LEFT_RIGHT), f"{stem}__flip.jpg", "flip", -1, origin, lic,
             "mirrored", has_face="1")
        angle = rng.choice([-1, 1]) * rng.uniform(10, 15)
        fill = tuple(int(v) for v in np.asarray(base).reshape(-1, 3).mean(0))
        save(base.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=fill),
             f"{stem}__rot.jpg", "rot", -1, origin, lic, f"rotated {angle:.1f} deg", has_face="1")
        if rng.random() < 0.5:
            save(base, f"{stem}__reenc.bmp", "reenc", -1, origin, lic, "BMP", has_face="1")
        else:
            save(base.convert("L"), f"{stem}__reenc.pgm", "reenc", -1, origin, lic, "PGM (grayscale)", has_face="1")

    lfw: list[Image.Image] = []
    sk = skimage_data(args.skimage_data)
    if sk is not None and (sk / "lfw_subset.npy").is_file():
        arr = (np.load(sk / "lfw_subset.npy")[:100] * 255 + 0.5).astype(np.uint8)  # the first 100 are faces
        lfw = [Image.fromarray(a) for a in arr]
        for i, face in enumerate(lfw):
            save(face.resize((100, 100), Image.Resampling.BICUBIC), f"lfw_{i:03d}.png", "lfw", -1,
                 f"scikit-image wheel:skimage/data/lfw_subset.npy[{i}] (Labeled Faces in the Wild)",
                 "LFW: research use (vis-www.cs.umass.edu/lfw)", "25 px tight crop enlarged to 100 px", has_face="1")
    else:
        print("no skimage/data/lfw_subset.npy: skipping the lfw kind and lfw pastes (see --skimage-data)")

    # small faces in whole scenes
    for i in range(min(len(lfw), 40)):
        scene = reduce(rng.choice(scenes), 640).copy()
        side = max(12, round(min(scene.size) * rng.uniform(0.08, 0.16)))
        face = lfw[rng.randrange(len(lfw))].convert("RGB").resize((side, side), Image.Resampling.BICUBIC)
        x, y = rng.randint(0, scene.size[0] - side), rng.randint(0, scene.size[1] - side)
        scene.paste(face, (x, y))
        save(scene, f"small_lfw_{i:03d}.jpg", "small", -1, "lfw_subset face pasted into a cats-raw photo",
             "LFW research use; " + CATS_LICENCE, f"face {side} px", has_face="1")
    for stem, img, origin, lic in faces:
        share = largest_face_share(reduce(img, 640))
        if share < 0.15:
            continue  # the photo's faces are small already; a paste would take them under the threshold
        scene = reduce(rng.choice(scenes), 640).copy()
        target = rng.uniform(0.07, 0.15)  # largest face / scene short side
        k = target / share * min(scene.size) / min(img.size)
        pw, ph = max(1, round(img.size[0] * k)), max(1, round(img.size[1] * k))
        if pw >= scene.size[0] or ph >= scene.size[1]:
            continue
        x, y = rng.randint(0, scene.size[0] - pw), rng.randint(0, scene.size[1] - ph)
        scene.paste(img.resize((pw, ph), Image.Resampling.LANCZOS), (x, y))
        save(scene, f"{stem}__small.jpg", "small", -1, f"{origin} pasted into a cats-raw photo",
             f"{lic}; {CATS_LICENCE}", f"largest face ~{target:.0%} of the short side", has_face="1")

    with zipfile.ZipFile(shared / "cifar10.zip") as zf:
        names = sorted(n for n in zf.namelist() if n.startswith("test/") and n.endswith(".jpg"))
        for n in rng.sample(names, min(args.cifar, len(names))):
            img = Image.open(io.BytesIO(zf.read(n))).convert("RGB").resize((128, 128), Image.Resampling.BICUBIC)
            save(img, f"cifar_{n.replace('/', '_')}", "cifar", -1, f"cifar10.zip:{n}",
                 "CIFAR-10 (Krizhevsky 2009; see shared/datasets/README.md)", "32 px enlarged to 128 px", has_face="0")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="/tmp/filter-devset")
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets"))
    ap.add_argument("--cats", type=int, default=120, help="cats-raw photos to sample")
    ap.add_argument("--icons", type=int, default=150)
    ap.add_argument("--flat", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skimage-data", default=None,
                    help="skimage/data folder (for lfw_subset.npy); default: the installed scikit-image's")
    ap.add_argument("--cifar", type=int, default=100, help="CIFAR-10 test images (face negatives)")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    out = Path(args.out)
    (out / "img").mkdir(parents=True, exist_ok=True)
    shared = Path(args.shared)
    rows: list[dict[str, str]] = []

    def save(img: Image.Image, name: str, kind: str, blurry: int, origin: str, licence: str, edit: str,
             has_text: str = "", has_face: str = "") -> None:
        """Write one image and its row; ``blurry`` -1 = not part of the blur set."""
        img.save(out / "img" / name, quality=92) if name.endswith(".jpg") else img.save(out / "img" / name)
        rows.append(dict(file=f"img/{name}", kind=kind, blurry="" if blurry < 0 else str(blurry), has_text=has_text,
                         has_face=has_face, origin=origin, licence=licence, edit=edit, width=str(img.size[0]),
                         height=str(img.size[1])))

    # --- sharp photos: filterbench + cats-raw
    photos: list[tuple[str, Image.Image, str, str]] = []
    fb = shared / "filterbench" / "photos"
    with (fb / "labels.csv").open(newline="") as fh:
        for r in csv.DictReader(fh):
            if r["file"] == "sk_clock_motion.png":
                continue
            img = Image.open(fb / r["file"]).convert("RGB")
            photos.append((f"fb_{Path(r['file']).stem}", img, f"filterbench/photos/{r['file']} ({r['source']})",
                           "see filterbench/photos/SOURCES.md"))
    with zipfile.ZipFile(shared / "cats-raw.zip") as zf:
        names = sorted(n for n in zf.namelist() if not n.endswith("/"))
        rng.shuffle(names)
        taken = 0
        for n in names:
            if taken >= args.cats:
                break
            try:
                img = Image.open(io.BytesIO(zf.read(n))).convert("RGB")
            except Exception:  # noqa: BLE001 - cats-raw holds a few broken files on purpose
                continue
            if min(img.size) < 300:
                continue
            photos.append((f"cat_{n.replace('/', '_').rsplit('.', 1)[0]}", img, f"cats-raw.zip:{n}",
                           "Kaggle Dogs vs. Cats / cat-breeds (research use; see shared/datasets/README.md)"))
            taken += 1
    for stem, img, origin, lic in photos:
        base = reduce(img, 512)
        save(base, f"{stem}__sharp.jpg", "photo", 0, origin, lic, "reduced to 512 px")
        chip = reduce(img, rng.randint(128, 200))
        save(chip, f"{stem}__chip.jpg", "chip", 0, origin, lic, f"reduced to {max(chip.size)} px")
        if rng.random() < 0.5:
            sigma = rng.choice([2.0, 3.0, 4.0])
            save(base.filter(ImageFilter.GaussianBlur(sigma)), f"{stem}__defocus{sigma:g}.jpg", "defocus", 1,
                 origin, lic, f"Gaussian sigma {sigma:g} px at 512 px")
        else:
            length, angle = rng.choice([9, 13, 17, 21]), rng.uniform(0, 180)
            save(motion_blur(base, length, angle), f"{stem}__motion{length}.jpg", "motion", 1, origin, lic,
                 f"linear motion {length} px at {angle:.0f} deg at 512 px")

    # --- icons from Debian icon themes
    icons: list[tuple[Path, str]] = []
    for theme, (sizes, lic) in ICON_THEMES.items():
        for size in sizes:
            d = Path("/usr/share/icons") / theme / size
            icons += [(p, lic) for p in sorted(d.rglob("*.png")) if not p.is_symlink()] if d.is_dir() else []
    rng.shuffle(icons)
    for i, (p, lic) in enumerate(icons[: args.icons]):
        size = 128 if i % 3 else 256
        face_like = any(w in p.stem.lower() for w in ("face", "avatar", "user", "person", "people", "emote", "smil"))
        save(icon_on_background(p, rng, size), f"icon_{i:03d}_{p.stem}.png", "icon", 0,
             str(p), lic, f"composited on a background, {size} px", has_face="" if face_like else "0")

    # --- synthetic flat art
    for i in range(args.flat):
        save(flat_art(rng), f"flat_{i:03d}.png", "flat", 0, "synthetic (build_filter_devset.py)", "CC0", "128 px",
             has_face="0")

    # --- text: synthetic captions and signs on photos, real text photos, texture crops
    fb_labels = {}
    with (fb / "labels.csv").open(newline="") as fh:
        fb_labels = {r["file"]: r for r in csv.DictReader(fh)}
    for stem, img, origin, lic in photos:
        name = origin.split(" ")[0].removeprefix("filterbench/photos/")
        lab = fb_labels.get(name)
        base = reduce(img, 640)
        if lab is not None:
            kind = "fbtext" if lab["has_text"] == "1" else "plain"
            save(base, f"{stem}__{kind}.jpg", kind, -1, origin, lic, "reduced to 640 px", has_text=lab["has_text"])
            if lab["has_text"] == "1":
                continue
            if lab["has_face"] == "1":
                save(base.crop((0, 0, base.size[0], base.size[1] // 2)), f"{stem}__hair.jpg", "hair", -1, origin, lic,
                     "top half", has_text="0")
        else:
            f = rng.uniform(0.3, 0.6)
            cw, ch = int(img.size[0] * f), int(img.size[1] * f)
            x, y = rng.randint(0, img.size[0] - cw), rng.randint(0, img.size[1] - ch)
            person = HARD_FACE.get(origin.removeprefix("cats-raw.zip:"), "0") != "0"
            save(reduce(img.crop((x, y, x + cw, y + ch)), 640), f"{stem}__fur.jpg", "fur", -1, origin, lic,
                 f"{f:.0%} crop", has_text="0", has_face="" if person else "0")
        if FONTS and (lab is None or lab["has_text"] == "0"):
            plate = rng.random() < 0.4
            kind = "sign" if plate else "caption"
            save(draw_text(base, rng, plate), f"{stem}__{kind}.jpg", kind, -1, origin, lic,
                 f"synthetic {kind} (Debian fonts-dejavu / fonts-liberation)", has_text="1")

    with zipfile.ZipFile(shared / "cats-raw.zip") as zf:
        for n, lab in HARD_TEXT.items():
            img = Image.open(io.BytesIO(zf.read(n))).convert("RGB")
            save(img, f"hard_{n.replace('/', '_')}", "hard", -1, f"cats-raw.zip:{n}",
                 "Kaggle Dogs vs. Cats / cat-breeds (research use; see shared/datasets/README.md)", "as is",
                 has_text=str(lab))

    face_kinds(args, shared, photos, save)

    with (out / "labels.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    kinds: dict[str, int] = {}
    for r in rows:
        kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
    print({"out": str(out), "images": len(rows), "kinds": kinds})


if __name__ == "__main__":
    main()
