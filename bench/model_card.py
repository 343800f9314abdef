"""Model cards: a baseline's README.md rendered from its manifest, recipe, checkpoint meta and results.

Every number on a card is read from files the code wrote (``weights/<task>/meta.json`` from
``bench train``, ``leaderboard/results/<task>/<name>.json`` from ``bench evaluate``); nothing is typed in.
"""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from bench.errors import BenchError
from bench.results import Results, atomic_write_text, results_path
from bench.submission import load_submission, member_dir
from bench.task import load_task
from bench.training_record import convergence, convergence_text, training_machines, warm_chain

CARD_FILE = "README.md"


def _sig(value: float, digits: int = 3) -> str:
    """``value`` to ``digits`` significant figures, trailing zeros kept (0.140, not 0.14) so a card reads like the README."""
    return f"{value:#.{digits}g}".rstrip(".").replace(".e", "e")


def _fmt(values: list | None, digits: int = 3) -> str:
    return " / ".join("—" if v is None else _sig(v, digits) for v in values) if values else "—"


def _codec_lines(root: Path, meta: dict, task_name: str) -> list[str]:
    """Codec rows of a card: latent, compression, scalings, and the validation latents under unit vs the codec's scaling."""
    described = meta.get("codec", {})
    shape = described.get("latent_shape")
    lines = []
    if shape:
        numbers = 1
        for v in shape:
            numbers *= v
        lines.append(f"| latent | {' x '.join(str(v) for v in shape)} = {numbers:,} numbers per field; compression ratio "
                     f"{_sig(described.get('compression_ratio', 0))}x against the native float32 field (below 1: expansion) |")
        lines.append(f"| input | {described.get('input_scaling')}; "
                     + ("native 32x64 grid" if described.get("native_grid", True) else f"resized to {described.get('resize_to')} before encoding (the documents' way)")
                     + (f"; the encoder resizes to its {described['encoder_input_size']} inside |" if described.get("encoder_input_size") else " |"))
    scaling = meta.get("latent_scaling", {})
    if scaling.get("kind") == "scale_factor":
        lines.append(f"| latent scaling | scale factor {scaling['value']:.5g} (1 / std of the train-split latents) |")
    elif scaling.get("kind") == "statistics":
        lines.append(f"| latent scaling | per-channel mean/std of the train-split latents ({len(scaling['mean'])} channels, "
                     f"{meta.get('latent_statistics', {}).get('train_fields')} train fields) |")
    val = meta.get("validation_latents", {})
    if val:
        unit, own = val.get("unit_statistics", {}), val.get("codec_scaling", {})
        spread = lambda d, key: f"{_sig(min(d[key]))} .. {_sig(max(d[key]))}" if d.get(key) else "—"
        lines.append(f"| validation latents | unit statistics: channel means {spread(unit, 'mean')}, stds {spread(unit, 'std')}; "
                     f"after the codec's scaling: means {spread(own, 'mean')}, stds {spread(own, 'std')} |")
    pre = root / "pretrained" / task_name / "meta.json"
    if pre.is_file():
        stage1 = json.loads(pre.read_text())
        cfg = stage1.get("train_config", {})
        lines.append(f"| stage 1 (pretrain) | `{cfg.get('model')}` {json.dumps(cfg.get('model_args', {}))} on the train split: "
                     f"{stage1.get('epochs_run')} epoch(s), best {stage1.get('best_epoch')}, "
                     f"{stage1.get('train_wall_time_s', 0) / 60:.1f} min; then frozen (pretrained/{task_name}/) |")
    return lines


def _latent_lines(root: Path, task_name: str, test: "Results | None") -> list[str]:
    """Latent-forecaster rows: the codec it runs, freezing and loss, the U-Net depth used, the sampler and its cost."""
    config_path = root / "weights" / task_name / "config.json"
    config = json.loads(config_path.read_text()) if config_path.is_file() else {}
    if config.get("kind") != "latent":
        return []
    options, args, codec = config.get("latent", {}), config.get("model_args", {}), config.get("codec_arch", {})
    shape = (args.get("latent_channels"), args.get("latent_height"), args.get("latent_width"))
    scaling = codec.get("codec", {}).get("latent_scaling")
    lines = [f"| codec | `{options.get('codec')}` (`{codec.get('model')}`), latent {' x '.join(str(v) for v in shape)}, the codec's own "
             f"latent scaling ({scaling}); its weights are stored in this checkpoint; encoder "
             f"{'frozen' if options.get('freeze_encoder') else 'trained'}, decoder {'frozen' if options.get('freeze_decoder') else 'trained'} |"]
    model = config.get("model")
    if model == "latent_unet":
        from bench.zoo.models.latent_unet import feasible_depth

        used = feasible_depth(shape[1], shape[2], args.get("depth", 3))
        lines.append(f"| latent U-Net | base {args.get('base')}, depth {args.get('depth')} asked, {used} used "
                     f"({shape[1]}x{shape[2]} latent grid); predicts the change of the last latent; loss: {options.get('loss')} MSE |")
    if model == "latent_diffusion":
        seconds = (test.ensemble or {}).get("seconds_per_init_time") if test is not None else None
        hardware = (test.provenance.get("hardware") or {}) if test is not None else {}
        cost = (f"; {_sig(seconds)} s per init time in the test evaluation (sampling + decoding + scoring, "
                f"{hardware.get('processor') or hardware.get('machine') or 'CPU'}, 1 thread)") if seconds else ""
        lines.append(f"| ensemble | {options.get('members')} members per init time, DDIM {options.get('sampling_steps')} steps "
                     f"(eta 0, trailing spacing, clean-target clip +-{args.get('clip_sample_range', 3.0)}), seeded by the init time{cost} |")
    return lines


def _epochs_text(meta: dict, config: dict) -> str:
    """Epochs run; after warm starts, in all and in the last stage (whose recipe the row's lr and batch are)."""
    chain = warm_chain(meta)
    if not chain:
        return f"{meta.get('epochs_run')} epoch(s) run of {config.get('epochs')}"
    complete = "warm_start_before" in chain[-1]  # older records do not nest their own earlier stages
    last = int(meta.get("epochs_run", 0)) - int(chain[0].get("epochs_before", 0))
    return (f"{meta.get('epochs_run')} epochs in {'' if complete else 'at least '}{len(chain) + 1} stages (warm starts; "
            f"the last ran {last} of {config.get('epochs')})")


def _storage_text(storage: dict, weights_dir: Path) -> str:
    """Storage format, file size and the measured change of the validation score against fp32."""
    text = str(storage.get("format"))
    path = weights_dir / "weights.safetensors"
    if path.is_file():
        text += f", {path.stat().st_size / 1e6:.1f} MB"
    if storage.get("relative_change") is not None:
        text += f", validation score {100 * storage['relative_change']:+.3f}% against fp32"
    return text


def _training_time(meta: dict) -> str:
    """Total training time, split by machine when stages ran on more than one (e.g. CPU, then a lent GPU)."""
    total, machines = meta.get("train_wall_time_s", 0) / 60, training_machines(meta)
    if len(machines) <= 1:
        return f"{total:.1f} min on {machines[0][0] if machines else 'unrecorded hardware'}" + \
            (f", torch {meta.get('hardware', {}).get('torch')}" if meta.get("hardware") else "")
    return f"{total:.1f} min: " + ", then ".join(f"{minutes:.1f} min on {m}" for m, minutes in machines)


def _task_section(root: Path, name: str, task_name: str, results_dir: Path) -> list[str]:
    meta_path = root / "weights" / task_name / "meta.json"
    lines = [f"### {task_name}", ""]
    if not meta_path.is_file():
        return lines + ["No weights for this task yet (`bench train` writes them).", ""]
    meta = json.loads(meta_path.read_text())
    config = meta.get("train_config", {})
    options = config.get("options", {})
    named = ", ".join(k.replace("_", " ") + (f" {v}" if isinstance(v, list) else "") for k, v in options.items() if v) or "none"
    if "latent_scaling" in meta:  # a codec: its loss, not the forecasters' options
        loss = config.get("codec", {})
        named = (f"loss L1 x {loss.get('l1_weight')} + L2 x {loss.get('l2_weight')} + gradient x {loss.get('grad_weight')} "
                 f"+ KL x {loss.get('kl_weight')}{', latitude-weighted' if loss.get('lat_weighted_loss') else ''}")
    arch_path = root / "weights" / task_name / "config.json"
    arch = json.loads(arch_path.read_text()) if arch_path.is_file() else {}
    if arch.get("kind") == "latent":  # a latent forecaster: its own loss, not the pixel forecasters' options
        loss = arch.get("latent", {}).get("loss")
        named = {"latent_diffusion": "DDPM noise-prediction (epsilon) MSE", "rae_direct": "latitude-weighted MSE of the fields (z-scored)"}.get(
            arch.get("model"), "latitude-weighted MSE of the decoded fields" if loss == "pixel" else "MSE of the scaled latents")
    hw = meta.get("hardware", {})
    lines += [
        "| | |", "|---|---|",
        f"| parameters | {meta.get('parameters'):,} |",
        f"| training data | {meta.get('data_title')} (data fingerprint `{meta.get('data_fingerprint')}`): train split "
        f"(targets 2015-2018), {meta.get('train_windows')} {'fields' if 'latent_scaling' in meta else 'windows'} "
        f"(stride {config.get('window_stride')}); model selection on "
        f"validation 2019; nothing after {str(meta.get('trained_until'))[:10]} was read |",
        f"| schedule | {_epochs_text(meta, config)}, best {meta.get('best_epoch')}, stopped by "
        f"{meta.get('stopped_by')}; batch {config.get('batch_size')}, AdamW lr {config.get('lr')}, warm-up + cosine, {config.get('precision')}{_ema_text(config)} |"
        if meta.get("stopped_by") != "closed form" else
        f"| schedule | closed form (dual ridge), {meta.get('train_windows')} windows |",
        f"| trainer options | {named} |",
        *([f"| convergence | {converged} |"] if (converged := _convergence(root / "weights" / task_name)) else []),
        f"| training time | {_training_time(meta)} |",
        f"| weights | {_storage_text(meta.get('storage', {}), root / 'weights' / task_name)} |",
        f"| git commit | `{meta.get('git_commit')}`{' (uncommitted changes)' if meta.get('git_dirty') else ''} |",
    ]
    if "ridge" in meta:
        ridge = meta["ridge"]
        lines.append(f"| ridge | alpha {ridge['alpha']}, stored rank {ridge['rank']}: validation score "
                     f"{ridge['validation_score_stored_rank']:.4f} (full rank {ridge['validation_score_full_rank']:.4f}) |")
    codec = "latent_scaling" in meta
    if codec:
        lines += _codec_lines(root, meta, task_name)
    result_file = results_path(results_dir, task_name, name)
    results = Results.read(result_file) if result_file.is_file() else None
    lines += _latent_lines(root, task_name, results)
    heading = (f"Latitude-weighted reconstruction RMSE (validation: every {config.get('val_stride', 1)}th field of 2019; test: the harness's codec scoring):" if codec
               else "Latitude-weighted RMSE at 6 / 12 / 18 / 24 h:")
    if arch.get("kind") == "latent" and arch.get("model") == "latent_diffusion":
        heading += (f" validation: the mean of {arch.get('latent', {}).get('evaluation_members')} member(s) (model selection);"
                    " test: the ensemble mean.")
    lines += ["", heading, "", "| variable | validation 2019 | test 2020 |", "|---|---|---|"]
    test = results.metrics if results is not None else {}
    for channel, values in meta.get("validation", {}).get("rmse", {}).items():
        test_values = test.get(channel, {}).get("physical", {}).get("rmse")
        lines.append(f"| {channel} | {_fmt(values)} | {_fmt(test_values)} |")
    if results is not None and results.ensemble:
        lines += ["", f"Probabilistic scores on the test year ({results.ensemble['members']} members; spread/skill "
                  f"corrected by {results.ensemble.get('spread_skill_correction')}), 6 / 12 / 18 / 24 h:", "",
                  "| variable | CRPS | spread | spread/skill |", "|---|---|---|---|"]
        for channel, spaces in test.items():
            physical = spaces.get("physical", {})
            lines.append(f"| {channel} | {_fmt(physical.get('crps'))} | {_fmt(physical.get('spread'))} | {_fmt(physical.get('spread_skill'))} |")
    note = f"Test scores from `{result_file}`." if test else "No test results yet (`bench evaluate`)."
    return lines + ["", note, ""] + _ablation_section(root, task_name)


def _ablation_section(root: Path, task_name: str) -> list[str]:
    """The option ablation written by ``bench ablate`` (validation only), if there is one."""
    path = root / "ablation" / f"{task_name}.json"
    if not path.is_file():
        return []
    table = json.loads(path.read_text())
    budget = table.get("budget", {})
    lines = [f"Which trainer options matter (`bench ablate`, validation 2019, each variant {budget.get('epochs')} epoch(s) at "
             f"window stride {budget.get('window_stride')}, same seed; RMSE at 6 h / 24 h):", "",
             "| variant | validation score | RMSE 6 h / 24 h |", "|---|---|---|"]
    for row in table.get("rows", []):
        rmse = ", ".join(f"{c} {_sig(row['rmse_6h'][c])} / {_sig(row['rmse_24h'][c])}" for c in row.get("rmse_6h", {}))
        lines.append(f"| {row['variant']} | {row['validation_score']:.4f} | {rmse} |")
    return lines + [""]


def _mean_task_section(root: Path, name: str, task_name: str, members: list[str], results_dir: Path) -> list[str]:
    """A mean's members, the validation table that chose them and the test scores of the mean and each member."""
    lines = [f"### {task_name}", "", f"Members: {', '.join(f'[{m}](../{m})' for m in members)}.", ""]
    selection = root / "selection" / f"{task_name}.json"
    if selection.is_file():
        table = json.loads(selection.read_text())
        rows = table["rows"]
        chosen = next((i for i, r in enumerate(rows) if sorted(r["members"]) == sorted(members)), None)
        lines += [f"Chosen on validation 2019 (`bench select-members`, `{selection.relative_to(root)}`, data fingerprint "
                  f"`{table['data_fingerprint']}`): every mean of the candidates, ranked by {table['ranking']}; "
                  f"the members above rank {'—' if chosen is None else chosen + 1} of {len(rows)}. Best five and the best single model:", "",
                  "| rank | members | score | RMSE 6 / 12 / 18 / 24 h |", "|---|---|---|---|"]
        single = next(i for i, r in enumerate(rows) if len(r["members"]) == 1)
        for i in sorted(set(range(min(5, len(rows)))) | {single}):
            rmse = "; ".join(f"{c} {_fmt(v)}" for c, v in rows[i]["rmse"].items())
            lines.append(f"| {i + 1} | {' + '.join(rows[i]['members'])} | {rows[i]['score']:.5f} | {rmse} |")
        lines.append("")
    else:
        lines += ["No validation selection table yet (`bench select-members`).", ""]
    lines += ["Test 2020, latitude-weighted RMSE at 6 / 12 / 18 / 24 h:", "", "| forecast | " + " | ".join(load_task(task_name).channel_keys) + " |",
              "|---|" + "---|" * len(load_task(task_name).channel_keys)]
    for label, result_name in [("**the mean**", name)] + [(m, load_submission(member_dir(root, m)).name) for m in members]:
        path = results_path(results_dir, task_name, result_name)
        if path.is_file():
            metrics = Results.read(path).metrics
            lines.append(f"| {label} | " + " | ".join(_fmt(metrics[c]["physical"]["rmse"]) for c in metrics) + " |")
    return lines + [""]


def _render_mean_card(submission, results_dir: Path) -> str:
    root, manifest = submission.root, submission.manifest
    lines = [f"# {manifest.name}", "", manifest.description, "",
             "A `kind: mean` submission: `bench evaluate` runs every member as its own isolated submission, from its own "
             "committed weights, and scores the equal-weight mean of their forecasts. Nothing is trained; the members' cards "
             "say how each was trained.", "",
             "**Data: a simulation.** Members trained, selected and scored on the project's simulated store "
             "(SPEEDY physics in WeatherBench2's schema), not on ERA5.", ""]
    for task_name in manifest.tasks:
        lines += _mean_task_section(root, manifest.name, task_name, manifest.members[task_name], results_dir)
    lines += ["This card is generated by `bench card` from `selection/*.json` and the results files; do not edit by hand.", ""]
    return "\n".join(lines)


def _convergence(weights_dir: Path) -> str | None:
    """What the end of training still gained on validation (``bench.training_record.convergence``)."""
    path = weights_dir / "training_log.json"
    return convergence_text(convergence(json.loads(path.read_text()))) if path.is_file() else None


def _ema_text(config: dict) -> str:
    """The schedule's note on a weight average (``ema_decay``), empty without one."""
    decay = config.get("ema_decay")
    return f", EMA of the weights (decay {decay}) validated and stored" if decay else ""


def render_card(submission_dir: Path, results_dir: Path) -> str:
    """The markdown card of a trained baseline (or of a multi-model mean)."""
    submission = load_submission(submission_dir)
    root, manifest = submission.root, submission.manifest
    if manifest.kind == "mean":
        return _render_mean_card(submission, results_dir)
    if not (root / "train.yaml").is_file():
        raise BenchError(f"{root} has no train.yaml: bench card writes cards of submissions trained with bench train")
    recipe = yaml.safe_load((root / "train.yaml").read_text()) or {}
    lines = [
        f"# {manifest.name}", "", manifest.description, "",
        f"Architecture `{recipe.get('model')}` with `{json.dumps(recipe.get('model_args', {}))}` "
        f"({'bench/zoo/codecs' if manifest.track == 'codec' else 'bench/zoo/models'}), trained by the shared trainer (`bench/zoo/train.py`) with the recipe in "
        "[train.yaml](train.yaml). Reproduce: `bench train baselines/"
        f"{root.name} --data ../shared/data/sim-era5like-64x32.zarr`; score: `bench evaluate baselines/{root.name}`.", "",
        "**Data: a simulation.** Trained, selected and scored on the project's simulated store "
        "(SPEEDY physics in WeatherBench2's schema), not on ERA5.", "",
    ]
    for task_name in manifest.tasks:
        load_task(task_name)
        lines += _task_section(root, manifest.name, task_name, results_dir)
    lines += ["This card is generated by `bench card` from `weights/*/meta.json` and the results files; do not edit by hand.", ""]
    return "\n".join(lines)


def write_card(submission_dir: Path, results_dir: Path) -> Path:
    path = Path(submission_dir) / CARD_FILE
    atomic_write_text(path, render_card(submission_dir, results_dir))
    return path
