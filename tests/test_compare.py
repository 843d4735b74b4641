"""What the Compare page computes (gan_core.web.compare)."""
from gan_core.config import TrainConfig
from gan_core.web import compare


def test_config_diff_lists_only_differing_fields():
    a, b = TrainConfig(), TrainConfig(lr_g=1e-3, g_widths=(64,))
    diff = compare.config_diff({"a": a, "b": b})
    assert [d["field"] for d in diff] == ["g_widths", "lr_g"]
    assert diff[0] == {"field": "g_widths", "a": "256, 512, 1024", "b": "64"}
    assert compare.config_diff({"a": a, "b": a}) == []
