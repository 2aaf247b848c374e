"""Build the blur development set of issue 13 from images available offline; writes ``labels.csv``.

Usage: python benchmarks/build_filter_devset.py [--out /tmp/filter-devset] [--cats 120] [--seed 0]

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

Blur is applied at 512 px (the scale filterbench's sigmas are defined at); ``chip`` and the
flat kinds test the other side of the issue: small sharp images must not be called blurry.
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import zipfile
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="/tmp/filter-devset")
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets"))
    ap.add_argument("--cats", type=int, default=120, help="cats-raw photos to sample")
    ap.add_argument("--icons", type=int, default=150)
    ap.add_argument("--flat", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    out = Path(args.out)
    (out / "img").mkdir(parents=True, exist_ok=True)
    shared = Path(args.shared)
    rows: list[dict[str, str]] = []

    def save(img: Image.Image, name: str, kind: str, blurry: int, origin: str, licence: str, edit: str,
             has_text: str = "") -> None:
        """Write one image and its row; ``blurry`` -1 = not part of the blur set."""
        img.save(out / "img" / name, quality=92) if name.endswith(".jpg") else img.save(out / "img" / name)
        rows.append(dict(file=f"img/{name}", kind=kind, blurry="" if blurry < 0 else str(blurry), has_text=has_text,
                         origin=origin, licence=licence, edit=edit, width=str(img.size[0]), height=str(img.size[1])))

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
        save(icon_on_background(p, rng, size), f"icon_{i:03d}_{p.stem}.png", "icon", 0,
             str(p), lic, f"composited on a background, {size} px")

    # --- synthetic flat art
    for i in range(args.flat):
        save(flat_art(rng), f"flat_{i:03d}.png", "flat", 0, "synthetic (build_filter_devset.py)", "CC0", "128 px")

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
            save(reduce(img.crop((x, y, x + cw, y + ch)), 640), f"{stem}__fur.jpg", "fur", -1, origin, lic,
                 f"{f:.0%} crop", has_text="0")
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
