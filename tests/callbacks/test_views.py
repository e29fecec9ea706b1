"""What a researcher sees in TensorBoard after a fit: curves, learning rates, panels, hparams, projector."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from talker.config import compose_config
from talker.fit import train

from .tb_views import assert_hparams_view_has_final_metrics, load_events


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    from ..conftest import TINY

    tmp = tmp_path_factory.mktemp("views")
    cfg = compose_config([*TINY, f"paths.data_dir={data_dir}", f"run_dir={tmp / 'run'}", "trainer.max_steps=4"])
    return train(cfg)


def test_curves_learning_rates_and_hparams(tiny_run: Path) -> None:
    acc = load_events(tiny_run / "tb")
    tags = set(acc.Tags()["tensors"])
    assert {"train/loss", "train/psnr", "val/psnr"} <= tags
    assert {"lr-AdamW/encoder", "lr-AdamW/net"} <= tags  # one learning-rate curve per parameter group
    assert {"speed/fps", "speed/render_ms"} <= tags
    assert_hparams_view_has_final_metrics(tiny_run / "tb", "seed", "name")
    psnr = [e.tensor_proto.float_val[0] for e in acc.Tensors("eval/psnr")]
    expected = json.loads((tiny_run / "metrics.json").read_text())["metrics"]["psnr"]
    assert psnr[-1] == pytest.approx(expected, rel=1e-5)  # the hparams view shows the held-out value


def test_image_panel_shows_the_landmarks(tiny_run: Path) -> None:
    acc = load_events(tiny_run / "tb")
    encoded = acc.Tensors("val/frame_0")[-1].tensor_proto.string_val[2]  # width, height, PNG
    image = np.asarray(Image.open(io.BytesIO(encoded)).convert("RGB"))
    h = image.shape[0]
    assert image.shape[1] == 5 * h  # render | ground truth | error | depth | opacity
    truth = image[:, h : 2 * h]
    magenta = (truth[..., 0] == 255) & (truth[..., 1] == 0) & (truth[..., 2] == 255)
    assert magenta.sum() >= 5  # mouth landmarks drawn (some coincide at 32 px)
    assert not ((image[:, :h, 0] == 255) & (image[:, :h, 1] == 0) & (image[:, :h, 2] == 255)).all()


def test_projector_holds_every_frame_with_mouth_opening(tiny_run: Path) -> None:
    tb = tiny_run / "tb"
    config = (tb / "projector_config.pbtxt").read_text()
    assert 'tensor_name: "conditioning/h_cond' in config and "sprite" in config
    metadata = next(tb.rglob("metadata.tsv")).read_text().strip().splitlines()
    tensors = next(tb.rglob("tensors.tsv")).read_text().strip().splitlines()
    assert metadata[0].split("\t") == ["split", "img_id", "opening", "opening_quintile"]
    rows = [line.split("\t") for line in metadata[1:]]
    assert len(rows) == len(tensors) == 12  # 9 training + 3 held-out frames of the tiny clip
    assert {r[0] for r in rows} == {"train", "val"}
    by_quintile = {}
    for r in rows:
        by_quintile.setdefault(r[3], []).append(float(r[2]))
    assert max(by_quintile["1 closed"]) <= min(by_quintile["5 open"])
    assert len(tensors[0].split("\t")) > 1  # one column per feature of h_cond
