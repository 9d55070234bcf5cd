"""Ready-made specs for the seed experiments, sized for the built-in digits dataset (the form's presets)."""

PRESETS: list[dict] = [
    {
        "name": "lenet-digits-block2",
        "label": "LeNet-300-100, 2x2 blocks, iterative 20 % per round (seed 000)",
        "spec": {
            "name": "lenet-digits-block2",
            "model": "lenet300_100",
            "dataset": "digits",
            "train": {"epochs": 20, "optimizer": "adam", "lr": 0.001, "batch_size": 64},
            "method": {"kind": "block", "block_size": 2, "score": "mean_abs"},
            "schedule": {"kind": "iterative", "rate": 0.2, "rounds": 10, "finetune_epochs": 2},
            "seed": 0,
        },
    },
]
