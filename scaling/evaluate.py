"""Held-out evaluation of a CLIP model: contrastive loss, zero-shot error per task, retrieval R@1, and on real
data the paper's metric, ImageNet-1k zero-shot error (open_clip_train's `zero_shot_eval`, split across ranks).

Errors, not accuracies, because laws are fitted to errors. Retrieval counts a hit when the retrieved
item carries the same caption as the query's own pair: the synthetic captions repeat across images, and
an exact-index rule would punish a model for ties it cannot break.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.distributed as dist
from open_clip import IMAGENET_CLASSNAMES, OPENAI_IMAGENET_TEMPLATES, build_zero_shot_classifier
from open_clip.loss import ClipLoss
from torch.utils.data import DataLoader, Dataset, Subset

from scaling.data.base import one_line
from scaling.data.loader import loader_workers
from scaling.errors import ConfigError
from scaling.precision import Numerics

if TYPE_CHECKING:
    from scaling.distributed import World
    from scaling.spec import RunSpec

CHUNK = 256


@torch.no_grad()
def encode(model, images: torch.Tensor, tokens: torch.Tensor, numerics: Numerics) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised fp32 features in chunks, so a large eval set never builds one huge activation."""
    with numerics.autocast():
        img = [
            model.encode_image(numerics.images(images[i : i + CHUNK]), normalize=True)
            for i in range(0, len(images), CHUNK)
        ]
        txt = [
            model.encode_text(tokens[i : i + CHUNK].to(numerics.device), normalize=True)
            for i in range(0, len(tokens), CHUNK)
        ]
    return torch.cat(img).float(), torch.cat(txt).float()


def contrastive_loss(img: torch.Tensor, txt: torch.Tensor, logit_scale: torch.Tensor) -> float:
    """Mean ClipLoss over fixed 256-sample chunks: a smooth metric comparable across runs of one method."""
    loss = ClipLoss()
    chunks = [(i, min(i + CHUNK, len(img))) for i in range(0, len(img), CHUNK)]
    chunks = [(a, b) for a, b in chunks if b - a > 1]
    return float(sum(loss(img[a:b], txt[a:b], logit_scale) for a, b in chunks) / len(chunks))


def retrieval_r1(img: torch.Tensor, txt: torch.Tensor, tokens: torch.Tensor) -> dict[str, float]:
    """Image→text and text→image R@1 where any pair with the same caption counts as the right answer."""
    sims = img @ txt.T
    _, caption_id = torch.unique(tokens, dim=0, return_inverse=True)
    i2t = caption_id[sims.argmax(dim=1)] == caption_id
    t2i = caption_id[sims.argmax(dim=0)] == caption_id
    return {"i2t": float(i2t.float().mean()), "t2i": float(t2i.float().mean())}


@torch.no_grad()
def zero_shot_errors(model, img: torch.Tensor, tasks, tokenizer) -> dict[str, float]:
    """Top-1 error per task with prompt-ensemble classifiers built by open_clip."""
    errors = {}
    for task in tasks:
        weights = build_zero_shot_classifier(
            model,
            tokenizer,
            task.classnames,
            task.templates,
            num_classes_per_batch=16,
            device=img.device,
            use_tqdm=False,
        )
        pred = (img @ weights.float()).argmax(dim=1).cpu()
        errors[task.name] = float((pred != torch.as_tensor(task.labels)).float().mean())
    return errors


def evaluate(model, batch, tasks, tokenizer, numerics: Numerics | None = None) -> dict:
    """All held-out metrics of one evaluation point (the model is left in train mode afterwards)."""
    was_training = model.training
    model.eval()
    numerics = numerics or Numerics("fp32", next(model.parameters()).device)
    try:
        img, txt = encode(model, batch.images, batch.tokens, numerics)
        metrics = {
            "val_loss": contrastive_loss(img, txt, model.logit_scale.exp().detach().float()),
            "zeroshot_error": zero_shot_errors(model, img, tasks, tokenizer),
            "retrieval_r1": retrieval_r1(img.cpu(), txt.cpu(), batch.tokens),
        }
    finally:
        model.train(was_training)
    return metrics


# -- ImageNet-1k zero-shot --------------------------------------------------------------------------------------


def imagenet_labels(classes: list[str], root: str) -> dict[int, int]:
    """ImageFolder's class ids (sorted folder names) → ImageNet-1k ids, so a subset of the wnids scores right."""
    from timm.data import ImageNetInfo

    wnids = {wnid: i for i, wnid in enumerate(ImageNetInfo().label_names())}
    unknown = [c for c in classes if c not in wnids]
    if unknown:
        raise ConfigError(f"eval.imagenet: {root} has folder(s) that are not ImageNet-1k wnids, e.g. {unknown[0]!r}")
    return {i: wnids[c] for i, c in enumerate(classes)}


def imagenet_folder(spec: RunSpec, world: World) -> Dataset:
    """This rank's share (every world_size-th image) of the ImageFolder, with open_clip's eval transform."""
    from open_clip.transform import image_transform
    from torchvision.datasets import ImageFolder

    root = spec.eval.imagenet
    try:
        folder = ImageFolder(root, transform=image_transform(spec.data.image_size, is_train=False))
    except OSError as err:
        raise ConfigError(f"eval.imagenet: {root} is not an ImageFolder ({one_line(err)})") from None
    folder.target_transform = imagenet_labels(folder.classes, root).__getitem__
    return Subset(folder, range(world.rank, len(folder), world.world_size))


def imagenet_classifier(model, tokenizer, numerics: Numerics) -> torch.Tensor:
    """[dim, 1000] class embeddings: open_clip's class names and OpenAI's 80 templates (open_clip_train's)."""
    with numerics.autocast():
        weights = build_zero_shot_classifier(
            model,
            tokenizer=tokenizer,
            classnames=IMAGENET_CLASSNAMES,
            templates=OPENAI_IMAGENET_TEMPLATES,
            num_classes_per_batch=10,
            device=numerics.device,
            use_tqdm=False,
        )
    return weights.float()


@torch.no_grad()
def imagenet_counts(model, classifier: torch.Tensor, images: Dataset, numerics: Numerics, workers: int) -> torch.Tensor:
    """(top-1 hits, top-5 hits, images) over `images`, as a float64 tensor to sum across ranks."""
    counts = torch.zeros(3, dtype=torch.float64)
    for pixels, target in DataLoader(images, batch_size=CHUNK, num_workers=workers):
        with numerics.autocast():
            features = model.encode_image(numerics.images(pixels), normalize=True)
        top5 = (features.float() @ classifier).topk(5, dim=1).indices.cpu()
        hits = top5 == target[:, None]
        counts += torch.tensor([hits[:, 0].sum(), hits.any(dim=1).sum(), len(target)], dtype=torch.float64)
    return counts


def imagenet_errors(model, tokenizer, spec: RunSpec, numerics: Numerics, world: World) -> dict[str, float]:
    """Zero-shot top-1 and top-5 error on ImageNet-1k val, the images split across ranks and the hits summed."""
    was_training = model.training
    model.eval()
    try:
        classifier = imagenet_classifier(model, tokenizer, numerics)
        counts = imagenet_counts(model, classifier, imagenet_folder(spec, world), numerics, loader_workers(spec))
    finally:
        model.train(was_training)
    if world.distributed:
        counts = counts.to(numerics.device)
        dist.all_reduce(counts)
    top1, top5, n = counts.tolist()
    return {"imagenet": 1 - top1 / n, "imagenet_top5": 1 - top5 / n}
