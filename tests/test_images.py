"""Sample grids, the progression GIF and on-screen sizes (gan_core.web.images)."""
import numpy as np
import pytest

from gan_core.sampling import grid, png_bytes
from gan_core.web import images


def test_progression_gif_and_display_sizes(tmp_path):
    paths = []
    for i in range(3):
        p = tmp_path / f"e{i}.png"
        p.write_bytes(png_bytes(grid(np.full((4, 28, 28), 60 * i, dtype=np.uint8), ncol=2)))
        paths.append(p)
    assert (images.read_grid(paths[1]) == grid(np.full((4, 28, 28), 60, dtype=np.uint8), ncol=2)).all()
    assert images.progression_gif(paths)[:6] == b"GIF89a"
    with pytest.raises(ValueError):
        images.progression_gif([])
    # On screen a grid is never smaller than its own pixels, and an 8-wide grid at least three times its own width.
    assert images.grid_display_px(8) >= 3 * grid(np.zeros((64, 28, 28), dtype=np.uint8), ncol=8).shape[1]
    for ncol in (1, 8, 16, 100, 200):
        assert images.grid_display_px(ncol) >= grid(np.zeros((ncol, 28, 28), dtype=np.uint8), ncol=ncol).shape[1]
