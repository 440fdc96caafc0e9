"""RGB clips through Y4M as the runtime converts them (``src/y4m/convert.rs``)."""

import numpy as np
import pytest

from sammix_recipe.data.y4m_color import planes_to_rgb, read_y4m_rgb, rgb_to_planes, write_y4m_rgb


def test_the_runtime_values_of_red_and_grays():
    # the values of convert.rs's own test `grays_and_primaries`
    assert list(rgb_to_planes(np.array([[[255, 0, 0]]], np.uint8), "444")) == [76, 85, 255]
    one = lambda v: np.array([[v]], np.uint8)  # noqa: E731
    assert planes_to_rgb(one(76), one(85), one(255), "444").tolist() == [[[254, 0, 0]]]
    grays = np.repeat(np.arange(256, dtype=np.uint8)[None, :, None], 3, axis=2)
    planes = np.frombuffer(rgb_to_planes(grays, "444"), np.uint8)
    assert (planes[256:] == 128).all() and (planes[:256] == np.arange(256)).all()


@pytest.mark.parametrize("colorspace,max_err", [("444", 2), ("420jpeg", 255)])
def test_a_clip_reads_back_close_to_what_was_written(tmp_path, colorspace, max_err):
    rng = np.random.default_rng(0)
    smooth = np.kron(rng.integers(0, 256, (2, 5, 4, 3)), np.ones((1, 4, 4, 1))).astype(np.uint8)  # 2×2-block flat
    frames = smooth[:, :18, :15]  # odd width: the last chroma column covers one pixel
    path = tmp_path / "c.y4m"
    write_y4m_rgb(path, frames, colorspace=colorspace)
    header = path.read_bytes().split(b"\n", 1)[0].decode()
    assert header == f"YUV4MPEG2 W15 H18 F25:1 Ip A1:1 C{colorspace} XCOLORRANGE=FULL"
    back = read_y4m_rgb(path)
    assert back.shape == frames.shape
    err = np.abs(back.astype(int) - frames.astype(int))
    assert err.max() <= max_err
    # colours constant over each 2×2 block survive 4:2:0 to within the rounding of the matrix
    assert np.percentile(err, 99) <= 2


def test_a_frame_of_the_wrong_shape_is_refused(tmp_path):
    with pytest.raises(ValueError, match="T,H,W,3"):
        write_y4m_rgb(tmp_path / "x.y4m", np.zeros((2, 8, 8), np.uint8))
