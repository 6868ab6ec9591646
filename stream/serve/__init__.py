"""``densestream serve``: many streams behind one HTTP port (needs the ``serve`` extra:
aiohttp and prometheus-client). A page of live tiles, REST to add and remove streams,
Prometheus metrics and a health check, over ``stream.multi.MultiStream``."""
from .app import build_app
from .hls import HlsSink
from .server import LOOPBACK, Server, hls_outputs, start_server

__all__ = ["LOOPBACK", "HlsSink", "Server", "build_app", "hls_outputs", "start_server"]
