#!/bin/sh
# Remake the pictures of docs/overlay-controls.md: frame 0 of the synthetic drive, one control each.
set -e
SRC="synth://drive?seed=3&frames=1&size=320x240"
shot() {  # shot NAME ARGS...: run, then keep frame 0 as docs/controls/NAME.png
    name=$1; shift
    densestream run "$SRC" --out "/tmp/densestream-$name" --quiet "$@"
    cp "/tmp/densestream-$name/frame_000000.png" "docs/controls/$name.png"
}
shot default     --task seg
shot camvid      --task seg --palette camvid
shot opacity     --task seg --opacity 0.8
shot classes     --task seg --classes Road,Car,Pedestrian
shot legend-all  --task seg --legend all
shot legend-off  --task seg --legend off
shot depth-fixed --task depth
shot depth-auto  --task depth --depth-range auto
shot depth-cmap  --task depth --depth-range auto --depth-cmap viridis
shot line-width  --task track --init-box 12,112,70,44 --line-width 6
shot grid-full   --task seg+depth,denoise --layout grid --full-panels --legend off
