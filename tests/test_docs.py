"""The numbers the documentation quotes are the committed results' (a retrain that moves them
fails here until the text is updated).

"Committed" means the tables committed with the text: while README.md and results/README.md
are as in git's HEAD, the tables are read from HEAD too, so a `make repro` on another kind of
CPU (whose floats differ in the last bits and whose runs drift apart) rewrites the working
tree's tables without failing here; while either text is being edited, the working tree's
tables are the ones it must quote.
"""

from __future__ import annotations

import io
import json
import re
import subprocess

import pandas as pd

from pipeline.params.runs import REGIMES
from pipeline.report.table_format import people
from pipeline.report.tables import by_regime
from tests.conftest import ROOT

RESULTS_README = ROOT / "results" / "README.md"
DOCS = ("README.md", "results/README.md")


def git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True)


def docs_as_committed() -> bool:
    """True in a git checkout whose quoting texts are HEAD's."""
    return git("rev-parse", "HEAD").returncode == 0 and \
        git("diff", "--quiet", "HEAD", "--", *DOCS).returncode == 0


def committed(rel: str) -> bytes:
    """A results file as committed with the texts that quote it (see the module's docstring)."""
    if docs_as_committed():
        shown = git("show", f"HEAD:{rel}")
        if shown.returncode == 0:
            return shown.stdout
    return (ROOT / rel).read_bytes()


def table(rel: str) -> pd.DataFrame:
    """A results CSV as :func:`committed`."""
    return pd.read_csv(io.BytesIO(committed(rel)))


def quoted_rows(text: str) -> dict[tuple[str, str, str], list[str]]:
    """Rows of the Markdown tables in ``text`` by (regime, backbone, mode), the mode's note
    dropped: a row that starts with a regime of the classification table is that regime's
    (its other cells shift left by one), any other the first regime's."""
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        regime = cells[0] if cells[0] in REGIMES.values() else "removed"
        cells = cells[1:] if cells[0] == regime else cells
        if line.startswith("| ") and len(cells) >= 8:
            rows[(regime, cells[0], re.sub(r" \(.*\)$", "", cells[1]))] = cells
    return rows


def same(quoted: str, computed: str) -> bool:
    """Equal up to bold and the typographic minus."""
    return quoted.replace("**", "").replace("−", "-") == computed.replace("**", "")


def test_results_readme_quotes_the_classification_table():
    """Every row of both regimes (the second regime's rows start with its name)."""
    quoted = quoted_rows(RESULTS_README.read_text())
    regimes = by_regime(table("results/tables/classification.csv"))
    assert set(regimes) == set(REGIMES)
    for task, rows in regimes.items():
        for _, row in people(rows, task).iterrows():
            cells = quoted[(REGIMES[task], row["backbone"], row["mode"])]
            for index, column in ((4, "top-1 err (%)"), (5, "vs default (± s.e.)"),
                                  (6, "gap recovered"), (7, "health")):
                assert same(cells[index], row[column]), (task, row["mode"], column,
                                                         cells[index], row[column])


def test_results_readme_quotes_the_probes():
    text = RESULTS_README.read_text()
    probe = table("results/tables/probe.csv")
    fine = probe[probe["target"] == "fine cue"].set_index("size")["probe_error_pct"]
    assert f"**{fine.loc[32]:.1f}%** error | **{fine.loc[64]:.1f}%** error" in text
    second = table("results/tables/probe_attenuated.csv").set_index(["target", "size"])
    second = second["probe_error_pct"]
    assert (f"| fine cue (4-way) | {second['fine cue', 32]:.1f}% error | "
            f"{second['fine cue', 64]:.1f}% error | 75% |") in text
    resizers = table("results/tables/resizer_probe.csv")
    band = resizers[resizers["mode"] == "band_energy"]["probe_error_pct"].iloc[0]
    assert f"| band_energy | **{band:.1f}%** |" in text


def loader_cells(row: pd.Series) -> list[str]:
    """A loader row as results/README.md quotes it: CPU ms/img, share of the floor by CPU and
    by wall, images/s, x torchvision."""
    return [f"{row['cpu_ms_per_image']:.2f}", f"{row['cpu_vs_decode']:.2f}",
            f"{row['vs_2core_decode']:.2f}", f"{row['images_per_s']:.0f}", f"{row['vs_torch']:.2f}"]


def loader_rows() -> pd.DataFrame:
    """The committed benchmark's loader rows (train and eval passes)."""
    bench = table("results/bench/loaders.csv")
    rows = bench[bench["mode"].isin(["train", "eval"])]
    return rows.assign(size=rows["size"].astype(int))


def test_results_readme_quotes_the_committed_loader_benchmark():
    """Every loader row of results/README.md is the committed loaders.csv's (a benchmark
    rerun fails here until the text is updated)."""
    text = RESULTS_README.read_text()
    for _, row in loader_rows().iterrows():
        key = f"| {row['image_set']} | {row['size']} | {row['mode']} | {row['loader']} |"
        assert f"{key} {' | '.join(loader_cells(row))} |" in text, key
    bench = table("results/bench/loaders.csv")
    ms = {(r["image_set"], r["loader"], r["size"]): r["cpu_ms_per_image"]
          for _, r in bench.fillna({"size": 0}).iterrows()}
    flat = " ".join(text.split())
    assert (f"one core decodes a photo in {ms[('photo', 'decode-torchvision', 0)]:.2f} ms of CPU "
            f"(libjpeg-turbo through torchvision; PIL: {ms[('photo', 'decode-pil', 0)]:.2f} ms), "
            f"an embedded-benchmark image in {ms[('synthetic', 'decode-torchvision', 0)]:.3f} ms. "
            f"Normalising costs {ms[('photo', 'normalize', 448)]:.2f} ms per image at 448 and "
            f"{ms[('photo', 'normalize', 224)]:.2f} ms at 224") in flat


def test_readme_quotes_the_committed_training_loader_rates():
    """The README's summary (photos, train, 448 and 224 px: CPU ms/img, share of the floor,
    x torchvision) is the committed loaders.csv's."""
    names = {"torch": "torchvision (reference)",
             "dali-hybrid": "DALI decode + torch resize (CPU default)",
             "dali-cpu": "all-DALI on the CPU (previous default)"}
    rows = loader_rows().set_index(["image_set", "mode", "loader", "size"])
    lines = (ROOT / "README.md").read_text().splitlines()
    for loader, name in names.items():
        expected = [cell for size in (448, 224) for cell in (
            f"{rows.loc[('photo', 'train', loader, size), key]:.2f}"
            for key in ("cpu_ms_per_image", "cpu_vs_decode", "vs_torch"))]
        quoted = next(line for line in lines if line.startswith(f"| {name} |"))
        assert [c.strip().replace("**", "") for c in quoted.strip("|").split("|")[1:]] \
            == expected, name


def test_readme_quick_start_is_two_commands_and_says_how_to_reach_the_tools():
    """The Quick start is `make repro` and `make test` (targets the Makefile has), and the
    README says how a new shell gets dvc and snakemake on its PATH."""
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = quick.split("```bash\n", 1)[1].split("```", 1)[0]
    assert [line.split("#")[0].strip() for line in block.splitlines()] == ["make repro",
                                                                        "make test"]
    makefile = (ROOT / "Makefile").read_text()
    assert all(re.search(rf"^{target}:", makefile, re.M) for target in ("repro", "test"))
    assert "source .venv/bin/activate" in quick and "PATH" in quick
    if (ROOT / ".venv" / "bin").is_dir():  # the environment provides what the README names
        assert all((ROOT / ".venv" / "bin" / tool).exists() for tool in ("dvc", "snakemake"))


def test_readme_quotes_the_committed_loop_and_stage_benchmarks():
    """The README's loop table is the committed loop.csv's, and its account of where a run's
    time goes is the committed stages.csv's total."""
    readme = (ROOT / "README.md").read_text()
    loop = table("results/bench/loop.csv")
    for run, rows in loop.groupby("run", sort=False):
        train, test = (rows[rows["phase"] == p].iloc[0] for p in ("train", "eval"))
        size = (f"{train['input_size']}" if train["input_size"] == train["model_size"]
                else f"{train['input_size']} → {train['model_size']}")
        assert (f"| {run} | {size} | {train['images_per_s']:.0f} | {train['vs_bare']:.2f} | "
                f"{test['images_per_s']:.0f} | {test['vs_bare']:.2f} |") in readme, run
    slow = loop[(loop["run"] == "resnet_tiny/default") & (loop["phase"] == "train")].iloc[0]
    threads = {1: "one thread", 2: "two threads"}.get(slow["threads"], f"{slow['threads']} threads")
    assert (f"({slow['bare_cpu_ms_per_image']:.2f} ms of CPU per image in the bare loop, on "
            f"{threads})") in " ".join(readme.split())
    assert f"({slow['cpu_ms_per_image']:.2f} ms in the project's)" in readme
    stages = table("results/bench/stages.csv")
    total, training = stages.iloc[-1], stages[stages["stage"].str.startswith("train/")]
    flat = " ".join(readme.split())
    assert (f"{len(stages) - 1} stages in **{total['span_s']:.0f} s** from first start to last "
            f"end; the stages' own wall time {total['wall_s']:.0f} s, of which start-up "
            f"(interpreter and imports) {total['startup_wall_s']:.0f} s, waiting for batches "
            f"{total['data_wall_s']:.0f} s and compute {total['compute_wall_s']:.0f} s; "
            f"{total['cpu_s']:.0f} s of CPU, {total['startup_cpu_s']:.0f} s of it start-up (a "
            f"training stage: {training['startup_cpu_s'].median():.2f} s, the median of "
            f"{len(training)})") in flat


def flat(text: str) -> str:
    """Text with bold, the typographic minus and runs of white space normalised."""
    return " ".join(text.replace("**", "").replace("−", "-").split())


def test_docs_quote_the_iqa_table_and_its_probe():
    """results/README.md's IQA rows and probe, and the README's summary of them, are the
    committed iqa.csv's and probe_ava.csv's."""
    text = flat(RESULTS_README.read_text())
    shown = people(table("results/tables/iqa.csv"), "iqa")
    for _, row in shown.iterrows():
        cells = [row[c] for c in ("backbone", "mode", "px (in → model)", "SRCC mean",
                                  "vs default (± s.e.)", "gap recovered", "health")]
        assert flat("| " + " | ".join(cells) + " |") in text, row["mode"]
    probe = table("results/tables/probe_ava.csv").set_index(["target", "size"])["probe_srcc"]
    for target, name in (("fine quality", "fine quality (detail)"),
                         ("coarse quality", "coarse quality (contrast)"),
                         ("mean score", "mean score")):
        assert f"| {name} | {probe[target, 32]:.3f} | {probe[target, 64]:.3f} |" in text, target
    rows = shown.set_index("mode")
    readme = flat((ROOT / "README.md").read_text())
    assert flat(f"probe SRCC {probe['fine quality', 32]:.3f} there, "
                f"{probe['fine quality', 64]:.3f} at 64 px") in readme
    assert flat(f"SRCC is {rows.loc['default', 'SRCC mean']} at 32 px and "
                f"{rows.loc['bicubic_hr', 'SRCC mean']} at 64 px; the learned resizer (64 -> 32) "
                f"recovers {rows.loc['learned', 'gap recovered']} of that gap "
                f"({rows.loc['learned', 'vs default (± s.e.)'].rstrip(' ≈')})") in readme


def test_readme_quotes_the_second_regime():
    """The README's bullet on the second regime is the committed classification.csv's rows
    under ``regime: attenuated`` and probe_attenuated.csv's fine cue."""
    rows = by_regime(table("results/tables/classification.csv"))["attenuated"].set_index("mode")
    shown = people(rows.reset_index(), "attenuated").set_index("mode")
    probe = table("results/tables/probe_attenuated.csv").set_index(["target", "size"])
    delta = shown.loc["learned", "vs default (± s.e.)"].rstrip(" ≈")
    quote = (f"probe {probe.loc[('fine cue', 32), 'probe_error_pct']:.1f}% error at 32 px), "
             f"resnet_tiny learns it only at 64 px ({rows.loc['default', 'top1_err_mean']:.1f}% "
             f"error at 32 px, {rows.loc['bilinear_hr', 'top1_err_mean']:.1f}% at 64) and the "
             f"learned resizer recovers {shown.loc['learned', 'gap recovered']} of that gap "
             f"({delta})")
    assert flat(quote) in flat((ROOT / "README.md").read_text())


def test_results_readme_quotes_the_second_regimes_checks():
    """results/README.md's section on the second regime: the per-seed errors (the committed
    metrics), the resizer probe on that regime's set and the learned resizers' residual size."""
    text = flat(RESULTS_README.read_text())
    learned, default = ([f"{table_json(mode, s)['top1_err']:.1f}" for s in range(3)]
                        for mode in ("learned", "default"))
    assert flat(f"per seed {learned[0]}, {learned[1]} and {learned[2]}% against {default[0]}, "
                f"{default[1]} and {default[2]}%") in text
    probe = table("results/tables/resizer_probe.csv")
    mine = probe[probe["regime"] == "attenuated"].set_index("resizer_output")["probe_error_pct"]
    outputs = [f"{e:.1f}" for e in probe[(probe["regime"] == "attenuated")
                                         & (probe["mode"] == "learned")]["probe_error_pct"]]
    assert flat(f"{mine['bilinear_aa (32 px)']:.1f}% error after the antialiased resize 64 -> "
                f"32, {mine['bilinear_noaa (32 px)']:.1f}% after the plain bilinear one") in text
    assert flat(f"{outputs[0]}, {outputs[1]} and {outputs[2]}% after the three trained learned "
                f"resizers") in text
    diagnostics = table("results/tables/diagnostics.csv")
    ratio = diagnostics[(diagnostics["task"] == "attenuated")
                        & (diagnostics["mode"] == "learned")]["residual_to_skip"].iloc[0]
    assert f"is {ratio:.2f} of the skip's" in text


def table_json(mode: str, seed: int) -> dict:
    """A second-regime resnet_tiny run's metrics, as :func:`committed`."""
    return json.loads(committed(f"results/metrics/attenuated/resnet_tiny/{mode}/seed{seed}.json"))
