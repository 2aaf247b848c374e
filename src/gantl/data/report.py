"""A self-contained HTML curation report, made for tuning thresholds by eye.

One file, no external assets (thumbnails are inline base64 JPEGs, plots inline SVG), so it can be
mailed or archived next to the dataset. For each filter it shows the score histogram with the
threshold marked and the reject side shaded, the images just on either side of the threshold
(the ones a new threshold would flip), and a contact sheet of what was rejected, with each
thumbnail's score and the detected face and text boxes drawn. Duplicates are shown as groups
with the kept copy first.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image, ImageDraw

from gantl.data.filters.duplicate import hamming
from gantl.data.filters.fmt import FormatConfig, FormatError, decode

if TYPE_CHECKING:
    from gantl.data.curate import CurateConfig, CurateResult
    from gantl.data.filters import Threshold

THUMB = 150
SHEET_LIMIT = 48
NEAR = 8
BOX_COLOURS = {"face": (255, 40, 40), "text": (30, 144, 255)}
LOG_SCALE = {"blur", "text"}
ZERO_MEANS_NONE = {"text": "no legible text", "face": "no face"}
HOW_TO = {
    "resolution": "short side / target size; rejected when below the threshold",
    "blur": "edge sharpness, 1 / width in px of the sharpest edges in the least sharp direction, at the image's "
            "own scale (never upscaled); rejected when below (lower = blurrier)",
    "grayscale": "99th percentile of colour saturation (LAB chroma); rejected when below (0 = gray)",
    "text": "share of the image covered by legible text x OCR confidence; rejected when at or above",
    "face": "largest face side / image short side (0 = no face); rejected when at or above",
    "duplicate": "pHash distance to the nearest other image (of 64 bits); within the threshold, "
                 "only the sharpest, largest copy is kept",
}


def _flag(name: str) -> str:
    return f"--{name}-threshold X  (or --set filters.{name}.threshold=X), --no-{name} to switch off"


class _Thumbs:
    """Decodes and caches the few thumbnails the report shows, with boxes drawn on them."""

    def __init__(self, source: Any) -> None:
        self.source = source
        self.cache: dict[str, str | None] = {}
        self.cfg = FormatConfig()

    def get(self, row: dict[str, Any]) -> str | None:
        file = row["file"]
        if file not in self.cache:
            self.cache[file] = self._make(row)
        return self.cache[file]

    def _make(self, row: dict[str, Any]) -> str | None:
        try:
            img = decode(self.source.read(row["file"]), self.cfg, need_long=THUMB).image
        except (FormatError, OSError, KeyError):
            return None
        img.thumbnail((THUMB, THUMB), Image.Resampling.BILINEAR, reducing_gap=2.0)
        draw = ImageDraw.Draw(img)
        w, h = img.size
        for kind, colour in BOX_COLOURS.items():
            for x0, y0, x1, y1 in json.loads(row.get(f"{kind}_boxes") or "[]"):
                draw.rectangle([x0 * w, y0 * h, x1 * w, y1 * h], outline=colour, width=2)
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=80)
        return base64.b64encode(buf.getvalue()).decode("ascii")


def _score_text(name: str, v: Any) -> str:
    if v is None:
        return "n/a"
    if name == "duplicate":
        return f"{int(v)} bits"
    if name == "blur":
        return f"{v:.2f}"
    if name == "grayscale":
        return f"{v:.1f}"
    return f"{v:.3f}"


def _tile(row: dict[str, Any], thumbs: _Thumbs, caption: str, failed: bool | None = None) -> str:
    """One thumbnail. Border: red if it fails the filter being shown (``failed``), else green;
    without a filter context the overall decision. The last line lists every reason it was rejected for."""
    data = thumbs.get(row)
    bad = (not row["kept"]) if failed is None else failed
    cls = "rej" if bad else "kept"
    img = (f'<img src="data:image/jpeg;base64,{data}" alt="">' if data else '<div class="noimg">no preview</div>')
    reasons = ("rejected: " + row["reasons"]) if row.get("reasons") else "kept in the dataset"
    name = html.escape(row["file"])
    return (f'<figure class="{cls}" title="{name}">{img}<figcaption><b>{html.escape(caption)}</b>'
            f'<span class="fn">{name}</span><span class="why">{html.escape(reasons.replace(";", ", "))}</span>'
            f"</figcaption></figure>")


def _histogram_svg(name: str, values: list[float], th: Threshold) -> str:
    """Histogram of one score with the threshold line and the reject side shaded (inline SVG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    zeros = 0
    if name in ZERO_MEANS_NONE:
        zeros = sum(1 for v in values if v <= 0)
        values = [v for v in values if v > 0] or [th.threshold]
    fig, ax = plt.subplots(figsize=(6.4, 2.4), dpi=100)
    log = name in LOG_SCALE and min(values) > 0 and th.threshold > 0
    t = th.threshold
    lo, hi = min(values + [t]), max(values + [t])
    if log:
        lo, hi = lo / 1.3, hi * 1.3
        bins = np.geomspace(lo, hi, 41)
        ax.set_xscale("log")
    else:
        pad = (hi - lo) * 0.04 or 0.5
        lo, hi = lo - pad, hi + pad
        bins = np.linspace(lo, hi, 41)
    ax.hist(values, bins=bins, color="#4a7bb7")
    ax.axvline(t, color="#c0392b", linewidth=2)
    if th.direction == "below":
        ax.axvspan(lo, t, color="#c0392b", alpha=0.12)
    else:
        ax.axvspan(t, hi, color="#c0392b", alpha=0.12)
    ax.set_xlim(lo, hi)
    ax.set_xlabel(f"{name} score" + (" (log axis)" if log else "") + f"; red line = threshold {t:g}, "
                  "shaded side = rejected")
    ax.set_ylabel("images")
    if zeros:
        ax.set_title(f"{zeros} images with score 0 ({ZERO_MEANS_NONE[name]}) not drawn", fontsize=9, loc="left")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    plt.close(fig)
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]
    start, end = svg.find("<metadata>"), svg.find("</metadata>")
    if 0 <= start < end:  # RDF licence/date block: noise in an inline plot
        svg = svg[:start] + svg[end + len("</metadata>"):]
    return svg


def _near_threshold(rows: list[dict[str, Any]], name: str, th: Threshold) -> tuple[list, list]:
    """The rejected and passing images closest to the threshold, nearest first."""
    scored = [r for r in rows if r.get(name) is not None]
    if name == "duplicate":
        fail = [r for r in scored if "duplicate" in r["reasons"].split(";")]
        ok = [r for r in scored if r not in fail and r[name] > th.threshold]
    else:
        fail = [r for r in scored if th.fails(r[name])]
        ok = [r for r in scored if not th.fails(r[name])]
    key = (lambda r: abs(math.log10(max(r[name], 1e-9)) - math.log10(max(th.threshold, 1e-9)))) \
        if name in LOG_SCALE else (lambda r: abs(r[name] - th.threshold))
    return sorted(fail, key=key)[:NEAR], sorted(ok, key=key)[:NEAR]


def _section(name: str, th: Threshold, rows: list[dict[str, Any]], thumbs: _Thumbs) -> str:
    scored = [r for r in rows if r.get(name) is not None]
    if not scored:
        return f'<section id="{name}"><h2>{name}</h2><p>No image was scored.</p></section>'
    rejected = [r for r in scored if name in r["reasons"].split(";")]
    parts = [f'<section id="{name}"><h2>{name} <small>{len(rejected)} rejected of {len(scored)} scored; '
             f'threshold {th.threshold:g}</small></h2>',
             f'<p class="how">Score: {html.escape(HOW_TO[name])}. Change: <code>{html.escape(_flag(name))}</code></p>',
             f'<div class="plot">{_histogram_svg(name, [float(r[name]) for r in scored], th)}</div>']
    if name == "duplicate":
        parts.append(_duplicate_groups(rows, thumbs))
    else:
        fail, ok = _near_threshold(rows, name, th)
        parts.append('<div class="near"><div><h3>Rejected, closest to the threshold</h3><div class="sheet">'
                     + "".join(_tile(r, thumbs, _score_text(name, r[name]), True) for r in fail)
                     + (" <p class='none'>none</p>" if not fail else "")
                     + '</div></div><div><h3>Passing this filter, closest to the threshold</h3><div class="sheet">'
                     + "".join(_tile(r, thumbs, _score_text(name, r[name]), False) for r in ok)
                     + (" <p class='none'>none</p>" if not ok else "") + "</div></div></div>")
        worst_first = sorted(rejected, key=lambda r: r[name], reverse=th.direction == "above")
        if rejected:
            more = len(rejected) - SHEET_LIMIT
            parts.append(f"<h3>All rejected for {name}" + (f" (first {SHEET_LIMIT}; {more} more in the manifest)"
                                                           if more > 0 else "") + ", most extreme first</h3>")
            parts.append('<div class="sheet">' + "".join(_tile(r, thumbs, _score_text(name, r[name]), True)
                                                         for r in worst_first[:SHEET_LIMIT]) + "</div>")
    parts.append("</section>")
    return "".join(parts)


def _duplicate_groups(rows: list[dict[str, Any]], thumbs: _Thumbs) -> str:
    by_file = {r["file"]: r for r in rows}
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r.get("duplicate_of"):
            groups[r["duplicate_of"]].append(r)
    if not groups:
        return "<p class='none'>No duplicates found.</p>"
    out = [f"<h3>{len(groups)} groups of near-duplicates: the copy chosen to stay first (green; it can still "
           "fail another filter), then the copies rejected as duplicates (red)</h3>"]
    for keeper, members in list(groups.items())[:SHEET_LIMIT]:
        k = by_file[keeper]
        tiles = [_tile(k, thumbs, "best copy", False)]
        tiles += [_tile(m, thumbs, f"copy, {_apart(m, k)} apart", True) for m in members]
        out.append('<div class="sheet group">' + "".join(tiles) + "</div>")
    return "".join(out)


def _apart(row: dict[str, Any], keeper: dict[str, Any]) -> str:
    """Hash distance between a rejected copy and the copy kept in its place."""
    if not (row.get("phash") and keeper.get("phash")):
        return "?"
    return f"{hamming((row['phash'], row['phash_mirror']), (keeper['phash'], keeper['phash_mirror']))} bits"


CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}
h1{margin-bottom:4px} h2{border-top:2px solid #ddd;padding-top:16px;margin-top:32px}
h2 small{font-weight:normal;color:#666;font-size:60%} h3{font-size:15px;margin:14px 0 6px;color:#444}
table{border-collapse:collapse} td,th{padding:4px 10px;border-bottom:1px solid #eee;text-align:left;font-size:14px}
th{background:#f4f4f4} td.n{text-align:right;font-variant-numeric:tabular-nums}
.how{color:#444;font-size:14px} code{background:#f4f4f4;padding:1px 4px;border-radius:3px;font-size:13px}
.sheet{display:flex;flex-wrap:wrap;gap:8px} .near{display:grid;grid-template-columns:1fr 1fr;gap:24px}
figure{margin:0;width:158px;border:3px solid #ccc;border-radius:4px;background:#fafafa}
figure.rej{border-color:#d9534f} figure.kept{border-color:#5cb85c}
figure img{display:block;max-width:150px;max-height:150px;margin:1px auto}
.noimg{height:80px;display:flex;align-items:center;justify-content:center;color:#999;font-size:12px}
figcaption{font-size:11px;padding:2px 4px;line-height:1.3} figcaption b{font-size:13px;display:block}
.fn,.why{display:block;overflow:hidden;text-overflow:ellipsis;white-space:nowrap} .why{color:#555}
.group{padding:6px;border:1px dashed #bbb;margin-bottom:8px;border-radius:4px}
.legend span{display:inline-block;margin-right:16px} .sw{width:12px;height:12px;display:inline-block;
vertical-align:middle;margin-right:4px;border:2px solid} .none{color:#777;font-style:italic}
.plot svg{max-width:640px;height:auto}
"""


def write_report(result: CurateResult, path: Path, cfg: CurateConfig) -> Path:
    """Write the report for a finished curation run and return its path."""
    from gantl.data.curate import DOWNLOAD_REASON

    rows, counts, ths = result.rows, result.counts, result.thresholds
    thumbs = _Thumbs(result.source)
    total = max(1, counts["total"])
    reason_rows = []
    for name in (DOWNLOAD_REASON, "format", *ths):
        th = ths.get(name)
        rule = (f"{'&lt;' if th.direction == 'below' else '&ge;'} {th.threshold:g}" if th and name != "duplicate"
                else (f"distance &le; {th.threshold:g}" if th else "cannot be read"))
        link = f'<a href="#{name}">{name}</a>' if name in ths or name == "format" else name
        if name == DOWNLOAD_REASON and not counts.get(name):
            continue
        reason_rows.append(f"<tr><td>{link}</td><td class='n'>{counts.get(name, 0)}</td>"
                           f"<td class='n'>{100 * counts.get(name, 0) / total:.1f}%</td><td>{rule}</td></tr>")
    off = [n for n in ("resolution", "blur", "grayscale", "text", "face", "duplicate") if n not in ths]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>gantl curation report</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>Curation report</h1>",
        f"<p>Source <code>{html.escape(result.source.description)}</code> &rarr; "
        f"{cfg.size}&times;{cfg.size} px" + (f", dataset <code>{html.escape(str(result.output))}</code>"
                                               if result.output else " (inspect only: no dataset written)") + "</p>",
        f"<p style='font-size:18px'><b>{counts['kept']}</b> kept, <b>{counts['rejected']}</b> rejected, "
        f"of {counts['total']} images.</p>",
        "<table><tr><th>reason</th><th>images</th><th>share</th><th>rejected when score</th></tr>",
        *reason_rows, "</table>",
        "<p class='how'>An image can fail several filters; it is counted under each. "
        "Every score is in <code>" + html.escape(result.manifest.name) + "</code> (one row per input), "
        "so thresholds can be changed and the run repeated without re-scoring."
        + (f" Switched off: {', '.join(off)}." if off else "") + "</p>",
        "<p class='legend'>Thumbnail borders in each section: "
        "<span><i class='sw' style='border-color:#d9534f'></i>fails that section's filter</span>"
        "<span><i class='sw' style='border-color:#5cb85c'></i>passes it</span>"
        "The line under each file name is the final decision with every reason. Boxes: "
        "<span><i class='sw' style='border-color:rgb(255,40,40)'></i>face box</span>"
        "<span><i class='sw' style='border-color:rgb(30,144,255)'></i>text box</span></p>",
    ]
    for name, th in ths.items():
        parts.append(_section(name, th, rows, thumbs))
    bad = [r for r in rows if r.get("error")]
    parts.append(f'<section id="format"><h2>format and download <small>{len(bad)} files could not be used'
                 "</small></h2>")
    if bad:
        parts.append("<table><tr><th>file</th><th>why</th></tr>" + "".join(
            f"<tr><td>{html.escape(r['file'])}</td><td>{html.escape(str(r['error']))}</td></tr>"
            for r in bad[:500]) + "</table>")
    else:
        parts.append("<p class='none'>Every file decoded.</p>")
    ignored = getattr(result.source, "ignored", [])
    if ignored:
        parts.append(f"<p class='how'>{len(ignored)} files were not considered (not an image extension): "
                     + html.escape(", ".join(ignored[:20])) + (" ..." if len(ignored) > 20 else "") + "</p>")
    parts.append("</section></body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(parts), encoding="utf-8")
    return path
