"""An S3 endpoint for tests and benchmarks: moto's standalone server, a real HTTP server on
127.0.0.1 that the ordinary clients reach as they would AWS, and a TCP relay in front of it
that can be switched off and on (an outage) and counts what crosses it."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from contextlib import contextmanager
from typing import Iterator


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def moto_server(checks_credentials: bool = False) -> Iterator[tuple[str, subprocess.Popen]]:
    """(its URL, its process) while it runs. moto takes any credentials unless asked to check
    them: then only keys it issued (none) are accepted."""
    port = free_port()
    env = {**os.environ, **({"INITIAL_NO_AUTH_ACTION_COUNT": "0"} if checks_credentials else {})}
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                urllib.request.urlopen(url + "/moto-api/", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("moto's S3 server did not start") from None
                time.sleep(0.2)
        yield url, server
    finally:
        server.terminate()
        server.wait(10)


REQUEST = re.compile(rb"^(GET|PUT|POST|HEAD|DELETE) (/[^ ?]*)(\?[^ ]*)? HTTP/1\.1\r$", re.MULTILINE)


class Relay:
    """A TCP relay to an endpoint: `stop` refuses new connections and cuts those open (the
    server gone), `start` listens again at the same address. It counts the bytes each way,
    the requests by method, and the whole-object GETs by key (requests read off the stream).
    `cut_download` makes a download end halfway, as an object deleted mid-read would."""

    def __init__(self, target: str):
        host, port = target.removeprefix("http://").split(":")
        self.target = (host, int(port))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.listener, self.open = None, []
        self.up = self.down = 0
        self.requests: Counter = Counter()
        self.object_gets: Counter = Counter()
        self.cuts: dict[str, tuple[int, object]] = {}  # key -> (bytes to pass, what to do then)
        self.watched: dict[socket.socket, list] = {}  # an endpoint side -> [bytes left, what to do]
        self.lock = threading.Lock()

    def cut_download(self, key: str, after_bytes: int, then) -> None:
        """The next GET of `key` (/bucket/path) passes `after_bytes` of its answer, then `then()`
        runs and the connection is cut; later GETs pass."""
        self.cuts[key] = (after_bytes, then)

    def start(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", self.port), reuse_port=True)
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def stop(self) -> None:
        self.listener.close()
        for s in self.open:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        self.open = []

    def counts(self) -> dict:
        with self.lock:
            return {"bytes_up": self.up, "bytes_down": self.down, "requests": dict(self.requests),
                    "object_gets": dict(self.object_gets)}

    def _accept(self, listener) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            self.open += [client, server]
            threading.Thread(target=self._pipe, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, False), daemon=True).start()

    def _pipe(self, a, b, upward: bool) -> None:
        try:
            while data := a.recv(65536):
                with self.lock:
                    if upward:
                        self.up += len(data)
                        for method, key, query in REQUEST.findall(data):
                            self.requests[method.decode()] += 1
                            if method == b"GET" and not query:
                                self.object_gets[key.decode()] += 1
                            if method == b"GET" and key.decode() in self.cuts:
                                self.watched[b] = list(self.cuts.pop(key.decode()))
                    else:
                        self.down += len(data)
                        cut = self.watched.get(a)
                        if cut and len(data) >= cut[0]:
                            b.sendall(data[:cut[0]])
                            self.watched.pop(a)
                            cut[1]()
                            return  # `finally` closes both sides mid-answer
                        if cut:
                            cut[0] -= len(data)
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.close()
                except OSError:
                    pass
