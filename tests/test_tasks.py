"""Task adapters over the zoo models: output keys, shapes and dtypes, refinement, combination."""
from __future__ import annotations

import pytest
import torch

from nets import zoo
from stream.errors import DenseStreamError, ModelError
from stream.refinement import Refinement
from stream.tasks import CombinedTask, build_task


def frames(n=2, h=37, w=45, seed=0):
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, h, w, 3), dtype=torch.uint8, generator=generator)
    return images.permute(0, 3, 1, 2)  # channels_last memory, as the engine passes them


def run(task, images):
    task.prepare(torch.device("cpu"))
    with torch.inference_mode():
        return task(images)


@pytest.mark.parametrize("name, keys", [("seg", {"labels"}), ("depth", {"depth"}),
                                        ("seg+depth", {"labels", "depth"})])
def test_dense_tasks_give_input_size_maps(name, keys):
    torch.manual_seed(0)
    outputs = run(build_task(name), frames())
    assert set(outputs) == keys
    if "labels" in outputs:
        assert outputs["labels"].shape == (2, 37, 45) and outputs["labels"].dtype == torch.uint8
        assert int(outputs["labels"].max()) < 11
    if "depth" in outputs:
        assert outputs["depth"].shape == (2, 37, 45) and outputs["depth"].dtype == torch.float32
        assert bool((outputs["depth"] >= 0).all())


def test_denoise_returns_uint8_image_of_input_size():
    outputs = run(build_task("denoise"), frames())
    assert outputs["restored"].shape == (2, 3, 37, 45) and outputs["restored"].dtype == torch.uint8


def test_super_resolution_gives_upscaled_image_and_display():
    task = build_task("sr")
    outputs = run(task, frames(h=20, w=24))
    assert task.scale == 2
    assert outputs["restored"].shape == (2, 3, 40, 48)
    assert outputs["display"].shape == (2, 3, 40, 48)


def test_tracking_reports_the_initial_box_then_tracks():
    task = build_task("track", init_box=(30.0, 30.0, 20.0, 20.0))
    outputs = run(task, frames(n=3, h=96, w=128))
    assert outputs["boxes"].shape == (3, 4)
    assert outputs["boxes"][0].tolist() == [30.0, 30.0, 20.0, 20.0]
    assert outputs["scores"].shape == (3,) and outputs["lost"].dtype == torch.bool


def test_track_without_box_is_a_clear_error():
    with pytest.raises(DenseStreamError, match="--init-box"):
        build_task("track")


def test_model_of_the_wrong_kind_is_refused():
    with pytest.raises(ModelError, match="does not predict depth"):
        build_task("depth", model="lwrefinenet-mbv2-camvid")


def test_unknown_task_and_refinement_are_clear_errors():
    with pytest.raises(DenseStreamError, match="unknown task"):
        build_task("segment")
    with pytest.raises(DenseStreamError, match="unknown refinement"):
        Refinement.parse("spn,blur")
    with pytest.raises(DenseStreamError, match="one of spn and crf"):
        Refinement.parse("spn,crf")


def test_checkpoint_path_loads_through_the_zoo(tmp_path):
    torch.manual_seed(1)
    model = zoo.build("joint-mbv2-camvid")
    path = tmp_path / "joint.pt"
    torch.save({"state_dict": model.state_dict()}, path)
    task = build_task("seg+depth", model=str(path))
    images = frames()
    outputs = run(task, images)
    with torch.inference_mode():
        logits, _ = model.eval()(task.normalise(images))
    assert torch.equal(outputs["labels"], logits.argmax(1).to(torch.uint8))


def test_ccrf_refinement_smooths_depth_within_flat_regions():
    task = build_task("depth", refine="ccrf")
    images = torch.full((1, 3, 24, 32), 128, dtype=torch.uint8)  # one flat region
    plain = run(build_task("depth"), images)["depth"]
    refined = run(task, images)["depth"]
    assert refined.shape == plain.shape
    assert float(refined.std()) < float(plain.std())


@pytest.mark.parametrize("refine", ["spn", "crf"])
def test_label_refinement_keeps_shape_and_class_range(refine):
    outputs = run(build_task("seg", refine=refine), frames(n=1, h=21, w=27))
    assert outputs["labels"].shape == (1, 21, 27) and int(outputs["labels"].max()) < 11


def test_combined_task_merges_outputs():
    task = build_task("seg+depth,denoise")
    assert isinstance(task, CombinedTask)
    outputs = run(task, frames())
    assert set(outputs) == {"labels", "depth", "restored"}
    assert task.outputs == ("labels", "depth", "restored")
