"""The `densestream models` table agrees with the zoo, the manifest and what `run` accepts."""
import warnings

import pytest
from click.testing import CliRunner

from nets import zoo
from stream.catalogue import headline, model_table
from stream.cli import main
from stream.tasks import DEFAULT_MODELS, build_task, served_tasks


@pytest.mark.parametrize("name", zoo.available())
def test_every_listed_task_runs_the_model(name):
    """Each --task the table lists for a model is one that `run --model NAME` accepts."""
    spec = zoo.spec(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # untrained models warn
        for task in served_tasks(spec):
            build_task(task, model=name, init_box=(10, 10, 20, 20) if task == "track" else None)


def test_table_marks_each_default_once_and_quotes_the_manifest():
    lines = model_table()
    rows = {line.split()[0]: line for line in lines[1:1 + len(zoo.available())]}
    assert sorted(rows) == zoo.available()
    for task, name in DEFAULT_MODELS.items():
        assert f" {task}* " in f" {rows[name]} "
        assert sum(f" {task}* " in f" {row} " for row in rows.values()) == 1
    seg = zoo.spec("lwrefinenet-mbv2-camvid")
    assert f"{100 * seg.metrics['miou']:.1f} mIoU" in rows[seg.name] and f"{seg.cpu_fps:.2f}" in rows[seg.name]
    sr = zoo.spec("rednet20-sr2")
    assert headline(sr) == (f"{sr.metrics['gain_db']:+.2f} dB over bicubic; "
                            f"photographs {sr.metrics['photos_gain_db']:+.2f} dB")
    assert "untrained" in rows["refinenet-r101-camvid"] and headline(zoo.spec("refinenet-r101-camvid")) == ""


def test_models_command_prints_the_table():
    result = CliRunner().invoke(main, ["models"])
    assert result.exit_code == 0
    assert result.output.splitlines() == model_table()


def test_headline_of_a_road_model_names_its_real_road_checks():
    import dataclasses

    seg = dataclasses.replace(zoo.spec("lwrefinenet-mbv2-camvid"), metrics={
        "miou": 0.64, "idd_group_miou": 0.61, "idd_sky_iou": 0.9, "clip_sky_share": 0.97,
        "clip_cars_found": 0.94})
    assert headline(seg) == ("64.0 mIoU CamVid val; IDD-lite held-out 61.0 group mIoU, sky IoU 90; "
                             "dash-cam sky 97% Sky, 94% of its cars Car")
    joint = dataclasses.replace(zoo.spec("joint-mbv2-camvid"), metrics={
        "miou": 0.5, "synth_abs_rel": 0.1, "car_contact_within_25": 0.7, "clip_lane_car_ratio": 0.31})
    assert headline(joint).endswith("70% of CamVid val cars as far as the road below; "
                                    "dash-cam cars at 0.31x the distance its lane marks give")
    assert model_table()[-1] == "Weights trained on IDD-lite (India Driving Dataset) carry its terms: research use only."
