"""Optuna search over the main BERT hyperparameters, scored on validation accuracy.

The budget is small and configurable (trials, data sample, epochs per trial); the test split is
never looked at. The best parameters are written with every trial for the report."""

from __future__ import annotations

import tempfile
from dataclasses import asdict
from pathlib import Path

from model.jsonio import write_json
from training.bert import BertSpec, TrainOptions
from training.pipeline import PreparedData
from training.train import TrainRequest, fit


def tune(
    data: PreparedData,
    out_dir: Path,
    *,
    trials: int = 8,
    epochs: float = 2.0,
    seed: int = 13,
    timeout_s: float | None = None,
    tokenizer: str = "wordpiece",
    progress: bool = True,
) -> dict:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial: optuna.Trial) -> float:
        hidden = trial.suggest_categorical("hidden_size", [64, 128])
        spec = BertSpec(
            hidden_size=hidden,
            num_layers=trial.suggest_int("num_layers", 1, 2),
            num_heads=2,
            intermediate_size=hidden * 4,
            dropout=trial.suggest_float("dropout", 0.0, 0.2),
        )
        options = TrainOptions(
            epochs=epochs,
            batch_size=trial.suggest_categorical("batch_size", [32, 64]),
            learning_rate=trial.suggest_float("learning_rate", 2e-4, 3e-3, log=True),
            weight_decay=trial.suggest_float("weight_decay", 0.0, 0.1),
            seed=seed,
        )
        request = TrainRequest(
            spec=spec,
            options=options,
            tokenizer=tokenizer,
            vocab_size=trial.suggest_categorical("vocab_size", [8000, 20000]),
        )
        with tempfile.TemporaryDirectory() as tmp:
            fitted = fit(data, request, Path(tmp), progress=False)
        trial.set_user_attr("history", fitted.history.to_dict())
        trial.set_user_attr("spec", asdict(spec))
        return max(fitted.history.val_accuracy)

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=trials, timeout=timeout_s, show_progress_bar=progress)
    result = {
        "best_value": study.best_value,
        "best_params": study.best_params,
        "trials": [
            {
                "number": t.number,
                "value": t.value,
                "params": t.params,
                "history": t.user_attrs.get("history"),
            }
            for t in study.trials
        ],
        "budget": {"trials": trials, "epochs": epochs, "timeout_s": timeout_s},
        "split": data.split.summary(),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "tuning.json", result)
    return result
