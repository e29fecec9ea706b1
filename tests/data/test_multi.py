"""Several people in one training stream (talker.data.multi) and a person's reference crops
(talker.data.frames: ``reference``, ``data.reference``, ``data.train_fraction``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from talker.config import compose_config, instantiate
from talker.data.frames import REFERENCE_SIZE, FrameConditions, ReferenceFrame
from talker.data.multi import IdentityBatches, MultiIdentityDataModule

from ..conftest import TINY

MULTI_TINY = [o.replace("data.", "data.base.") if o.startswith(("data.synthetic.", "data.val_frames")) else o for o in TINY]


def setup(overrides: list[str]):
    dm = instantiate(compose_config(overrides).data, "data")
    dm.prepare_data()
    dm.setup("fit")
    return dm


@pytest.fixture(scope="module")
def two_people(data_dir: Path) -> MultiIdentityDataModule:
    return setup(["data=multi_identity", *MULTI_TINY, "data.identities=[bo,cy]", f"paths.data_dir={data_dir}"])


def test_every_step_is_one_persons_frame_with_that_persons_reference(two_people: MultiIdentityDataModule) -> None:
    bo, cy = two_people.identities
    assert bo.synthetic.identity == "bo" and cy.synthetic.identity == "cy" and bo.num_rays == cy.num_rays == 128
    batches = two_people.train_dataloader().batches
    assert isinstance(batches, IdentityBatches) and len(batches) == len(bo.train_split) + len(cy.train_split)
    last_of_bo = len(bo.train_split) - 1
    assert batches.locate(last_of_bo) == (0, last_of_bo) and batches.locate(last_of_bo + 1) == (1, 0)
    for index, person, own in ((last_of_bo, 0, bo), (last_of_bo + 1, 1, cy)):
        seeded = lambda: torch.Generator().manual_seed(7)  # noqa: E731
        batch = batches.sample(index, seeded())
        alone = own.ray_batches().sample(batches.locate(index)[1], seeded())
        assert batch["identity"] == person and torch.equal(batch["rgb"], alone["rgb"])
        # A random crop of the same person (data.reference=random): one of their training frames'.
        crops = own.conditions.references
        assert crops is not None and crops.shape == (len(own.train_split), 3, REFERENCE_SIZE, REFERENCE_SIZE)
        assert any(torch.equal(batch["cond"]["reference"], crop) for crop in crops)
    assert not torch.equal(bo.conditions.references, cy.conditions.references[: len(bo.train_split)])
    assert len(two_people.train_conditions()) == len(batches)
    assert two_people.eval_frames().split is bo.val_split and two_people.train_split is None


def test_an_unknown_person_is_named(data_dir: Path) -> None:
    with pytest.raises(ValueError, match=r"data.identities: 'nobody' is neither"):
        instantiate(compose_config(["data=multi_identity", "data.identities=[bo,nobody]"]).data, "data")


def test_the_first_reference_is_the_first_training_frame_for_every_frame(tiny_overrides: list[str]) -> None:
    dm = setup([*tiny_overrides, "data.reference=first"])
    first = dm.conditions.references[0]
    for cond in (dm.train_conditions()[3], dm.eval_frames()[0]["cond"]):  # held-out frames read the training crop
        assert torch.equal(cond["reference"], first)
    assert "reference" not in setup(tiny_overrides).train_conditions()[0]  # none unless asked for


def test_a_random_reference_is_drawn_per_call() -> None:
    crops = torch.arange(6.0).view(6, 1, 1, 1)
    draw = ReferenceFrame("random")
    torch.manual_seed(0)
    assert len({float(draw(crops, 0)) for _ in range(40)}) > 3
    assert float(ReferenceFrame("first")(crops, 5)) == 0.0
    with pytest.raises(ValueError, match="data.reference"):
        FrameConditions(reference="middle")  # type: ignore[arg-type]


def test_train_fraction_keeps_the_first_training_frames_and_every_held_out_one(tiny_overrides: list[str]) -> None:
    full, half = setup(tiny_overrides), setup([*tiny_overrides, "data.train_fraction=0.5"])
    n = len(full.train_split)
    assert len(half.train_split) == (n + 1) // 2 and torch.equal(half.train_split.images, full.train_split.images[: (n + 1) // 2])
    assert len(half.val_split) == len(full.val_split) and len(half.train_conditions()) == len(half.train_split)
    with pytest.raises(ValueError, match="data.train_fraction"):
        setup([*tiny_overrides, "data.train_fraction=0"])
