"""Per-epoch metrics through DVCLive: ``dvc plots show`` and ``dvc exp show`` read its files.

DVCLive writes the per-epoch plots into the run's live folder only: dvc.yaml (and the
Snakefile) declare them as the stage's plots, and experiments are DVC's business, not the
training loop's. Its summary (``metrics.json``, the last epoch's values) is not written: the
stage's final metrics JSON is the one metrics file of a run, written only when the run ends, so
``dvc metrics show`` never lists a run twice or an unfinished run as if it were done. So its repository integration is switched off (``_init_dvc``): it would open the DVC
repository in every training process (seconds each) and fails in a Git repository without
commits (dvclive 3.49 calls ``scm.get_rev()`` before checking for one).
"""

from __future__ import annotations

from pathlib import Path


def _files_only_live(path: Path):
    """A ``dvclive.Live`` that writes its files and touches neither Git nor DVC."""
    from dvclive import Live  # imported here: only the process that writes needs it

    class FilesOnlyLive(Live):
        def _init_dvc(self) -> None:
            self._dvc_file = None
            self._save_dvc_exp = False

        def make_summary(self) -> None:
            """No summary file (see the module's docstring)."""

        def post_data_to_studio(self, *args, **kwargs) -> None:
            """Nothing is posted to DVC Studio (it would read the summary file)."""

    return FilesOnlyLive(dir=str(path), resume=False, report=None, save_dvc_exp=False,
                         dvcyaml=None)


class LiveLog:
    """Log each epoch record (``epoch`` is the step) to a DVCLive folder, replacing it."""

    def __init__(self, path: Path):
        self.live = _files_only_live(path)

    def __call__(self, record: dict[str, float]) -> None:
        self.live.step = int(record["epoch"])
        for key, value in record.items():
            if key != "epoch":
                self.live.log_metric(key, float(value))
        self.live.next_step()

    def close(self) -> None:
        """Write the summary and release the folder."""
        self.live.end()
