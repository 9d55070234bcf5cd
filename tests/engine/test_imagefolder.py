"""Image folders (held whole or streamed through a DataLoader), CIFAR-100 pickles and SVHN .mat files, all
written here in their real formats."""

import pickle

import numpy as np
import pytest
import torch

from worker.engine.data import DatasetMissing, Split, StreamSplit, load_dataset


def make_imagefolder(root, classes=("cat", "dog", "owl"), n_train=8, n_test=3, size=(20, 24), grey=False, seed=0):
    """root/train/CLASS/i.png and root/test/CLASS/i.png (lossless), class-dependent brightness."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    images = {}
    for part, n in (("train", n_train), ("test", n_test)):
        for k, name in enumerate(classes):
            folder = root / part / name
            folder.mkdir(parents=True)
            for i in range(n):
                shape = size if grey else (*size, 3)
                pixels = np.clip(rng.integers(0, 120, shape) + 60 * k, 0, 255).astype(np.uint8)
                Image.fromarray(pixels, "L" if grey else "RGB").save(folder / f"{i}.png")
                images[(part, name, i)] = pixels
    return images


def _raw(splits, x):
    mean = torch.tensor(splits.mean).view(1, -1, 1, 1)
    std = torch.tensor(splits.std).view(1, -1, 1, 1)
    return torch.round((x * std + mean) * 255).to(torch.uint8)


def test_imagefolder_held_whole(tmp_path):
    images = make_imagefolder(tmp_path / "pets")
    splits = load_dataset("imagefolder:pets", tmp_path, "cpu", 0.25, seed=0)
    assert isinstance(splits.train, Split)
    assert splits.classes == ["cat", "dog", "owl"] and splits.num_classes == 3
    assert splits.shape == (3, 20, 24)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (18, 6, 9)
    # pixels survive decoding and normalisation
    test_files = {bytes(images[("test", c, i)].transpose(2, 0, 1).tobytes()) for c in splits.classes for i in range(3)}
    assert {bytes(r.numpy().tobytes()) for r in _raw(splits, splits.test.x)} == test_files
    assert sorted(splits.test.y.tolist()) == [0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_imagefolder_streamed_matches_held(tmp_path):
    make_imagefolder(tmp_path / "pets", size=(16, 16))
    held = load_dataset("imagefolder:pets", tmp_path, "cpu", 0.25, seed=0)
    streamed = load_dataset("imagefolder:pets", tmp_path, "cpu", 0.25, seed=0, memory_bytes=0)
    assert isinstance(streamed.train, StreamSplit) and streamed.shape == held.shape
    for part in ("val", "test"):
        xs, ys = zip(*getattr(streamed, part).batches(4))
        assert torch.allclose(torch.cat(xs), getattr(held, part).x, atol=1e-6)
        assert torch.equal(torch.cat(ys), getattr(held, part).y)

    # a shuffled epoch visits every training image once; the same generator seed gives the same order
    def epoch(seed):
        return torch.cat([y for _, y in streamed.train.batches(5, torch.Generator().manual_seed(seed))])

    assert sorted(epoch(3).tolist()) == sorted(held.train.y.tolist()) and torch.equal(epoch(3), epoch(3))


def test_streamed_dataset_trains(tmp_path):
    from worker.engine.models import build_model
    from worker.engine.training import TrainConfig, evaluate, train

    make_imagefolder(tmp_path / "pets", size=(12, 12), n_train=10)
    splits = load_dataset("imagefolder:pets", tmp_path, "cpu", 0.2, seed=0, memory_bytes=0)
    model = build_model("lenet300_100", splits.shape, splits.num_classes)
    result = train(model, splits, TrainConfig(epochs=3, batch_size=8, lr=0.01))
    accuracy, _ = evaluate(model, splits.test)
    assert result.epochs == 3 and accuracy > 1 / 3  # classes differ in brightness: learnable in a few steps


def test_grey_images_give_one_channel(tmp_path):
    make_imagefolder(tmp_path / "digits9", classes=("a", "b"), grey=True, size=(10, 10))
    splits = load_dataset("imagefolder:digits9", tmp_path, "cpu", 0.25, seed=0)
    assert splits.shape == (1, 10, 10)


def test_imagefolder_mixed_sizes_resized_to_the_first(tmp_path):
    from PIL import Image

    make_imagefolder(tmp_path / "mixed", classes=("a", "b"), size=(16, 16))
    Image.new("RGB", (40, 30)).save(tmp_path / "mixed" / "train" / "b" / "big.jpg")
    splits = load_dataset("imagefolder:mixed", tmp_path, "cpu", 0.25, seed=0)
    assert splits.shape == (3, 16, 16) and len(splits.train) + len(splits.val) == 17


@pytest.mark.parametrize("layout", ["nothing", "no_test", "one_class"])
def test_imagefolder_missing_names_the_directory(tmp_path, layout):
    root = tmp_path / "pets"
    if layout != "nothing":
        make_imagefolder(root, classes=("cat",) if layout == "one_class" else ("cat", "dog"))
    if layout == "no_test":
        import shutil

        shutil.rmtree(root / "test")
    with pytest.raises(DatasetMissing) as err:
        load_dataset("imagefolder:pets", tmp_path, "cpu", 0.25, seed=0)
    message = str(err.value)
    assert str(root) in message and "\n" not in message
    assert "train/CLASS/*.png" in message


def test_cifar100_pickles(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    for name, n in (("train", 40), ("test", 10)):
        entry = {
            "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            "fine_labels": list(rng.integers(0, 100, n)),
            "coarse_labels": list(rng.integers(0, 20, n)),
        }
        with open(folder / name, "wb") as f:
            pickle.dump(entry, f)
    splits = load_dataset("cifar100", tmp_path, "cpu", 0.1, seed=0, download=False)
    assert splits.num_classes == 100 and splits.shape == (3, 32, 32)
    assert len(splits.train) + len(splits.val) == 40 and len(splits.test) == 10


def test_svhn_mat_files(tmp_path):
    import scipy.io as sio

    rng = np.random.default_rng(0)
    folder = tmp_path / "svhn"
    folder.mkdir()
    for name, n in (("train_32x32.mat", 30), ("test_32x32.mat", 12)):
        labels = rng.integers(1, 11, (n, 1)).astype(np.uint8)  # 10 stands for the digit 0
        sio.savemat(folder / name, {"X": rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8), "y": labels})
    splits = load_dataset("svhn", tmp_path, "cpu", 0.1, seed=0, download=False)
    assert splits.shape == (3, 32, 32) and len(splits.test) == 12
    assert int(splits.test.y.min()) >= 0 and int(splits.test.y.max()) <= 9
    assert 10 not in torch.cat([splits.train.y, splits.val.y]).tolist()


@pytest.mark.parametrize("name, folder", [("cifar100", "cifar-100-python"), ("svhn", "svhn")])
def test_cifar100_and_svhn_missing_name_the_folder(tmp_path, name, folder):
    with pytest.raises(DatasetMissing) as err:
        load_dataset(name, tmp_path, "cpu", 0.1, seed=0, download=False)
    assert str(tmp_path / folder) in str(err.value)
