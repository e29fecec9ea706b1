"""Read a run's TensorBoard folder the way TensorBoard's server does (first summary metadata per tag wins)."""

from __future__ import annotations

from pathlib import Path

from tensorboard.backend.event_processing.plugin_event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import metadata as hparams_metadata


def load_events(tb_dir: Path) -> EventAccumulator:
    acc = EventAccumulator(str(tb_dir), size_guidance={"tensors": 0, "images": 0})
    acc.Reload()
    return acc


def hparams_view(acc: EventAccumulator) -> tuple[set[str], dict[str, object], set[str]]:
    """``(metric tags of the experiment, session hparams, scalar tags)`` as the hparams plugin sees them."""
    content = acc.PluginTagToContent(hparams_metadata.PLUGIN_NAME)
    experiment = hparams_metadata.parse_experiment_plugin_data(content[hparams_metadata.EXPERIMENT_TAG])
    session = hparams_metadata.parse_session_start_info_plugin_data(content[hparams_metadata.SESSION_START_INFO_TAG])
    metrics = {info.name.tag for info in experiment.metric_infos}
    values = {}
    for key, value in session.hparams.items():
        kind = value.WhichOneof("kind")
        values[key] = getattr(value, kind)
    return metrics, values, set(acc.Tags()["tensors"])


def assert_hparams_view_has_final_metrics(tb_dir: Path, *hparams: str) -> None:
    """The run appears in the hparams view with its held-out metrics (and the given hyperparameters)."""
    metrics, values, scalars = hparams_view(load_events(tb_dir))
    assert {"eval/psnr", "eval/ssim"} <= metrics, metrics
    assert metrics <= scalars, metrics - scalars  # every declared metric has values to show
    for name in hparams:
        assert name in values, (name, values)
