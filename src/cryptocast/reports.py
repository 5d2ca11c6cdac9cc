"""Reports made from a bundle's manifest (CI summaries, the release PR body)."""

from __future__ import annotations

from cryptocast.contracts import Manifest


def metrics_markdown(manifest: Manifest) -> str:
    """A markdown table of a bundle's per-pair backtest metrics."""
    lines = [
        f"### {manifest.model_name} v{manifest.model_version} ({manifest.granularity},"
        f" data: {manifest.data_source or '?'})",
        "",
        "| pair | model | MASE | naive MASE | sMAPE | MAE | coverage |",
        "|---|---|---|---|---|---|---|",
    ]
    for pair, entry in sorted(manifest.pairs.items()):
        m = entry.metrics
        lines.append(
            f"| {pair} | {entry.candidate} | {m['mase']:.4f} | {entry.naive_mase:.4f} | "
            f"{m['smape']:.3f} | {m['mae']:.4g} | {m['coverage']:.2f} |"
        )
    return "\n".join(lines) + "\n"
