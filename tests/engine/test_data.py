import numpy as np
import pytest
import torch

from worker.engine.data import DatasetMissing, augment_batch, load_dataset

from .conftest import make_cifar_files, make_mnist_files


def test_digits_split_and_scale(tmp_path):
    splits = load_dataset("digits", tmp_path, "cpu", 0.1, seed=0)
    assert len(splits.test) == 360 and len(splits.train) + len(splits.val) == 1797 - 360
    assert len(splits.val) == round(0.1 * 1437)
    assert splits.shape == (1, 8, 8) and splits.train.x.dtype == torch.float32
    assert abs(float(splits.train.x.mean())) < 0.05  # normalised
    again = load_dataset("digits", tmp_path, "cpu", 0.1, seed=0)
    assert torch.equal(again.test.x, splits.test.x) and torch.equal(again.val.y, splits.val.y)
    other = load_dataset("digits", tmp_path, "cpu", 0.1, seed=1)
    assert torch.equal(other.test.y, splits.test.y)  # the test split is fixed
    assert not torch.equal(other.val.y, splits.val.y)  # the validation split follows the seed


def test_digits_resized_for_conv_models(tmp_path):
    splits = load_dataset("digits", tmp_path, "cpu", 0.1, seed=0, image_size=32)
    assert splits.shape == (1, 32, 32)


@pytest.mark.parametrize("compress", [True, False])
def test_mnist_idx_files(tmp_path, compress):
    images, labels = make_mnist_files(tmp_path, n_train=100, n_test=40, compress=compress)
    splits = load_dataset("mnist", tmp_path, "cpu", 0.2, seed=0, download=False)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (80, 20, 40)
    assert splits.shape == (1, 28, 28)
    all_labels = torch.cat([splits.train.y, splits.val.y]).sort().values
    assert torch.equal(all_labels, torch.as_tensor(np.sort(labels), dtype=torch.int64))
    # pixel values survive: un-normalised images are exactly the file's images
    train_x = torch.cat([splits.train.x, splits.val.x])
    restored = torch.round((train_x * 0.3081 + 0.1307) * 255).to(torch.uint8).reshape(len(train_x), -1)
    assert {bytes(r.numpy()) for r in restored} == {bytes(r) for r in images.reshape(len(images), -1)}
    padded = load_dataset("mnist", tmp_path, "cpu", 0.2, seed=0, image_size=32, download=False)
    assert padded.shape == (1, 32, 32)
    # the 2-pixel border is background (raw 0), i.e. -mean/std after normalisation
    assert torch.allclose(padded.test.x[:, :, :2, :], torch.tensor(-0.1307 / 0.3081))


def test_fashion_mnist_uses_its_own_folder(tmp_path):
    make_mnist_files(tmp_path, folder="FashionMNIST", n_train=30, n_test=10)
    splits = load_dataset("fashion_mnist", tmp_path, "cpu", 0.1, seed=0, download=False)
    assert len(splits.test) == 10


@pytest.mark.parametrize("as_archive", [False, True])
def test_cifar_pickle_batches(tmp_path, as_archive):
    first = make_cifar_files(tmp_path, per_batch=20, n_test=30, as_archive=as_archive)
    splits = load_dataset("cifar10", tmp_path, "cpu", 0.1, seed=0, download=False)
    assert len(splits.train) + len(splits.val) == 100 and len(splits.test) == 30
    assert splits.shape == (3, 32, 32)
    mean = torch.tensor((0.4914, 0.4822, 0.4465)).view(1, 3, 1, 1)
    std = torch.tensor((0.2470, 0.2435, 0.2616)).view(1, 3, 1, 1)
    train_x = torch.cat([splits.train.x, splits.val.x])
    restored = torch.round((train_x * std + mean) * 255).to(torch.uint8).reshape(len(train_x), 3072)
    # every image of the first batch is present, pixel for pixel, in channel-major order
    rows = {bytes(r.numpy()) for r in restored}
    assert all(bytes(r) in rows for r in first)


@pytest.mark.parametrize("name,expected", [("mnist", "train-images-idx3-ubyte"), ("cifar10", "data_batch_1")])
def test_missing_files_one_clear_error(tmp_path, name, expected):
    with pytest.raises(DatasetMissing) as err:
        load_dataset(name, tmp_path / "nowhere", "cpu", 0.1, seed=0)  # download tried: no network here
    message = str(err.value)
    assert "\n" not in message and str(tmp_path / "nowhere") in message and expected in message
    assert isinstance(err.value, ValueError)


def test_augment_crops_and_flips():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    gen = torch.Generator().manual_seed(0)
    seen_shift = seen_flip = False
    for _ in range(20):
        out = augment_batch(x, torch.full((3,), -1.0), gen, pad=2)
        assert out.shape == x.shape
        for i in range(2):
            same = torch.equal(out[i], x[i])
            flipped = torch.equal(out[i], x[i].flip(-1))
            seen_flip |= flipped
            seen_shift |= not same and not flipped
            # every output pixel is an input pixel of the same channel or the pad value
            for c in range(3):
                vals = set(out[i, c].flatten().tolist())
                assert vals <= set(x[i, c].flatten().tolist()) | {-1.0}
    assert seen_shift and seen_flip
