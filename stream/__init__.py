"""densestream: frames in, dense predictions and overlays out."""
