import numpy as np

from scaling.data import grammar
from scaling.data.synthetic import eval_source
from scaling.data.zeroshot import synthetic_tasks


def test_tasks_classes_and_prompt_counts():
    tasks = {t.name: t for t in synthetic_tasks(eval_size=50)}
    shape = {name: (len(t.classnames), len(t.templates)) for name, t in tasks.items()}
    assert shape == {"shape": (8, 80), "colour": (8, 80), "position": (5, 64), "colour_shape": (64, 10)}
    for task in tasks.values():
        assert task.labels.shape == (50,) and task.labels.dtype == np.int64
        assert len(set(task.templates)) == len(task.templates)
        assert all(t.count("{}") == 1 for t in task.templates)


def test_labels_agree_with_the_eval_captions():
    """The true class's prompt ensemble contains the eval caption written in the prompt's form."""
    n = 300
    src = eval_source(n)
    captions = src.captions(np.arange(n))
    objects = src.labels(np.arange(n))[:, 0]
    for task in synthetic_tasks(n):
        for i in range(n):
            true_class = task.classnames[task.labels[i]]
            assert set(grammar.split_words(true_class)) <= set(grammar.split_words(captions[i]))
            if task.name != "position":  # position prompts cover only half of the size x colour x shape grid
                ensemble = {t.format(true_class) for t in task.templates}
                assert grammar.phrase(grammar.PROMPT, objects[i]) in ensemble


def test_every_class_occurs_in_a_default_sized_eval_set():
    for task in synthetic_tasks(eval_size=2000):
        assert len(np.unique(task.labels)) == len(task.classnames)
