"""Held-out evaluation of a CLIP model: contrastive loss, zero-shot error per task, retrieval R@1.

Errors, not accuracies, because laws are fitted to errors. Retrieval counts a hit when the retrieved
item carries the same caption as the query's own pair: the synthetic captions repeat across images, and
an exact-index rule would punish a model for ties it cannot break.
"""

from __future__ import annotations

import torch
from open_clip import build_zero_shot_classifier
from open_clip.loss import ClipLoss

from scaling.precision import Numerics

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
