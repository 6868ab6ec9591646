"""Optional post-processing of model outputs with image-driven refinement from ``nets``.

``spn``: spatial propagation of the class probabilities with colour-edge gates (fast);
``crf``: mean-field dense CRF on the class probabilities (the slow baseline);
``ccrf``: continuous-CRF depth refinement solved by conjugate gradient.
"""
from __future__ import annotations

import torch

from .errors import DenseStreamError

REFINERS = ("spn", "crf", "ccrf")
# The task output each refiner changes, and what to call it in a message.
REFINED_OUTPUT = {"spn": ("labels", "segmentation"), "crf": ("labels", "segmentation"), "ccrf": ("depth", "depth")}


class Refinement:
    """The refiners asked for, applied to logits and depth with the frames as guidance."""

    def __init__(self, names: tuple[str, ...] = ()) -> None:
        unknown = [name for name in names if name not in REFINERS]
        if unknown:
            raise DenseStreamError(f"unknown refinement '{unknown[0]}' (choose from {', '.join(REFINERS)})")
        if "spn" in names and "crf" in names:
            raise DenseStreamError("choose one of spn and crf for the segmentation")
        self.names = tuple(names)

    @classmethod
    def parse(cls, text: str | None) -> "Refinement":
        """'spn,ccrf' -> Refinement(('spn', 'ccrf')); None or 'none' -> no refinement."""
        if not text or text == "none":
            return cls()
        return cls(tuple(part.strip() for part in text.split(",") if part.strip()))

    def check_applies(self, outputs: tuple[str, ...], task: str) -> None:
        """Refuse a refiner whose map is not among the task's ``outputs`` (it would do nothing)."""
        for name in self.names:
            output, kind = REFINED_OUTPUT[name]
            if output not in outputs:
                raise DenseStreamError(f"--refine {name} has no effect with --task {task}: it refines {kind}, "
                                       f"which this task does not produce")

    def __bool__(self) -> bool:
        return bool(self.names)

    @staticmethod
    def _guide(images: torch.Tensor) -> torch.Tensor:
        return images.float().div(255.0).contiguous()

    def labels(self, logits: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        """Per-pixel class ids, after probability refinement when spn or crf is on."""
        if "spn" in self.names or "crf" in self.names:
            from nets.crf import dense_crf
            from nets.spn import edge_gates, propagate_four_ways

            probs = logits.float().softmax(1)
            guide = self._guide(images)
            if "spn" in self.names:
                probs = propagate_four_ways(probs, edge_gates(guide))
            else:
                probs = dense_crf(probs, guide)
            return probs.argmax(1).to(torch.uint8)
        return logits.argmax(1).to(torch.uint8)

    def depth(self, depth: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        """N x H x W metres, smoothed within image regions when ccrf is on."""
        if "ccrf" not in self.names:
            return depth
        from nets.crf import refine_depth_ccrf

        refined = refine_depth_ccrf(depth.float()[:, None], self._guide(images), iterations=50)
        return refined[:, 0]
