"""Train the quality-metric classifier for one dataset with gan_core's own code and ship it in gan_core/assets.

    python scripts/train_classifier.py --dataset mnist --epochs 4
    python scripts/train_classifier.py --dataset fashion_mnist --epochs 8

Prints and stores (in the safetensors header) the test accuracy; BENCHMARKS.md records both.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gan_core.data import load_dataset  # noqa: E402
from gan_core.metrics import accuracy, classifier_path, load_classifier, save_classifier, train_classifier  # noqa: E402


def read_info(path: Path) -> dict:
    """The JSON info stored in a classifier file's header."""
    import json

    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return json.loads(f.metadata()["gan_studio"])


def main() -> int:
    """Train, evaluate on the test split, save."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=["mnist", "fashion_mnist"], default="mnist")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--stats-only", action="store_true",
                   help="keep the shipped weights, recompute only the reference feature statistics")
    args = p.parse_args()
    x, y = load_dataset(args.dataset, "train")
    xt, yt = load_dataset(args.dataset, "test")
    t0 = time.time()
    if args.stats_only:
        model = load_classifier(args.dataset)
        info = read_info(classifier_path(args.dataset))
        save_classifier(model, classifier_path(args.dataset), info, x, y)
        print(f"{args.dataset}: reference statistics rewritten")
        return 0
    model = train_classifier(x, y, epochs=args.epochs, seed=args.seed)
    acc = accuracy(model, xt, yt)
    path = classifier_path(args.dataset)
    info = {"dataset": args.dataset, "test_accuracy": acc, "epochs": args.epochs, "seed": args.seed,
            "command": " ".join(["python", "scripts/train_classifier.py", *sys.argv[1:]])}
    save_classifier(model, path, info, x, y)
    print(f"{args.dataset}: test accuracy {acc:.4f} after {args.epochs} epochs ({time.time() - t0:.0f} s) → {path} "
          f"({path.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
