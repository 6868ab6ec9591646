"""The browser page: one live tile per stream (an MJPEG image), its task, fps, latency, drops
and state, refreshed from ``GET /streams`` once a second; tiles come and go with the streams."""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>densestream</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body { background: #111; color: #ddd; font: 14px system-ui, sans-serif; margin: 12px; }
 h1 { font-size: 16px; font-weight: 600; margin: 0 0 10px; }
 #tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(330px, 1fr)); gap: 10px; }
 .tile { background: #1c1c1c; border-radius: 6px; overflow: hidden; position: relative; }
 .tile img { display: block; width: 100%; background: #000; min-height: 120px; }
 .tile .caption { padding: 6px 8px; display: flex; gap: 10px; flex-wrap: wrap; }
 .tile .name { font-weight: 600; color: #fff; }
 .tile .badge { position: absolute; top: 8px; left: 8px; padding: 3px 8px; border-radius: 4px;
   background: #b5651d; color: #fff; font-weight: 600; display: none; }
 .tile[data-state="reconnecting"] .badge, .tile[data-state="connecting"] .badge,
 .tile[data-state="failed"] .badge, .tile[data-state="ended"] .badge { display: block; }
 .tile[data-state="failed"] .badge { background: #a11; }
 .tile .hls { color: #8cf; }
 #empty { color: #888; }
</style></head>
<body><h1>densestream <span id="summary"></span></h1>
<div id="empty">no streams: add one with POST /streams</div>
<div id="tiles"></div>
<script>
const tiles = document.getElementById("tiles");
function tileFor(s) {
  let tile = document.querySelector(`.tile[data-name="${CSS.escape(s.name)}"]`);
  if (tile) return tile;
  tile = document.createElement("div");
  tile.className = "tile";
  tile.dataset.name = s.name;
  tile.innerHTML = '<div class="badge"></div><img alt=""><div class="caption">' +
    '<span class="name"></span><span class="task"></span><span class="fps"></span>' +
    '<span class="latency"></span><span class="drops"></span><a class="hls"></a></div>';
  tile.querySelector("img").src = "/streams/" + encodeURIComponent(s.name) + "/mjpeg";
  tile.querySelector("img").alt = s.name;
  tiles.appendChild(tile);
  return tile;
}
function show(s) {
  const tile = tileFor(s);
  tile.dataset.state = s.state;
  tile.querySelector(".badge").textContent = s.state === "failed" ? "failed: " + (s.error || "") : s.state;
  tile.querySelector(".name").textContent = s.name;
  tile.querySelector(".task").textContent = s.task;
  tile.querySelector(".fps").textContent = s.fps.toFixed(1) + " fps";
  tile.querySelector(".latency").textContent =
    s.latency_ms === null ? "latency -" : "latency " + Math.round(s.latency_ms) + " ms";
  tile.querySelector(".drops").textContent = s.dropped + " dropped, " + s.reconnects + " reconnects";
  const hls = tile.querySelector(".hls");
  if (s.hls) { hls.href = s.hls; hls.textContent = "HLS"; }
}
async function refresh() {
  try {
    const streams = await (await fetch("/streams")).json();
    const names = new Set(streams.map(s => s.name));
    for (const tile of [...tiles.children]) {
      if (!names.has(tile.dataset.name)) {
        tile.querySelector("img").src = "";
        tile.remove();
      }
    }
    streams.forEach(show);
    document.getElementById("empty").style.display = streams.length ? "none" : "block";
    document.getElementById("summary").textContent = "| " + streams.length + " stream(s)";
  } catch (e) {
    document.getElementById("summary").textContent = "| server unreachable";
  }
}
refresh();
setInterval(refresh, 1000);
</script></body></html>
"""
