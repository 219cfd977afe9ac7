"""DataComp's task suite through clip_benchmark, on tiny local webdataset tasks the tests write in its layout."""

import io
import tarfile

import pytest
import torch
from open_clip.transform import image_transform
from PIL import Image

from scaling.data.tokenizer import bpe_tokenizer
from scaling.datacomp import benchmark_errors, task_dir
from scaling.distributed import World
from scaling.errors import ConfigError
from scaling.models import build_model
from scaling.precision import Numerics
from scaling.run import run
from scaling.spec import BenchmarkSpec, parse_spec

from .conftest import write_csv_pool

pytest.importorskip("clip_benchmark", reason="the benchmark extra: pip install 'clip-scaling[benchmark]'")

CLASSES = ["cat", "dog", "car", "tree", "boat"]
TEMPLATES = ["a photo of a {c}.", "a blurry picture of the {c}."]
CAPTIONS = [["a red square", "something red"], ["a green field", "grass"], ["blue sky", "the sea"], ["night", "dark"]]
CPU = Numerics("fp32", torch.device("cpu"))


def picture(j: int) -> Image.Image:
    return Image.new("RGB", (40, 30), ((70 * j) % 256, (150 * j) % 256, 255 - (40 * j) % 256))


def write_task(root, task, samples, kind="classification"):
    """One task in clip_benchmark's wds layout: test/{nshards.txt, 0.tar}, class names, templates, type."""
    where = task_dir(str(root), task)
    (where / "test").mkdir(parents=True)
    (where / "test" / "nshards.txt").write_text("1")
    (where / "classnames.txt").write_text("\n".join(CLASSES))
    (where / "zeroshot_classification_templates.txt").write_text("\n".join(TEMPLATES))
    (where / "dataset_type.txt").write_text(kind)
    with tarfile.open(where / "test" / "0.tar", "w") as tar:
        for j, (image, label) in enumerate(samples):
            jpg = io.BytesIO()
            image.save(jpg, format="JPEG")
            for ext, data in (("jpg", jpg.getvalue()), ("cls" if kind == "classification" else "txt", label.encode())):
                info = tarfile.TarInfo(f"{j:04d}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model("w32-l1", 49408).eval()


def embed(model, images=(), texts=()):
    transform, tokenizer = image_transform(32, is_train=False), bpe_tokenizer(32)
    with torch.no_grad():
        if texts:
            return model.encode_text(tokenizer(list(texts)), normalize=True)
        return model.encode_image(torch.stack([transform(i) for i in images]), normalize=True)


def class_ranking(model, images):
    """Classes by the model's score for each image (the prompt-ensemble classifier built by hand)."""
    prompts = [embed(model, texts=[t.format(c=c) for t in TEMPLATES]).mean(0) for c in CLASSES]
    classifier = torch.nn.functional.normalize(torch.stack(prompts), dim=-1)
    return (embed(model, images) @ classifier.T).argsort(dim=1, descending=True)


def test_tasks_are_scored_by_datacomps_main_metric_and_averaged(tmp_path, model):
    """Images filed under the model's 1st guess (7 of them) or 2nd guess (3): acc1 is 0.7 exactly; a
    mean_per_class_recall task averages the per-class hit rates instead; retrieval is the mean of both R@1."""
    images = [picture(j) for j in range(10)]
    ranking = class_ranking(model, images)
    hit = [j < 7 for j in range(10)]
    labels = [int(ranking[j, 0 if hit[j] else 1]) for j in range(10)]
    for task in ("cifar10", "vtab/pets"):
        write_task(tmp_path, task, [(im, str(y)) for im, y in zip(images, labels, strict=True)])
    write_task(
        tmp_path, "retrieval/flickr30k", [(images[j], "\n".join(c)) for j, c in enumerate(CAPTIONS)], "retrieval"
    )
    spec = BenchmarkSpec(root=str(tmp_path), tasks=("cifar10", "vtab/pets", "retrieval/flickr30k"))
    errors = benchmark_errors(model, bpe_tokenizer(32), spec, 32, CPU, World(), workers=0)

    recall = [sum(h for h, y in zip(hit, labels, strict=True) if y == c) / labels.count(c) for c in set(labels)]
    sims = embed(model, images[:4]) @ embed(model, texts=[t for c in CAPTIONS for t in c]).T  # [4 images, 8 texts]
    owner = torch.arange(8) // 2
    r1 = 0.5 * ((owner[sims.argmax(1)] == torch.arange(4)).float().mean() + (sims.argmax(0) == owner).float().mean())
    expected = {"cifar10": 0.3, "vtab/pets": 1 - sum(recall) / len(recall), "retrieval/flickr30k": 1 - float(r1)}
    assert errors == pytest.approx({**expected, "average": sum(expected.values()) / 3}, abs=1e-6)
    assert expected["vtab/pets"] != pytest.approx(0.3)  # the two classification metrics really differ here


def test_two_ranks_share_the_tasks_and_gather_the_same_scores(tmp_path, model, monkeypatch):
    """Rank r scores tasks r, r + 2, ...; the all-gather (faked here) hands every rank all of them."""
    import scaling.datacomp as datacomp

    scored: list[str] = []
    monkeypatch.setattr(datacomp, "score", lambda m, task, *a: scored.append(task) or len(task) / 100)
    monkeypatch.setattr(torch.distributed, "all_gather_object", lambda out, mine: out.__setitem__(slice(None), parts))
    spec = BenchmarkSpec(root=str(tmp_path), tasks=("cifar10", "mnist", "gtsrb"))
    parts = [{"cifar10": 0.07, "gtsrb": 0.05}, {"mnist": 0.05}]
    errors = benchmark_errors(model, None, spec, 32, CPU, World(rank=1, world_size=2), workers=0)
    assert scored == ["mnist"]
    assert errors == pytest.approx({"cifar10": 0.93, "mnist": 0.95, "gtsrb": 0.95, "average": 1 - 0.17 / 3})


def test_missing_or_unsupported_tasks_say_what_to_do(tmp_path, model):
    spec = BenchmarkSpec(root=str(tmp_path), tasks=("imagenet1k",))
    with pytest.raises(ConfigError, match=r"eval.clip_benchmark: .*wds_imagenet1k_test/test/nshards.txt is missing; "):
        benchmark_errors(model, bpe_tokenizer(32), spec, 32, CPU, World(), workers=0)
    with pytest.raises(ValueError, match=r"fairness/geode is scored by worst-group accuracy, .* leave it out"):
        BenchmarkSpec(root=str(tmp_path), tasks=("fairness/geode",))
    with pytest.raises(ValueError, match=r"unknown task 'cifar11'"):
        BenchmarkSpec(root=str(tmp_path), tasks=("cifar11",))


def test_a_run_scores_the_suite_on_its_final_model_only(tmp_path, model):
    write_task(tmp_path / "suite", "mnist", [(picture(j), str(j % 5)) for j in range(6)])
    csv = write_csv_pool(tmp_path / "pool", n=64)
    data = {"source": "csv", "path": str(csv), "eval_path": str(csv), "eval_size": 32, "workers": 0}
    suite = {"root": str(tmp_path / "suite"), "tasks": ["mnist"]}
    spec = parse_spec(
        {
            "model": "w32-l1",
            "samples_seen": 64,
            "batch_size": 32,
            "data": data,
            "eval": {"points": 2, "first": 0.5, "clip_benchmark": suite},
        }
    )
    evals = run(spec, tmp_path / "out", progress=False).model_dump()["evals"]
    assert [("benchmark_error" in e) for e in evals] == [False, True]
    assert set(evals[-1]["benchmark_error"]) == {"mnist", "average"}
