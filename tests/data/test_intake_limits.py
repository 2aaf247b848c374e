"""URL intake has a total time limit and a size limit per download (local 127.0.0.1 server only).

Issue 14 item 9: a server sending one byte every 3 s hung ``gantl data build`` on a URL list
forever, because the 10 s timeout is per read and there was no limit per download.
"""

from __future__ import annotations

import gzip
import io
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from gantl.config import apply_overrides
from gantl.data.intake import HttpConfig, fetch, fetch_all

_buf = io.BytesIO()
Image.new("RGB", (32, 24), "blue").save(_buf, format="PNG")
PNG = _buf.getvalue()
DRIP_FOR = 30.0  # the server gives up dripping after this long, so no test can hang on it


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def _drip(self, data: bytes, every: float) -> None:
        t0 = time.monotonic()
        try:
            for i in range(len(data)):
                if time.monotonic() - t0 > DRIP_FOR:
                    return
                self.wfile.write(data[i:i + 1])
                self.wfile.flush()
                time.sleep(every)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        if self.path == "/drip-body.png":  # headers at once, then one byte every 0.2 s
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(PNG) * 100))
            self.end_headers()
            self._drip(PNG * 100, 0.2)
        elif self.path == "/drip-headers.png":  # even the status line and headers arrive byte by byte
            head = b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\n" + b"X-Pad: " + b"a" * 5000 + b"\r\n\r\n"
            self._drip(head, 0.2)
        elif self.path == "/gzip.png":  # a compressed transfer of a good image is accepted
            body = gzip.compress(PNG)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path == "/gzip-bomb.png":  # 20 KB on the wire, 20 MB inflated
            body = gzip.compress(b"\0" * 20_000_000)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path == "/endless.png":  # no Content-Length, bytes as fast as possible
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()
            t0 = time.monotonic()
            try:
                while time.monotonic() - t0 < DRIP_FOR:
                    self.wfile.write(b"\xff" * 65536)
            except (BrokenPipeError, ConnectionResetError):
                pass
            self.close_connection = True
        else:
            self.send_response(404)
            self.end_headers()


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


CFG = HttpConfig(timeout=1.0, retries=0, max_seconds=1.5, max_bytes=1_000_000)


@pytest.mark.parametrize("path", ["/drip-body.png", "/drip-headers.png"])
def test_a_dripping_server_is_cut_off_at_max_seconds(server: str, tmp_path: Path, path: str) -> None:
    t0 = time.monotonic()
    result = fetch(server + path, tmp_path, CFG)
    elapsed = time.monotonic() - t0
    assert result.path is None and "max_seconds=1.5" in (result.error or "")
    assert elapsed < 1.5 + 1.0 + 1.5  # the limit, the per-read timeout, and slack for a busy machine
    assert not list(tmp_path.iterdir())  # nothing half-downloaded is kept


def test_retries_each_get_their_own_limit_and_the_list_finishes(server: str, tmp_path: Path) -> None:
    cfg = apply_overrides(CFG, {"retries": 1, "backoff": 0.0})
    t0 = time.monotonic()
    results = fetch_all([server + "/drip-body.png", server + "/gzip.png"], tmp_path, cfg)
    assert time.monotonic() - t0 < 2 * (1.5 + 1.0) + 2
    assert "2 attempts" in (results[0].error or "")
    assert results[1].path is not None and results[1].path.read_bytes() == PNG


def test_size_cap_applies_while_streaming_and_after_inflating(server: str, tmp_path: Path) -> None:
    endless = fetch(server + "/endless.png", tmp_path, apply_overrides(CFG, {"max_seconds": 20}))
    assert "too large" in (endless.error or "")
    bomb = fetch(server + "/gzip-bomb.png", tmp_path, CFG)
    assert "too large" in (bomb.error or "") and "decompressed" in (bomb.error or "")


def test_max_seconds_is_a_validated_option() -> None:
    from gantl.errors import ConfigError

    with pytest.raises(ConfigError, match="max_seconds"):
        apply_overrides(HttpConfig(), ["max_seconds=0"])
    with pytest.raises(ConfigError, match="max_seconds"):
        apply_overrides(HttpConfig(), ["max_seconds=nan"])
