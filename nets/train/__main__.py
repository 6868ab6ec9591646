"""``python -m nets.train train|eval|confusion|calibrate|blend|export RECIPE ...``: train, evaluate
and ship the default models."""

from __future__ import annotations

import argparse
import json
import shlex
import sys

from nets.errors import NetsError
from nets.train.blend import blend
from nets.train.commands import calibrate_command, confusion_command, eval_command, make_recipe, train_command
from nets.train.export import export
from nets.train.recipes import RECIPES


def _recipe_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", choices=sorted(RECIPES))
    parser.add_argument("--size", help="training crop WIDTHxHEIGHT, e.g. 240x180 (CPU) or 480x360 (GPU)")
    parser.add_argument("--eval-size", help="evaluation size WIDTHxHEIGHT (default: the recipe's)")
    parser.add_argument("--gpu", action="store_true", help="use the recipe's full-size GPU settings")
    parser.add_argument("--steps", type=int, help="total training steps")
    parser.add_argument("--batch", type=int, help="batch size")
    parser.add_argument("--lr", type=float, help="base learning rate (default: the recipe's)")
    parser.add_argument("--seed", type=int, help="random seed (initialisation and batches)")
    parser.add_argument("--camvid", help="CamVid root with train/ and val/ (default ../shared/data/camvid)")
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: CUDA when present)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=JSON",
                        help="set one of the recipe's options, e.g. 'quality=[10, 30]' (repeatable)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m nets.train", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train or resume a run")
    _recipe_arguments(train)
    train.add_argument("--run", required=True, help="run folder (created; resumed when it holds last.pt)")
    train.add_argument("--init", help="start a new run from the best weights of this earlier run folder, or from a "
                       "shipped model of the same network with zoo:MODEL")
    train.add_argument("--ema", type=float, help="keep and evaluate an exponential moving average of the weights "
                       "with this decay, e.g. 0.998 (default: off)")
    train.add_argument("--workers", type=int, help="data loader processes (default 0 on CPU, 4 on CUDA)")
    train.add_argument("--until", type=int, help="stop after this step (checkpointed; resume later)")
    train.add_argument("--threads", type=int, help="CPU threads for torch (1 is fastest on a busy shared CPU)")
    train.add_argument("--minutes", type=float, help="stop after this many minutes (checkpointed; resume later)")
    evaluate = commands.add_parser("eval", help="evaluate a run's best weights or the shipped weights")
    _recipe_arguments(evaluate)
    evaluate.add_argument("--run", help="run folder whose best.pt to evaluate")
    evaluate.add_argument("--weights-dir", help="weights folder with manifest.json (default nets/weights)")
    confusion = commands.add_parser("confusion", help="where sky, building and car pixels go (markdown tables)")
    _recipe_arguments(confusion)
    confusion.add_argument("--run", help="run folder whose best.pt to evaluate")
    confusion.add_argument("--weights-dir", help="weights folder with manifest.json (default nets/weights)")
    calibration = commands.add_parser("calibrate", help="choose how much of the class-weight offsets a "
                                      "segmentation run's shipped scores take off, on validation")
    _recipe_arguments(calibration)
    calibration.add_argument("--run", required=True, help="run folder whose best.pt to calibrate")
    mix = commands.add_parser("blend", help="a new finished run whose weights are a weighted mean of two "
                              "runs' or shipped models' weights")
    _recipe_arguments(mix)
    mix.add_argument("--run", required=True, help="new run folder for the blended weights")
    mix.add_argument("--init", required=True, help="the base weights: a run folder or zoo:MODEL")
    mix.add_argument("--with", dest="other", required=True, help="the weights blended in: a run folder or zoo:MODEL")
    mix.add_argument("--weight", type=float, required=True, help="their share, between 0 and 1, e.g. 0.2")
    ship = commands.add_parser("export", help="write a finished run's fp16 weights and manifest entry")
    ship.add_argument("--run", required=True, help="finished run folder")
    ship.add_argument("--weights-dir", help="weights folder (default nets/weights)")
    ship.add_argument("--fps-frames", type=int, default=5, help="timed CPU frames for the fps figure")
    ship.add_argument("--as", dest="name", help="ship under this registered model of the same layout "
                                                 "(default: the model the recipe trains)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; errors are printed as one line with exit status 1."""
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)
    command_line = shlex.join(["python", "-m", "nets.train", *argv])
    try:
        if args.command == "export":
            result = export(args.run, args.weights_dir, args.fps_frames, export_command=command_line,
                            name=args.name)
        else:
            chosen = make_recipe(args.recipe, args.size, args.gpu, args.steps, args.batch, args.camvid, args.seed,
                                  args.lr, getattr(args, "init", None), args.option, getattr(args, "ema", None),
                                  args.eval_size)
            if args.command == "train":
                result = train_command(chosen, args.run, args.device, args.workers, args.until, args.minutes,
                                       args.threads, command_line, lambda line: print(line, flush=True))
            elif args.command == "blend":
                result = blend(chosen, args.run, args.other, args.weight, args.device, command_line)
            elif args.command == "calibrate":
                result = calibrate_command(chosen, args.run, args.device, command_line)
            elif args.command == "confusion":
                print(confusion_command(chosen, args.run, args.weights_dir, args.device))
                result = None
            else:
                result = eval_command(chosen, args.run, args.weights_dir, args.device)
    except NetsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if result is not None:
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
