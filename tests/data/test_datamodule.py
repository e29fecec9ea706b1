import torch

from talker.config import compose_config, instantiate


def datamodule(overrides: list[str]):
    dm = instantiate(compose_config(overrides).data, "data")
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_conditions_follow_the_frames(tiny_overrides: list[str]) -> None:
    dm = datamodule(tiny_overrides)
    batches = dm.train_dataloader().batches
    a, b = batches.sample(0)["cond"]["landmarks"], batches.sample(5)["cond"]["landmarks"]
    assert a.shape == (5, 68, 3) and a.abs().sum() > 0 and not torch.equal(a, b)


def test_zero_condition_withholds_the_driving_signal(tiny_overrides: list[str]) -> None:
    dm = datamodule([*tiny_overrides, "data.zero_condition=true"])
    conditions = [
        dm.train_dataloader().batches.sample(3)["cond"],
        dm.eval_frames()[0]["cond"],
        *dm.train_conditions(),
    ]
    for cond in conditions:
        assert cond["landmarks"].shape == (5, 68, 3) and not cond["landmarks"].any()
