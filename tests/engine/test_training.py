import pytest
import torch

from worker.engine.data import load_dataset
from worker.engine.models import build_model
from worker.engine.reporter import Cancelled, NullReporter
from worker.engine.training import TrainConfig, evaluate, train


@pytest.fixture(scope="module")
def digits():
    torch.set_num_threads(1)
    return load_dataset("digits", "unused", "cpu", 0.1, seed=0)


def lenet(seed=0):
    torch.manual_seed(seed)
    return build_model("lenet300_100", (1, 8, 8), 10)


def test_training_improves_accuracy(digits):
    model = lenet()
    before, _ = evaluate(model, digits.test)
    result = train(model, digits, TrainConfig(epochs=3, lr=1e-3, batch_size=64), seed=0)
    after, loss = evaluate(model, digits.test)
    assert before < 0.3 and after > 0.9 and loss < 0.5
    assert result.best_val_accuracy > 0.9 and 1 <= result.best_epoch <= 3


def test_sgd_with_cosine_schedule(digits):
    model = lenet()
    cfg = TrainConfig(epochs=2, optimizer="sgd", lr=0.05, batch_size=32, lr_schedule="cosine")
    train(model, digits, cfg, seed=0)
    assert evaluate(model, digits.test)[0] > 0.7


def test_same_seed_same_weights(digits):
    a, b = lenet(), lenet()
    cfg = TrainConfig(epochs=1, batch_size=64)
    train(a, digits, cfg, seed=3)
    train(b, digits, cfg, seed=3)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_best_checkpoint_is_chosen_on_validation(digits):
    """With a learning rate that wrecks the model after the first epoch, the best-by-validation weights
    (not the last ones) are kept, and the choice never looks at the test set."""
    model = lenet()
    result = train(model, digits, TrainConfig(epochs=1, lr=1e-3), seed=0)
    good_val = result.best_val_accuracy
    result = train(model, digits, TrainConfig(epochs=2, lr=5.0, optimizer="sgd"), seed=0)
    assert result.best_epoch == 0  # the starting weights beat the wrecked epochs
    assert evaluate(model, digits.val)[0] == pytest.approx(good_val)


class CountingPruner:
    """A pruner holding fc1's first 10 rows at zero, with a penalty: shows both hooks are called."""

    def __init__(self):
        self.applied = 0
        self.penalised = 0

    def apply_masks(self, model):
        self.applied += 1
        with torch.no_grad():
            model.fc1.weight[:10] = 0

    def penalty(self, model):
        self.penalised += 1
        return 1e-3 * model.fc2.weight.norm()


def test_pruner_hooks_every_step(digits):
    model = lenet()
    pruner = CountingPruner()
    train(model, digits, TrainConfig(epochs=1, batch_size=100), pruner=pruner, seed=0)
    steps = (len(digits.train) + 99) // 100
    assert pruner.applied == steps and pruner.penalised == steps
    assert float(model.fc1.weight.detach()[:10].abs().sum()) == 0.0


class CancelAfter(NullReporter):
    def __init__(self, n):
        self.calls = 0
        self.n = n

    def cancelled(self):
        self.calls += 1
        return self.calls > self.n


def test_cancelled_between_batches(digits, monkeypatch):
    monkeypatch.setattr("worker.engine.training.CANCEL_CHECK_S", 0.0)
    reporter = CancelAfter(5)
    with pytest.raises(Cancelled):
        train(lenet(), digits, TrainConfig(epochs=5, batch_size=16), reporter=reporter, seed=0)
    assert reporter.calls == 6  # stopped inside the first epoch, right when asked


def test_progress_reaches_one(digits):
    seen = []
    train(lenet(), digits, TrainConfig(epochs=2), on_progress=lambda f, m: seen.append(f), seed=0)
    assert seen[-1] == 1.0 and seen == sorted(seen)
