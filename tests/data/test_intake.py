"""Intake: folders, zips, URL lists against a real local HTTP server, and Instagram post handling."""

from __future__ import annotations

import io
import sys
import threading
import time
import types
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from gantl.data.intake import (
    DownloadedSource,
    FolderSource,
    HttpConfig,
    InstagramConfig,
    ZipSource,
    collect_instagram,
    fetch_all,
    open_source,
    post_image_urls,
)
from gantl.errors import DatasetError, MissingDependencyError


def _jpeg(colour: str = "red", size: tuple[int, int] = (64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="JPEG")
    return buf.getvalue()


GOOD = _jpeg()
BIG = b"\xff" * 200_000


class _Handler(BaseHTTPRequestHandler):
    calls: dict[str, int] = {}

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def _send(self, code: int, ctype: str, body: bytes, length: bool = True) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        _Handler.calls[self.path] = _Handler.calls.get(self.path, 0) + 1
        if self.path.startswith("/good"):
            self._send(200, "image/jpeg", GOOD)
        elif self.path == "/missing.jpg":
            self._send(404, "text/html", b"not found")
        elif self.path == "/slow.jpg":
            time.sleep(1.0)
            self._send(200, "image/jpeg", GOOD)
        elif self.path == "/big.jpg":
            self._send(200, "image/jpeg", BIG)
        elif self.path == "/big-unsized.jpg":  # no Content-Length: the cap must apply while streaming
            self._send(200, "image/jpeg", BIG, length=False)
            self.close_connection = True
        elif self.path == "/page.jpg":
            self._send(200, "text/html; charset=utf-8", b"<html><body>hello</body></html>")
        elif self.path == "/flaky.jpg":  # fails once with 503, then works: retries must recover
            if _Handler.calls[self.path] == 1:
                self._send(503, "text/plain", b"busy")
            else:
                self._send(200, "image/jpeg", GOOD)
        else:
            self._send(404, "text/plain", b"?")


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_url_list_records_every_failure_with_its_reason(server: str, tmp_path: Path) -> None:
    urls = [f"{server}/good1.jpg", f"{server}/good2.jpg", f"{server}/missing.jpg", f"{server}/slow.jpg",
            f"{server}/big.jpg", f"{server}/big-unsized.jpg", f"{server}/page.jpg", f"{server}/flaky.jpg",
            "ftp://example.com/a.jpg"]
    listing = tmp_path / "urls.txt"
    listing.write_text("# my cats\n" + "\n".join(urls) + "\n\n" + urls[0] + "\n")
    cfg = HttpConfig(timeout=0.3, retries=1, backoff=0.05, max_bytes=100_000, concurrency=3)
    t0 = time.perf_counter()
    src = open_source(str(listing), cache_dir=tmp_path / "cache", http=cfg)
    elapsed = time.perf_counter() - t0
    items = {it.file: it for it in src.items()}
    assert set(items) == {urls[0], urls[1], urls[7]}  # duplicates in the list are fetched once
    assert src.read(urls[0]) == GOOD and items[urls[0]].size == len(GOOD)
    why = dict(src.failures)
    assert why[urls[2]] == "HTTP 404"
    assert why[urls[3]].startswith("timeout")
    assert "too large" in why[urls[4]] and "too large" in why[urls[5]]
    assert why[urls[6]] == "not an image (Content-Type text/html)"
    assert "only http/https" in why[urls[8]]
    assert _Handler.calls["/slow.jpg"] == 2  # one retry after the timeout
    assert elapsed < 8
    # a second run reuses the cache: nothing is fetched again
    before = dict(_Handler.calls)
    src2 = open_source(str(listing), cache_dir=tmp_path / "cache", http=cfg)
    assert {it.file for it in src2.items()} == set(items)
    assert _Handler.calls["/good1.jpg"] == before["/good1.jpg"]


def test_url_failures_reach_the_manifest(server: str, tmp_path: Path) -> None:
    from gantl.data.curate import CurateConfig, curate

    listing = tmp_path / "urls.txt"
    listing.write_text(f"{server}/good3.jpg\n{server}/missing.jpg\n{server}/page.jpg\n")
    cfg = CurateConfig(size=32, workers=1)
    cfg.filters.text.enabled = cfg.filters.face.enabled = False
    cfg.http = HttpConfig(timeout=1, retries=0)
    res = curate(str(listing), cfg, manifest=tmp_path / "m.csv", progress=False)
    rows = {r["file"]: r for r in res.rows}
    assert rows[f"{server}/missing.jpg"]["reasons"] == "download"
    assert rows[f"{server}/missing.jpg"]["error"] == "HTTP 404"
    assert "Content-Type text/html" in rows[f"{server}/page.jpg"]["error"]
    assert res.counts["download"] == 2
    # the good image is a plain red field: it passes format/resolution and fails blur
    assert rows[f"{server}/good3.jpg"]["reasons"] == "blur"


def test_folder_source_is_recursive_and_skips_non_images(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "x.jpg").write_bytes(GOOD)
    (tmp_path / "y.PNG").write_bytes(GOOD)
    (tmp_path / "notes.txt").write_text("hi")
    (tmp_path / ".hidden.jpg").write_bytes(GOOD)
    src = FolderSource(tmp_path)
    assert [it.file for it in src.items()] == ["a/b/x.jpg", "y.PNG"]
    assert src.ignored == ["notes.txt"]
    assert src.read("a/b/x.jpg") == GOOD


def test_zip_source_with_prefix_and_pickling(tmp_path: Path) -> None:
    import pickle

    path = tmp_path / "d.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("train/cat/1.jpg", GOOD)
        zf.writestr("train/dog/2.jpg", GOOD)
        zf.writestr("test/cat/3.jpg", GOOD)
        zf.writestr("README.md", "x")
    src = open_source(f"{path}:train", cache_dir=tmp_path)
    assert isinstance(src, ZipSource)
    assert [it.file for it in src.items()] == ["cat/1.jpg", "dog/2.jpg"]
    clone = pickle.loads(pickle.dumps(src))  # what a worker process receives
    assert clone.read("dog/2.jpg") == GOOD
    assert [it.file for it in open_source(str(path), cache_dir=tmp_path).items()][-1] == "train/dog/2.jpg"


def test_bad_sources_give_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        open_source(str(tmp_path / "nope"), cache_dir=tmp_path)
    bogus = tmp_path / "x.zip"
    bogus.write_text("not a zip")
    with pytest.raises(DatasetError, match="not a readable zip"):
        open_source(str(bogus), cache_dir=tmp_path)
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    with pytest.raises(DatasetError, match="no URLs"):
        open_source(str(empty), cache_dir=tmp_path)


# ----------------------------------------------------------------------------- instagram


class _Node:
    def __init__(self, url: str, is_video: bool = False) -> None:
        self.display_url, self.is_video = url, is_video


class _Post:
    def __init__(self, shortcode: str, url: str = "", nodes: list[_Node] | None = None, is_video: bool = False):
        self.shortcode, self.url, self.is_video = shortcode, url, is_video
        self.typename = "GraphSidecar" if nodes is not None else ("GraphVideo" if is_video else "GraphImage")
        self._nodes = nodes or []

    def get_sidecar_nodes(self):
        return iter(self._nodes)


def test_instagram_posts_expand_carousels_and_skip_videos() -> None:
    posts = [_Post("A", "u/a.jpg"), _Post("B", nodes=[_Node("u/b1.jpg"), _Node("u/b2.mp4", True), _Node("u/b3.jpg")]),
             _Post("C", "u/c.mp4", is_video=True), _Post("D", "u/d.jpg")]
    assert list(post_image_urls(posts, max_posts=10)) == [
        ("A.jpg", "u/a.jpg"), ("B_1.jpg", "u/b1.jpg"), ("B_3.jpg", "u/b3.jpg"), ("D.jpg", "u/d.jpg")]
    assert [n for n, _ in post_image_urls(posts, max_posts=2)] == ["A.jpg", "B_1.jpg", "B_3.jpg"]


def test_instagram_downloads_through_the_same_fetcher(server: str, tmp_path: Path) -> None:
    posts = [_Post("P1", f"{server}/good-p1.jpg"), _Post("P2", nodes=[_Node(f"{server}/good-p2.jpg"),
                                                                       _Node(f"{server}/missing.jpg")])]
    src = collect_instagram("#cats", tmp_path, HttpConfig(timeout=1, retries=0), InstagramConfig(), posts=posts)
    assert isinstance(src, DownloadedSource)
    assert sorted(it.file for it in src.items()) == ["P1.jpg", "P2_1.jpg"]
    assert src.failures == [("P2_2.jpg", "HTTP 404")]


def test_instagram_missing_extra_and_no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "instaloader", None)  # as if not installed
    with pytest.raises(MissingDependencyError, match=r"pip install 'gantl\[instagram\]'"):
        open_source("#cats", cache_dir=tmp_path)

    class ConnectionException(Exception):
        pass

    fake = types.SimpleNamespace(
        Instaloader=lambda **kw: types.SimpleNamespace(context=None),
        exceptions=types.SimpleNamespace(InstaloaderException=ConnectionException),
        Hashtag=types.SimpleNamespace(from_name=lambda ctx, name: (_ for _ in ()).throw(
            ConnectionException("HTTPSConnectionPool: Max retries exceeded\nmore detail"))),
        Profile=None,
    )
    monkeypatch.setitem(sys.modules, "instaloader", fake)
    with pytest.raises(DatasetError) as err:
        open_source("#cats", cache_dir=tmp_path)
    assert "\n" not in str(err.value) and "check the network" in str(err.value)


def test_listing_error_midway_keeps_what_was_listed(server: str, tmp_path: Path) -> None:
    def posts():
        yield _Post("OK", f"{server}/good-mid.jpg")
        raise ConnectionError("network went away")

    src = collect_instagram("@someone", tmp_path, HttpConfig(timeout=1, retries=0), InstagramConfig(), posts=posts())
    assert [it.file for it in src.items()] == ["OK.jpg"]

    def nothing():
        raise ConnectionError("offline")
        yield  # pragma: no cover

    with pytest.raises(DatasetError, match="cannot list Instagram posts"):
        collect_instagram("@someone", tmp_path, HttpConfig(), InstagramConfig(), posts=nothing())


def test_fetch_all_keeps_input_order(server: str, tmp_path: Path) -> None:
    urls = [f"{server}/good-{i}.jpg" for i in range(6)]
    out = fetch_all(urls, tmp_path, HttpConfig(concurrency=4))
    assert [d.url for d in out] == urls and all(d.path is not None for d in out)
