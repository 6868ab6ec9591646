"""Task adapters over the zoo models: output keys, shapes and dtypes, refinement, combination."""
from __future__ import annotations

import pytest
import torch

from nets import zoo
from stream.errors import DenseStreamError, ModelError
from stream.refinement import Refinement
from nets.resizing import run_at_size
from stream.tasks import CombinedTask, InferSize, build_task, parse_infer_size


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


def test_restoration_model_of_another_degradation_is_refused():
    """A JPEG net asked to super-resolve would run without upscaling, under the wrong name."""
    with pytest.raises(ModelError, match="trained for --task jpeg, not sr"):
        build_task("sr", model="rednet20-jpeg")
    assert build_task("sr", model="rednet20-sr2").scale == 2


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


class _SizeRecorder(torch.nn.Module):
    """Joint-model stand-in: logits whose class is the input's sign, depth = the input's red channel."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x):
        self.seen.append(tuple(x.shape[-2:]))
        logits = torch.cat([-x[:, :1], x[:, :1]], 1)
        return logits, x[:, :1].abs()


def test_run_at_size_runs_the_network_small_and_returns_frame_size_maps():
    model = _SizeRecorder()
    inputs = torch.zeros(1, 3, 40, 60)
    inputs[:, :, 20:] = 2.0  # bottom half positive
    logits, depth = run_at_size(model, inputs, (30, 20))
    assert model.seen == [(20, 30)]
    assert logits.shape == (1, 2, 40, 60) and depth.shape == (1, 1, 40, 60)
    labels = logits.argmax(1)[0]
    assert bool((labels[:14] == 0).all()) and bool((labels[26:] == 1).all())
    assert float(depth[0, 0, 35, 10]) == pytest.approx(2.0) and float(depth[0, 0, 5, 10]) == pytest.approx(0.0)
    run_at_size(model, inputs, (60, 40))
    run_at_size(model, inputs, None)
    assert model.seen[1:] == [(40, 60), (40, 60)]


def test_infer_size_reaches_dense_tasks_only():
    outputs = run(build_task("seg+depth", infer_size=(32, 24)), frames())
    assert outputs["labels"].shape == (2, 37, 45) and outputs["depth"].shape == (2, 37, 45)
    combined = build_task("seg,denoise", infer_size=(32, 24))
    assert [getattr(task, "infer_size", None) for task in combined.tasks] == [InferSize(fixed=(32, 24)), None]
    with pytest.raises(DenseStreamError, match="applies to the seg"):
        build_task("denoise", infer_size=(32, 24))


def test_auto_infer_size_shrinks_frames_taller_than_the_models_evaluated_height():
    joint = zoo.spec("joint-mbv2-camvid")
    assert joint.eval_size == (240, 180)  # from the manifest: the shipped metrics' input size
    auto = build_task("seg+depth").infer_size
    assert auto == InferSize(max_height=180)
    assert auto.for_frame(540, 960) == (320, 180) and auto.for_frame(180, 240) is None
    assert auto.for_frame(120, 160) is None  # small frames are never enlarged
    assert build_task("seg+depth", infer_size="native").infer_size.for_frame(540, 960) is None
    assert build_task("seg").infer_size.for_frame(720, 1280) == (640, 360)
    larger = build_task("seg+depth", model="joint-mbv2-camvid-480").infer_size
    assert larger == InferSize(max_height=360) and larger.for_frame(540, 960) == (640, 360)
    with pytest.warns(UserWarning, match="no trained weights"):
        untrained = build_task("seg", model="lwrefinenet-r18-camvid")
    assert untrained.infer_size == InferSize()  # no shipped metrics, so no known scale


@pytest.mark.parametrize("text, message", [("480", "WIDTHxHEIGHT"), ("8x8", "at least 16"), ("ax3", "WIDTHxHEIGHT")])
def test_infer_size_text_is_checked(text, message):
    assert parse_infer_size("480x360") == (480, 360)
    assert parse_infer_size("auto") == "auto" and parse_infer_size("native") == "native"
    with pytest.raises(DenseStreamError, match=message):
        parse_infer_size(text)
