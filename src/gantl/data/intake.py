"""Where images come from: a folder, a zip, a text file of URLs, or Instagram.

Every source lists *items* (a path relative to the source, its size and modification time: the
key the manifest cache uses) and reads an item's bytes. Sources are picklable so each worker
process can read on its own (a zip is reopened lazily in every process).

Downloads (URL lists, Instagram) land in a cache folder first, so a re-run does not fetch
again and every downloaded file is an ordinary local item afterwards. A download that fails is
recorded with its reason (``HTTP 404``, ``timeout``, ``too large``, ``not an image``) and shows
up in the manifest with reason ``download``; it never stops the run.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import threading
import time
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from gantl.config import option
from gantl.errors import DatasetError, require

log = logging.getLogger(__name__)

#: File extensions treated as candidate images; anything else is listed as ignored, not scored.
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".bmp", ".dib", ".tif", ".tiff",
                    ".pgm", ".ppm", ".pbm", ".pnm", ".gif", ".jp2", ".j2k", ".tga", ".img"}


@dataclass
class HttpConfig:
    timeout: float = option(10.0, min=0.05, help="Seconds to wait for a connection or for the next bytes.")
    retries: int = option(2, min=0, max=10, help="Extra attempts after a timeout, dropped connection or HTTP 5xx/429.")
    backoff: float = option(1.0, min=0.0, help="Seconds before the first retry; doubles each time.")
    max_bytes: int = option(30_000_000, min=1, help="Refuse downloads larger than this many bytes.")
    max_seconds: float = option(60.0, min=0.1, max=86_400, help="Give up one download attempt after this many "
                                                                "seconds in total (a server dripping bytes "
                                                                "never trips the per-read timeout).")
    concurrency: int = option(4, min=1, max=32, help="Downloads in flight at once.")
    user_agent: str = option("gantl-curate/0.1 (+https://github.com/gantl)", help="HTTP User-Agent header.")


@dataclass
class InstagramConfig:
    max_posts: int = option(200, min=1, help="Stop after this many posts per hashtag/profile.")


@dataclass(frozen=True)
class Item:
    """One candidate file: ``file`` is its path relative to the source (or its URL)."""

    file: str
    size: int
    mtime: float


class Source(Protocol):
    """What the pipeline needs from any source."""

    description: str
    failures: list[tuple[str, str]]  # (file or URL, reason) for inputs that never became an item
    ignored: list[str]  # files skipped because their extension is not an image extension

    def items(self) -> list[Item]: ...

    def read(self, file: str) -> bytes: ...


def _is_candidate(name: str) -> bool:
    base = os.path.basename(name)
    return not base.startswith(".") and "__MACOSX" not in name and Path(base).suffix.lower() in IMAGE_EXTENSIONS


class FolderSource:
    """Every image file under a folder, recursively (hidden files and non-images skipped)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(f"'{root}' is not a folder; pass a folder, a .zip, a .txt of URLs, #hashtag or @profile")
        self.description = str(self.root)
        self.failures: list[tuple[str, str]] = []
        self.ignored: list[str] = []

    def items(self) -> list[Item]:
        out = []
        self.ignored = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                path = Path(dirpath) / name
                rel = path.relative_to(self.root).as_posix()
                if not _is_candidate(rel):
                    if not name.startswith("."):
                        self.ignored.append(rel)
                    continue
                st = path.stat()
                out.append(Item(rel, st.st_size, round(st.st_mtime, 3)))
        return sorted(out, key=lambda it: it.file)

    def read(self, file: str) -> bytes:
        return (self.root / file).read_bytes()


class ZipSource:
    """Every image member of a zip (optionally only under ``prefix``, as in ``data.zip:train/cat``)."""

    def __init__(self, path: str | Path, prefix: str = "") -> None:
        self.path = Path(path)
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        if not zipfile.is_zipfile(self.path):
            raise DatasetError(f"'{path}' is not a readable zip file; check the path or re-create the zip")
        self.description = f"{self.path}" + (f":{self.prefix}" if self.prefix else "")
        self.failures: list[tuple[str, str]] = []
        self.ignored: list[str] = []
        self._zip: zipfile.ZipFile | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_zip"] = None  # each process opens its own handle
        return state

    def _open(self) -> zipfile.ZipFile:
        if self._zip is None:
            self._zip = zipfile.ZipFile(self.path)
        return self._zip

    def items(self) -> list[Item]:
        out = []
        self.ignored = []
        for info in self._open().infolist():
            if info.is_dir() or not info.filename.startswith(self.prefix):
                continue
            rel = info.filename[len(self.prefix):]
            if not _is_candidate(rel):
                self.ignored.append(rel)
                continue
            mtime = time.mktime((*info.date_time, 0, 0, -1)) if info.date_time[0] >= 1980 else 0.0
            out.append(Item(rel, info.file_size, float(mtime)))
        if not out and not self.ignored:
            raise DatasetError(f"'{self.description}' holds no files; check the zip or the :prefix after it")
        return sorted(out, key=lambda it: it.file)

    def read(self, file: str) -> bytes:
        """A member's bytes; a damaged member is an ``OSError`` (what every caller records and skips).

        zipfile reports a bad CRC or header as ``BadZipFile``, a broken deflate stream as
        ``zlib.error``, an unknown compression as ``NotImplementedError``: none is an OSError, so
        one damaged member used to stop a whole build with a traceback.
        """
        try:
            return self._open().read(self.prefix + file)
        except (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, EOFError, ValueError) as exc:
            raise OSError(f"damaged zip member {file} ({type(exc).__name__}: {exc})") from None


# ----------------------------------------------------------------------------- downloads


@dataclass
class Download:
    """Result of fetching one URL: a local path, or the reason it failed."""

    url: str
    path: Path | None = None
    error: str | None = None


def _cache_name(url: str) -> str:
    return hashlib.sha1(url.encode("utf-8")).hexdigest()[:20] + ".img"


class _TooSlow(Exception):
    """One attempt ran past ``HttpConfig.max_seconds``."""


def _read_body(resp: Any, cfg: HttpConfig, deadline: float, cancel: threading.Event) -> bytes | str:
    """The raw body, or a failure reason, checking the size cap and the deadline after every read.

    ``read1`` returns after one socket read (at most ``cfg.timeout``), so a server that sends one
    byte every few seconds is stopped at the deadline; ``iter_content`` would keep filling a 64 KB
    chunk for days. Reads are undecoded (we ask for ``identity``); a compressed body is inflated
    afterwards under the same ``max_bytes`` cap, so a gzip bomb is refused too.
    """
    raw = resp.raw
    read1 = getattr(raw, "read1", None)
    chunks, total = [], 0
    while True:
        if cancel.is_set() or time.monotonic() > deadline:
            raise _TooSlow
        chunk = read1(1 << 16, decode_content=False) if read1 is not None else raw.read(1024, decode_content=False)
        if not chunk:
            break
        total += len(chunk)
        if total > cfg.max_bytes:
            return f"too large (over max_bytes={cfg.max_bytes})"
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = resp.headers.get("Content-Encoding", "").strip().lower()
    if encoding in ("gzip", "x-gzip", "deflate"):
        inflater = zlib.decompressobj(zlib.MAX_WBITS | 32 if encoding != "deflate" else zlib.MAX_WBITS)
        try:
            body = inflater.decompress(body, cfg.max_bytes + 1)
        except zlib.error as exc:
            return f"corrupt {encoding} body ({exc})"
        if len(body) > cfg.max_bytes or inflater.unconsumed_tail:
            return f"too large (over max_bytes={cfg.max_bytes} once decompressed)"
    elif encoding not in ("", "identity"):
        return f"unsupported Content-Encoding {encoding}"
    return body


def _attempt(url: str, cfg: HttpConfig, deadline: float, cancel: threading.Event) -> tuple[str, bytes | str]:
    """One GET: ("ok", body), ("retry", reason) or ("fail", reason)."""
    requests = require("requests", "curate")
    with requests.get(url, timeout=(cfg.timeout, cfg.timeout), stream=True,
                      headers={"User-Agent": cfg.user_agent, "Accept-Encoding": "identity"}) as resp:
        if resp.status_code == 429 or resp.status_code >= 500:
            return "retry", f"HTTP {resp.status_code}"
        if resp.status_code >= 400:
            return "fail", f"HTTP {resp.status_code}"
        ctype = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype and not (ctype.startswith("image/") or ctype in ("application/octet-stream",
                                                                  "binary/octet-stream")):
            return "fail", f"not an image (Content-Type {ctype})"
        length = resp.headers.get("Content-Length")
        if length and length.isdigit() and int(length) > cfg.max_bytes:
            return "fail", f"too large ({int(length)} bytes > max_bytes={cfg.max_bytes})"
        body = _read_body(resp, cfg, deadline, cancel)
        return ("ok", body) if isinstance(body, bytes) else ("fail", body)


def _attempt_bounded(url: str, cfg: HttpConfig) -> tuple[str, bytes | str]:
    """:func:`_attempt` with a hard wall-clock limit of ``cfg.max_seconds``.

    The body loop stops itself at the deadline; the thread is the backstop for a server that drips
    its status line or headers, where requests gives no hook. A thread still stuck after the limit
    is abandoned (daemon: it cannot keep the process alive) and told to stop at its next read.
    """
    requests = require("requests", "curate")
    deadline = time.monotonic() + cfg.max_seconds
    cancel = threading.Event()
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["result"] = _attempt(url, cfg, deadline, cancel)
        except _TooSlow:
            box["result"] = ("retry", f"timeout (over max_seconds={cfg.max_seconds:g} in total)")
        except requests.exceptions.Timeout:
            box["result"] = ("retry", f"timeout (no response within {cfg.timeout:g}s)")
        except requests.exceptions.ConnectionError as exc:
            box["result"] = ("retry", f"connection failed: {type(exc).__name__}")
        except requests.exceptions.RequestException as exc:
            box["result"] = ("fail", f"request failed: {exc}")
        except Exception as exc:  # noqa: BLE001 - a download failure is recorded, never crashes the build
            box["result"] = ("fail", f"download failed: {type(exc).__name__}: {exc}")

    thread = threading.Thread(target=work, name=f"gantl-fetch {url[:60]}", daemon=True)
    thread.start()
    thread.join(cfg.max_seconds + min(cfg.timeout, 5.0))
    if thread.is_alive():
        cancel.set()
        return "retry", f"timeout (over max_seconds={cfg.max_seconds:g} in total)"
    return box.get("result", ("fail", "download failed"))


def fetch(url: str, dest: Path, cfg: HttpConfig) -> Download:
    """Download one URL into ``dest`` (http/https only) with a size cap, a total time limit per attempt,
    a type check and retries."""
    require("requests", "curate")
    scheme = urlparse(url).scheme.lower()
    if scheme not in ("http", "https"):
        return Download(url, error=f"only http/https URLs are fetched (got '{scheme or 'no scheme'}')")
    target = dest / _cache_name(url)
    if target.is_file() and target.stat().st_size > 0:
        return Download(url, target)  # fetched by an earlier run
    error = "unknown error"
    for attempt in range(cfg.retries + 1):
        if attempt:
            time.sleep(cfg.backoff * 2 ** (attempt - 1))
        status, value = _attempt_bounded(url, cfg)
        if status == "ok":
            assert isinstance(value, bytes)
            tmp = target.with_suffix(".part")
            tmp.write_bytes(value)
            tmp.replace(target)
            return Download(url, target)
        error = str(value)
        if status == "fail":
            return Download(url, error=error)
    if error.startswith("timeout") and cfg.retries:
        error = f"{error}, {cfg.retries + 1} attempts"
    return Download(url, error=error)


def fetch_all(urls: Iterable[str], dest: Path, cfg: HttpConfig) -> list[Download]:
    """Fetch URLs a few at a time (``cfg.concurrency``), in input order."""
    dest.mkdir(parents=True, exist_ok=True)
    urls = list(urls)
    with ThreadPoolExecutor(max_workers=cfg.concurrency) as pool:
        return list(pool.map(lambda u: fetch(u, dest, cfg), urls))


class DownloadedSource:
    """Files fetched from the web into a cache folder; items are named by URL (or post name)."""

    def __init__(self, description: str, downloads: list[Download], names: list[str] | None = None) -> None:
        self.description = description
        self.failures = []
        self.ignored: list[str] = []
        self._paths: dict[str, Path] = {}
        for i, d in enumerate(downloads):
            name = names[i] if names else d.url
            if d.path is None:
                self.failures.append((name, d.error or "download failed"))
            else:
                self._paths[name] = d.path

    def items(self) -> list[Item]:
        out = []
        for name, path in self._paths.items():
            st = path.stat()
            out.append(Item(name, st.st_size, round(st.st_mtime, 3)))
        return out

    def read(self, file: str) -> bytes:
        return self._paths[file].read_bytes()


def read_url_list(path: Path) -> list[str]:
    """Non-empty, non-comment lines of a text file, de-duplicated in order."""
    seen: dict[str, None] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            seen.setdefault(line, None)
    return list(seen)


# ----------------------------------------------------------------------------- instagram


def post_image_urls(posts: Iterable[Any], max_posts: int) -> Iterator[tuple[str, str]]:
    """(name, url) for every still image in the first ``max_posts`` posts; multi-image posts expand.

    Works on instaloader ``Post`` objects or anything with the same attributes: ``shortcode``,
    ``typename`` ("GraphSidecar" for carousels), ``is_video``, ``url`` and ``get_sidecar_nodes()``
    (nodes with ``is_video`` and ``display_url``).
    """
    for post in itertools.islice(posts, max_posts):
        if getattr(post, "typename", "") == "GraphSidecar":
            for i, node in enumerate(post.get_sidecar_nodes(), start=1):
                if not node.is_video:
                    yield f"{post.shortcode}_{i}.jpg", node.display_url
        elif not post.is_video:
            yield f"{post.shortcode}.jpg", post.url


def instagram_posts(spec: str) -> Iterable[Any]:
    """Posts of ``#hashtag`` or ``@profile`` through instaloader (optional extra)."""
    instaloader = require("instaloader", "instagram")
    loader = instaloader.Instaloader(quiet=True, download_videos=False, download_comments=False,
                                     save_metadata=False, max_connection_attempts=1)
    name = spec[1:]
    try:
        if spec.startswith("#"):
            return instaloader.Hashtag.from_name(loader.context, name).get_posts()
        return instaloader.Profile.from_username(loader.context, name).get_posts()
    except instaloader.exceptions.InstaloaderException as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DatasetError(f"cannot read Instagram {spec}: {first}"
                           "; check the network (and login for hashtags), or download the images and pass "
                           "the folder") from None


def collect_instagram(spec: str, dest: Path, http: HttpConfig, ig: InstagramConfig,
                      posts: Iterable[Any] | None = None) -> DownloadedSource:
    """Fetch the still images of a hashtag/profile; ``posts`` can be injected (tests, custom login)."""
    posts = instagram_posts(spec) if posts is None else posts
    pairs: list[tuple[str, str]] = []
    try:
        for pair in post_image_urls(posts, ig.max_posts):
            pairs.append(pair)
    except Exception as exc:  # noqa: BLE001 - a network error mid-iteration keeps what was listed
        if not pairs:
            raise DatasetError(f"cannot list Instagram posts for {spec}: {exc}; check the network or pass "
                               "a folder of images") from None
        log.warning("stopped listing %s after %d images: %s", spec, len(pairs), exc)
    downloads = fetch_all([u for _, u in pairs], dest, http)
    return DownloadedSource(f"Instagram {spec}", downloads, [n for n, _ in pairs])


def open_source(spec: str, *, cache_dir: Path, http: HttpConfig | None = None,
                instagram: InstagramConfig | None = None) -> Source:
    """Turn a command-line SOURCE into a Source: folder, zip[:prefix], URL list (.txt), #tag or @profile."""
    http = http or HttpConfig()
    if spec.startswith(("#", "@")) and len(spec) > 1 and not Path(spec).exists():
        return collect_instagram(spec, cache_dir, http, instagram or InstagramConfig())
    path = Path(spec)
    if path.is_dir():
        return FolderSource(path)
    if path.is_file() and path.suffix.lower() == ".txt":
        urls = read_url_list(path)
        if not urls:
            raise DatasetError(f"'{spec}' lists no URLs; put one http(s) URL per line")
        return DownloadedSource(str(path), fetch_all(urls, cache_dir, http))
    if path.is_file():
        return ZipSource(path)
    if ".zip:" in spec:
        zpath, prefix = spec.split(".zip:", 1)
        return ZipSource(zpath + ".zip", prefix)
    raise DatasetError(f"source '{spec}' does not exist; pass a folder, a .zip, a .txt of URLs, #hashtag or @profile")
