"""Visualisation: skeleton animation (GIF/MP4)."""

from pcm3.viz.skeleton_animation import (
    animate_skeleton,
    frame_labels_from_intervals,
    show_store_sample,
)

__all__ = ["animate_skeleton", "frame_labels_from_intervals", "show_store_sample"]
