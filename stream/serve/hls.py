"""HLS output of one stream: ``index.m3u8`` and a rolling window of H.264 MPEG-TS segments,
playable on any device (Safari, iOS, Android, hls.js) without WebRTC."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ..errors import SinkError
from ..frames import Frame
from ..sinks import Sink
from ..sources.base import error_reason

TICKS = Fraction(1, 90_000)  # MPEG-TS clock
PLAYLIST = "index.m3u8"


class HlsSink(Sink):
    """Writes ``directory/index.m3u8`` with segments of about ``segment_seconds``, keeping the
    last ``window`` of them (older ones are deleted). Frames keep their own timing; the encoder
    opens on the first frame (its size) and puts a keyframe every segment's worth of frames at
    the nominal ``fps``."""

    def __init__(self, directory: str | Path, *, fps: float = 25.0, segment_seconds: float = 2.0,
                 window: int = 6, codec: str = "libx264") -> None:
        super().__init__()
        if segment_seconds <= 0 or window < 1:
            raise SinkError("HLS needs a positive segment length and a window of at least one segment")
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise SinkError(f"cannot create the HLS folder {self.directory}: {error_reason(error)}") from error
        self._fps, self._segment, self._window, self._codec = fps, segment_seconds, window, codec
        self._container = None
        self._video = None
        self._last_pts: int | None = None

    def describe(self) -> str:
        return f"HLS output {self.directory / PLAYLIST}"

    def _open(self, width: int, height: int) -> None:
        options = {"hls_time": f"{self._segment:g}", "hls_list_size": str(self._window),
                   "hls_flags": "delete_segments+independent_segments+omit_endlist"}
        try:
            self._container = av.open(str(self.directory / PLAYLIST), "w", format="hls", options=options)
            video = self._container.add_stream(self._codec, rate=round(self._fps) or 25)
            video.width, video.height, video.pix_fmt = width - width % 2, height - height % 2, "yuv420p"
            video.time_base = TICKS
            keyframe_every = max(1, round(self._fps * self._segment))  # segments start on keyframes
            video.options = {"preset": "veryfast", "tune": "zerolatency", "g": str(keyframe_every),
                             "sc_threshold": "0"}
            self._video = video
        except (av.FFmpegError, OSError, ValueError) as error:
            raise SinkError(f"cannot start {self.describe()}: {error_reason(error)}") from error

    def _write(self, frame: Frame, image: np.ndarray, outputs: dict[str, np.ndarray]) -> None:
        if self._container is None:
            self._open(image.shape[1], image.shape[0])
        height, width = self._video.height, self._video.width
        picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[:height, :width]), format="rgb24")
        pts = round(frame.seconds / TICKS)
        if self._last_pts is not None and pts <= self._last_pts:
            pts = self._last_pts + 1
        self._last_pts = picture.pts = pts
        picture.time_base = TICKS
        try:
            for packet in self._video.encode(picture):
                self._container.mux(packet)
        except (av.FFmpegError, OSError) as error:
            raise SinkError(f"{self.describe()}: writing failed: {error_reason(error)}") from error

    def _close(self) -> None:
        if self._container is None:
            return
        try:
            for packet in self._video.encode():
                self._container.mux(packet)
        except (av.FFmpegError, OSError) as error:
            raise SinkError(f"{self.describe()}: finishing failed: {error_reason(error)}") from error
        finally:
            self._container.close()
