"""A run's images and generator files as pages show them: sample grids read without a traceback, the progression
GIF, on-screen sizes of grids and strips, and small images for a table's image column."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..runs.store import RunView, Store
from ..sampling import gif_bytes


def generator_path(store: Store, run: RunView) -> Path | None:
    """The run's generator.safetensors if training has written one yet."""
    p = store.artifacts_dir(run) / "generator.safetensors"
    return p if p.is_file() else None


def best_generator(store: Store, run: RunView) -> tuple[Path, dict[str, Any]] | None:
    """The run's best-generator.safetensors and the quality row of the epoch that wrote it (the newest row marked
    best), or None before the first scored epoch."""
    from ..trainer import BEST_GENERATOR

    p = store.artifacts_dir(run) / BEST_GENERATOR
    best = [q for q in store.quality(run.id) if q.get("best")]
    return (p, best[-1]) if p.is_file() and best else None


def read_grid(path: str | Path) -> np.ndarray:
    """A saved sample grid PNG as uint8 (H, W); ValueError, naming no path, if it is not a readable image."""
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("L"))
    except Exception as e:  # PIL's decoders raise many types for a damaged file (OSError, SyntaxError, EOFError,
        # struct.error, DecompressionBombError...); all mean the same to a page: a note instead of the image, never
        # a traceback with the server's path in it.
        raise ValueError("this sample image is unreadable") from e


def progression_gif(paths: Sequence[str | Path], ms_per_frame: int = 300) -> bytes:
    """The epoch grids in order as one looping animated GIF."""
    if not paths:
        raise ValueError("no sample grids to animate")
    return gif_bytes([read_grid(p) for p in paths], ms_per_frame=ms_per_frame)


GRID_PX = 768         # an 8×8 grid (or smaller) on screen
TILE_PX = 64          # at least this many pixels a digit once a grid is wider than 12 digits (16×16: 1024 px)
STRIP_TILE_PX = 120   # a slerp strip's digits, until the strip reaches STRIP_MAX_PX
STRIP_MAX_PX = 1200


def grid_display_px(ncol: int) -> int:
    """On-screen width of a grid `ncol` digits wide: GRID_PX up to 12 digits, then TILE_PX a digit, so a grid with
    more digits is never drawn narrower than one with fewer (any width: sampling.png_at_width needs no whole-number
    scale)."""
    return max(GRID_PX, TILE_PX * max(1, int(ncol)))


def strip_display_px(steps: int) -> int:
    """On-screen width of a slerp strip of `steps` digits: grows with the steps, up to STRIP_MAX_PX."""
    return min(STRIP_MAX_PX, STRIP_TILE_PX * max(1, int(steps)))


DOWNLOAD_SCALES = (1, 2, 4, 8)  # ×1 is the generator's own 28 px a digit


def grid_data_uri(path: str | Path) -> str | None:
    """A saved sample grid as a data: URI for a table's image column (None if unreadable or over 512 KB)."""
    import base64

    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    if len(data) > 512 * 1024 or not data.startswith(b"\x89PNG"):
        return None
    return "data:image/png;base64," + base64.b64encode(data).decode()


def note_image_uri(*lines: str) -> str:
    """A few words as a small SVG data: URI, for a table's image column where there is no image (an empty image
    cell reads "None"); grey text, readable on light and dark backgrounds."""
    import base64
    import html as _html

    top = 45 - 8 * (len(lines) - 1)
    text = "".join(f'<text x="60" y="{top + 16 * i}" text-anchor="middle">{_html.escape(line)}</text>'
                   for i, line in enumerate(lines))
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="120" height="90" viewBox="0 0 120 90" '
           f'font-family="sans-serif" font-size="12" fill="#8a8f98">{text}</svg>')
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()
