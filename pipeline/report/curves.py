"""The per-epoch curves people look at, per task: (history field, axis label), the tables'
primary metric first. `dvc plots show` draws one plot per curve (:func:`pipeline.dag.plan.curve_plots`)
and the training-curves figure draws each task's first one beside the train loss.
"""

from __future__ import annotations

from pipeline.params.runs import TASK_KIND

_KIND_CURVES = {"classification": (("val_top1_err", "top-1 error on val (%)"),
                                   ("train_loss", "train loss"),
                                   ("grad_norm_resizer", "resizer gradient norm")),
                "iqa": (("val_srcc_mean", "SRCC of mean scores on test"),
                        ("val_emd", "EMD on test"), ("train_loss", "train loss (EMD)"))}
CURVES = {task: _KIND_CURVES[kind] for task, kind in TASK_KIND.items()}
