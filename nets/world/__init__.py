"""Procedural, seeded 3-D driving world with exact depth, CamVid labels and agent boxes.

``DrivingWorld(seed).render(i)`` ray casts frame ``i`` of a town seen from a car; see world.py.
"""

from .camera import Camera, Pose
from .labels import CLASS_COLOURS, CLASS_NAMES
from .primitives import Kind, Material, PrimitiveBuilder, Primitives
from .render import SKY_DEPTH, Renderer
from .scene import Lighting, Scene, Street
from .world import Box, DrivingWorld, WorldFrame

__all__ = [
    "Box", "CLASS_COLOURS", "CLASS_NAMES", "Camera", "DrivingWorld", "Kind", "Lighting", "Material",
    "Pose", "PrimitiveBuilder", "Primitives", "Renderer", "SKY_DEPTH", "Scene", "Street", "WorldFrame",
]
