"""``bench/SCALE.md`` from ``bench/scale.json`` (``python -m bench.scale`` writes both)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

NODES = (1, 2, 4, 8, 16, 32)
CORES_PER_NODE = 8
"""The node the model assumes: 8 cores, one worker each."""
NETWORK_MB_S = 1000.0
"""10 Gbit/s between nodes, about 1 GB/s of payload."""


def split(run: dict[str, Any]) -> dict[str, float]:
    """Where the run's wall time went: ``parallel``, computed by the workers (evaluations, the
    ranking, the statistics pass); ``serial``, the rest, on the driver (the Default method but
    its statistics, reading the validation set and putting it in the object store with FP32's
    outputs computed, building each candidate, scoring, the final kernel check). Transfer
    (``ray.put``, fetching results) is inside both and shown apart."""
    t = run["timings"]
    statistics = run["stage_s"].get("statistics", 0.0)
    return {
        "wall": run["wall_s"],
        "serial": run["wall_s"] - t["evaluate_s"] - t["rank_s"] - statistics,
        "statistics": statistics,
        "setup": t["setup_s"],
        "parallel": t["workers_busy_s"] + statistics,
        "transfer": t["transfer_s"],
        "results_mb": t["results_mb"],
    }


def projection(base: dict[str, float], nodes: int, evaluations: int) -> float:
    """Wall time on ``nodes`` nodes of :data:`CORES_PER_NODE` cores: the serial part stays, the
    workers' compute divides, results cross the network once per evaluation."""
    workers = nodes * CORES_PER_NODE
    network = base["results_mb"] / NETWORK_MB_S if nodes > 1 else 0.0
    return base["serial"] + base["parallel"] / workers + network * evaluations


def write_markdown(data: dict[str, Any], path: Path) -> None:
    m, runs = data["machine"], data["runs"]
    local = runs[0]
    lines = [
        "# AccuracyAware on Ray: local beside 1, 2 and 4 worker processes",
        "",
        f"Measured {data['date']} by `python -m bench.scale --validation "
        f"{data['validation_set']}"
        + (
            f" --validation-subset {data['validation']}`"
            if data["validation"] != data["validation_set"]
            else "`"
        )
        + " "
        f"on {m['cpu']}, **{m['cpus']} cores**, {m['memory_gb']} GB, "
        f"VNNI: {m['vnni']}; onnxruntime {data['versions']['onnxruntime']}, "
        f"calibench {data['versions']['calibench_git']}.",
        "",
        f"MobileNetV2 (torchvision weights), {data['calibration']} calibration crops, "
        f"**{data['validation']} validation crops** labelled with FP32's own top-1 (accuracy = "
        f"top-1 agreement with FP32), maximum drop {data['max_drop']} points. The Ray runs use a "
        f"real local cluster (`tests/ray_cluster.py`: one node on 127.0.0.1, token "
        f"authentication on) with {data['ray_node_cpus']} logical CPUs on this "
        f"{m['cpus']}-core machine: one worker per logical CPU, each running ONNX Runtime on "
        "one thread. The local run uses ONNX Runtime on all cores and threads for the ranking. "
        "Before the Ray runs, an untimed Default calibration on the cluster starts its worker "
        "processes. Every run gets the same FP32 layer times (AccuracyAware's tie-breaker, "
        "profiled once), so runs differ only in where the evaluations ran.",
        "",
        "| run | wall (s) | Default method (s) | full evaluations | ranking runs | evaluate (s) "
        "| rank (s) | setup (s) | transfer (s) | workers busy (s) | final top-1 | same model |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        t = run["timings"]
        lines.append(
            f"| {run['backend']} | {run['wall_s']} | {sum(run['stage_s'].values()):.1f} | "
            f"{run['evaluations']['full']} | {run['evaluations']['ranking']} | "
            f"{t.get('evaluate_s', 0)} | {t.get('rank_s', 0)} | {t.get('setup_s', '–')} "
            f"| {t.get('transfer_s', '–')} | {t.get('workers_busy_s', '–')} | {run['final']:.2f} | "
            f"{'yes' if run['model_sha256'] == local['model_sha256'] else '**no**'} |"
        )
    lines += [
        "",
        f"Every run returned the same INT8 model: "
        f"{'**yes**, byte for byte' if data['identical'] else '**no**'} (SHA-256 "
        f"`{local['model_sha256'][:16]}…`); FP32 {local['fp32']}, Default {local['default']}, "
        f"final {local['final']} with {len(local['reverted'])} layers reverted.",
        "",
        "Load average (1, 5, 15 min) before each run: "
        + "; ".join(f"{r['backend']}: {r['loadavg_before']}" for r in runs)
        + ".",
        "",
    ]
    ray_runs = [r for r in runs if r["backend"].startswith("ray")]
    if ray_runs:
        base = split(ray_runs[0])
        evaluations = ray_runs[0]["evaluations"]["full"]
        lines += [
            "## Where the time goes, and what N nodes would give",
            "",
            f"Split of the {ray_runs[0]['backend']} run, the one whose worker had a core to "
            f"itself (seconds): computed by the worker {base['parallel']:.1f} (the evaluations, "
            f"the ranking, and the statistics pass of {base['statistics']:.1f}); the rest, "
            f"{base['serial']:.1f}, on the driver, of which {base['setup']:.1f} went to reading "
            "the validation set, putting it in the object store and FP32's outputs (counted as "
            "serial here, though FP32 runs on the workers). Transfer and serialisation "
            f"(`ray.put`, fetching results) took {base['transfer']:.1f} in all; the outputs "
            f"fetched for scoring came to {base['results_mb']} MB over {evaluations} full "
            "evaluations. With 4 workers on 2 cores the workers share the cores: each "
            "evaluation waits for the slowest shard, and the workers' busy time counts the "
            "time they waited for a core.",
            "",
            f"A model from that split, for nodes of {CORES_PER_NODE} cores with one worker per "
            f"core and {NETWORK_MB_S / 1000:.0f} GB/s between nodes: the serial part stays, the "
            "workers' compute divides, the outputs cross the network once per evaluation. It "
            "is an extrapolation, not a measurement; reading the validation set stays on the "
            "driver and grows with it.",
            "",
            "| nodes | workers | projected wall (s) |",
            "|---|---|---|",
        ]
        for nodes in NODES:
            lines.append(
                f"| {nodes} | {nodes * CORES_PER_NODE} | "
                f"{projection(base, nodes, evaluations):.0f} |"
            )
        lines.append("")
    path.write_text("\n".join(lines) + "\n")
