"""DataComp's evaluation suite through clip_benchmark: zero-shot classification and retrieval on local webdataset
copies of the test sets, each task scored by DataComp's main metric and averaged as DataComp averages them.

An optional extra (`pip install 'clip-scaling[benchmark]'`). Nothing is downloaded at run time: task `t` reads
`<root>/wds_<t with / as ->_test/` (the layout DataComp's `download_evalsets.py` writes, clip_benchmark's `wds/`
format), and a missing one is named with where to fetch it. Scored once, on the final model (DataComp scores
final models; the suite takes GPU-hours), the tasks dealt out across ranks.

Of DataComp's 38 tasks (`tasklist.yml` of mlfoundations/datacomp), 33 are scored here. Five need DataComp's own
metadata-aware metrics, which clip_benchmark does not compute (WinoGAViL's Jaccard score, iWildCam's macro-F1,
FMoW's worst-region, GeoDE's worst-group and Dollar Street's worst-group top-5 accuracy); asking for one is an
error, and the record's `benchmark_error.average` is over the tasks scored, each named beside it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from scaling.errors import ConfigError

if TYPE_CHECKING:  # torch is imported where a model is scored: scaling.spec reads the task table torch-free
    import torch

    from scaling.distributed import World
    from scaling.precision import Numerics
    from scaling.spec import BenchmarkSpec

# DataComp's main metric per task (tasklist.yml; acc1 where it names none); retrieval is the mean of image and
# text retrieval R@1, as DataComp's retr_eval computes it.
MAIN_METRIC = {
    "vtab/caltech101": "mean_per_class_recall",
    "cifar10": "acc1",
    "vtab/cifar100": "acc1",
    "vtab/clevr_count_all": "acc1",
    "vtab/clevr_closest_object_distance": "acc1",
    "country211": "acc1",
    "vtab/dtd": "acc1",
    "vtab/eurosat": "acc1",
    "fgvc_aircraft": "mean_per_class_recall",
    "food101": "acc1",
    "gtsrb": "acc1",
    "imagenet1k": "acc1",
    "imagenet_sketch": "acc1",
    "imagenetv2": "acc1",
    "imagenet-a": "acc1",
    "imagenet-o": "acc1",
    "imagenet-r": "acc1",
    "vtab/kitti_closest_vehicle_distance": "acc1",
    "mnist": "acc1",
    "objectnet": "acc1",
    "vtab/flowers": "mean_per_class_recall",
    "vtab/pets": "mean_per_class_recall",
    "voc2007": "acc1",
    "vtab/pcam": "acc1",
    "renderedsst2": "acc1",
    "vtab/resisc45": "acc1",
    "cars": "acc1",
    "stl10": "acc1",
    "sun397": "acc1",
    "vtab/svhn": "acc1",
    "wilds/camelyon17": "acc1",
    "retrieval/flickr30k": "mean_recall@1",
    "retrieval/mscoco_2014_5k_test_image_text_retrieval": "mean_recall@1",
}
NEEDS_DATACOMP = {  # in DataComp's average, but scored with metadata clip_benchmark does not read
    "misc/winogavil": "Jaccard score",
    "wilds/iwildcam": "macro-F1",
    "wilds/fmow": "worst-region accuracy",
    "fairness/dollar_street": "worst-group top-5 accuracy",
    "fairness/geode": "worst-group accuracy",
}
TASKS = tuple(MAIN_METRIC)
BATCH = 64  # DataComp's evaluation batch


def check_tasks(tasks: tuple[str, ...]) -> None:
    """Every task is one this module scores; the message says why a DataComp task is not."""
    for task in tasks:
        if task in NEEDS_DATACOMP:
            raise ValueError(
                f"{task} is scored by {NEEDS_DATACOMP[task]}, which needs DataComp's own evaluation "
                "(clip_benchmark does not compute it); leave it out"
            )
        if task not in MAIN_METRIC:
            raise ValueError(f"unknown task {task!r}; DataComp's tasks are {', '.join(TASKS)}")


def task_dir(root: str, task: str) -> Path:
    """Where DataComp's download_evalsets.py puts a task (its `fairness/` prefix dropped)."""
    name = task.removeprefix("fairness/").replace("/", "-")
    return Path(root) / f"wds_{name}_test"


def dataset(root: str, task: str, transform):
    """clip_benchmark's webdataset of a task, read only from disk."""
    try:
        from clip_benchmark.datasets.builder import build_dataset
    except ImportError:
        raise ConfigError(
            "eval.clip_benchmark: the clip_benchmark package is missing; pip install 'clip-scaling[benchmark]'"
        ) from None
    where = task_dir(root, task)
    if not (where / "test" / "nshards.txt").is_file():
        raise ConfigError(
            f"eval.clip_benchmark: {where}/test/nshards.txt is missing; fetch {task} on a login node into {root} "
            f"(DataComp's `python download_evalsets.py {root}`, or huggingface.co/datasets/djghosh/{where.name})"
        )
    kind = "zeroshot_retrieval" if MAIN_METRIC[task] == "mean_recall@1" else "zeroshot_classification"
    return build_dataset(f"wds/{task}", root=str(where), transform=transform, split="test", download=False, task=kind)


class Encoder:
    """What clip_benchmark calls on a model, run under the run's numerics: its own `amp` is off, because its
    autocast takes the device's default dtype (fp16 on CUDA), not the run's, and it feeds fp32 pixels."""

    def __init__(self, model, numerics: Numerics) -> None:
        self.model, self.numerics = model, numerics

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        with self.numerics.autocast():
            return self.model.encode_image(self.numerics.images(images)).float()

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        with self.numerics.autocast():
            return self.model.encode_text(tokens.to(self.numerics.device)).float()


def score(model, task: str, root: str, tokenizer, image_size: int, numerics: Numerics, workers: int) -> float:
    """DataComp's main metric of one task (higher is better): clip_benchmark's classifier and logits, scored as
    DataComp's wds_eval scores them (top-1 accuracy, or recall averaged over the classes present, i.e.
    balanced accuracy); clip_benchmark's own `evaluate` fails under numpy 2 (float() of a 1-element array)."""
    import torch
    from open_clip.transform import image_transform

    data = dataset(root, task, image_transform(image_size, is_train=False))
    from clip_benchmark.metrics import zeroshot_classification, zeroshot_retrieval  # installed: dataset() checked

    loader = torch.utils.data.DataLoader(data.batched(BATCH), batch_size=None, num_workers=workers)
    encoder, device = Encoder(model, numerics), numerics.device.type
    if MAIN_METRIC[task] == "mean_recall@1":
        metrics = zeroshot_retrieval.evaluate(encoder, loader, tokenizer, device, amp=False, recall_k_list=[1])
        return 0.5 * (metrics["image_retrieval_recall@1"] + metrics["text_retrieval_recall@1"])
    if not data.classes or not data.templates:
        raise ConfigError(f"eval.clip_benchmark: {task_dir(root, task)} has no classnames.txt or templates")
    classifier = zeroshot_classification.zero_shot_classifier(
        encoder, tokenizer, data.classes, data.templates, device, amp=False
    )
    logits, target = zeroshot_classification.run_classification(encoder, classifier, loader, device, amp=False)
    hits = logits.argmax(dim=1) == target
    if MAIN_METRIC[task] == "acc1":
        return float(hits.float().mean())
    return float(torch.stack([hits[target == c].float().mean() for c in target.unique()]).mean())


def benchmark_errors(
    model, tokenizer, spec: BenchmarkSpec, image_size: int, numerics: Numerics, world: World, workers: int
) -> dict[str, float]:
    """1 − main metric per task and 1 − their mean (`average`); rank r scores tasks r, r + world_size, ...
    and the scores are gathered."""
    import torch
    import torch.distributed as dist

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            mine = {
                task: score(model, task, spec.root, tokenizer, image_size, numerics, workers)
                for task in spec.tasks[world.rank :: world.world_size]
            }
    finally:
        model.train(was_training)
    scores = dict(mine)
    if world.distributed:
        parts: list[dict] = [{} for _ in range(world.world_size)]
        dist.all_gather_object(parts, mine)
        scores = {task: s for part in parts for task, s in part.items()}
    errors = {task: 1 - scores[task] for task in spec.tasks}
    return {**errors, "average": 1 - sum(scores.values()) / len(scores)}
