"""Train (or resume) the agents, print the learning curve, evaluate the chosen checkpoint and report.

The validation that picks the best checkpoint is `evaluation.validation.run_validation`, handed to the
training run (`training.run.Run`) here: training itself knows nothing of evaluation.
"""

from __future__ import annotations

import logging

from wealtharena.app.evaluate import evaluate
from wealtharena.config import Config
from wealtharena.envs.data import EnvData
from wealtharena.evaluation.backtest import Backtest
from wealtharena.evaluation.report import learning_curve, plot_training_history
from wealtharena.evaluation.validation import ValidationResult, run_validation
from wealtharena.training.inference import TrainedPolicy
from wealtharena.training.run import TrackerHook, Validate, train
from wealtharena.training.tracking import make_trackers, ui_link

log = logging.getLogger("wealtharena.app")


def validator(cfg: Config, data: EnvData) -> Validate:
    """The run's validation: every agent, deterministically, on the validation split (evaluation.validation)."""

    def validate(policy: TrainedPolicy, iteration: int) -> ValidationResult:
        result = run_validation(cfg, data, policy, iteration)
        log.info(
            "iter %d validation (deterministic, costs included%s): mean Sharpe %.2f, episode reward per policy %s",
            iteration,
            ", untrained" if iteration == 0 else "",
            result.mean_sharpe,
            {p: round(v, 1) for p, v in result.policy_episode_reward.items()},
        )
        return result

    return validate


def train_and_report(
    cfg: Config,
    data: EnvData,
    experiment: str,
    split: str,
    *,
    iterations: int | None = None,
    checkpoint: str | None = None,
    run_name: str | None = None,
    progress: bool = True,
    wandb: bool = False,
) -> Backtest:
    """One training run (MLflow, W&B if asked), its learning curve, and its evaluation on `split`."""
    tracker = make_trackers(cfg, experiment, wandb=wandb)
    if checkpoint is not None:
        n = iterations or cfg.training.iterations
        log.info(
            "resuming %s: %d more iterations (%s)",
            checkpoint,
            n,
            "--iterations" if iterations else "training.iterations; --iterations to change",
        )
    status = "FAILED"
    try:
        result = train(
            cfg,
            data,
            experiment,
            iterations=iterations,
            checkpoint=checkpoint,
            run_name=run_name,
            progress=progress,
            validate=validator(cfg, data),
            revive=ValidationResult.from_dict,
            hooks=[TrackerHook(tracker)],
        )
        print(learning_curve(result.validation))
        curve = plot_training_history(result.history, result.run_dir / "training.png", result.validation)
        evaluation = evaluate(cfg, data, result.chosen, split, tracker, training_plot=curve)
        if curve is not None:
            tracker.log_artifacts([curve], "training")
        tracker.log_policies(result.chosen, cfg.policy_ids)
        status = "FINISHED"
    finally:
        tracker.finish(status)
    print(
        f"\ncheckpoints: {result.run_dir}\n  latest: {result.last_checkpoint}\n  best:   {result.best_checkpoint}"
        f"\nreport:      {evaluation.out / 'report.html'}"
    )
    ml = tracker.mlflow
    if ml is not None and ml.run_id:
        server = ml.uri if ml.uri.startswith("http") else "http://127.0.0.1:5000"
        start = "" if ml.uri.startswith("http") else f"mlflow ui --backend-store-uri {ml.uri}, then "
        print(
            f"MLflow:      experiment '{ml.experiment}', run {ml.run_id}\n"
            f"             open with: {start}{ui_link(server, ml.exp_id, ml.run_id, 'model-metrics')}"
        )
    return evaluation.backtest
