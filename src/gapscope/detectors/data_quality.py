"""Corpus problems from the audit that distort a cross-domain study: duplicates across
domains or across train/test, one-class domains, rejected rows."""

from __future__ import annotations

from gapscope.findings import Finding, register_detector


@register_detector("data_quality")
def run(study) -> list[Finding]:
    audit = study.audit or {}
    findings: list[Finding] = []
    dedup = study.splits.get("dedup", {})
    removed = dedup.get("removed_exact", 0) + dedup.get("removed_near", 0)
    if removed:
        findings.append(Finding(
            kind="train_test_duplicates", severity="medium" if removed > 0.02 * max(dedup.get("train_rows_before", 1), 1) else "low",
            title=(f"{removed} training row{'s' if removed != 1 else ''} duplicated held-out test rows and "
                   f"{'were' if removed != 1 else 'was'} removed"),
            summary=(f"{dedup.get('removed_exact', 0)} exact and {dedup.get('removed_near', 0)} near duplicates of test "
                     "rows were dropped from the training pools so no cell is scored on text it trained on."),
            evidence={"examples": [_located(study, e) for e in dedup.get("examples", [])[:10]]},
            example_ids=[e["train_id"] for e in dedup.get("examples", [])[:10]], score=float(removed),
        ))
    dup = audit.get("duplicates", {})
    cross = dup.get("cross_domain_exact", 0) or 0
    if isinstance(cross, dict):
        cross = cross.get("count", 0)
    if cross:
        findings.append(Finding(
            kind="cross_domain_duplicates", severity="low",
            title=f"{cross} emails appear in more than one domain",
            summary="The same email in two corpora inflates out-of-domain scores and blurs domain boundaries.",
            evidence={k: v for k, v in dup.items() if k != "near_pairs_all"}, score=float(cross),
        ))
    for src in audit.get("sources", []):
        counts = src.get("label_counts", {})
        if len([v for v in counts.values() if v]) == 1:
            only = next(k for k, v in counts.items() if v)
            findings.append(Finding(
                kind="one_class_domain", severity="info",
                title=f"domain {src['domain']} holds only {only} emails",
                # no specialist cell is trained on it (the runner lists it as not trainable)
                summary=("AUROC is undefined on this domain, "
                         + ("and F1 counts only one kind of error (missed phishing)" if only == "phishing" else
                            "F1 is not measured there (it counts false alarms only)")
                         + "; no specialist is trained on it (one label cannot teach a decision), and the "
                         "label-noise audit cannot set a threshold for a class it never sees. A phrase confined to "
                         "it is tied to its label by how the corpus was collected, so the shortcut probe cannot "
                         "tell a marker of its source from a sign of the class there."),
                evidence={"label_counts": counts}, domains=[src["domain"]],
            ))
        if src.get("rows_rejected"):
            share = src["rows_rejected"] / max(src.get("rows_in", 1), 1)
            findings.append(Finding(
                kind="rejected_rows", severity="low" if share > 0.05 else "info",
                title=f"{src['rows_rejected']} of {src['rows_in']} rows of {src['domain']} were rejected",
                summary="Rows rejected at ingestion, by reason: "
                        + ", ".join(f"{k} ({v})" for k, v in src.get("rejected_by_reason", {}).items()),
                evidence={"rejected_by_reason": src.get("rejected_by_reason", {}), "path": src.get("path"),
                          # where the first rows of each reason are (file:line, file in a folder, ...)
                          "rejected_at": src.get("rejected_at") or {}},
                domains=[src["domain"]], score=share,
            ))
    return findings


def _located(study, example: dict) -> dict:
    """A train/test duplicate pair with where a person finds each row in the input."""
    out = dict(example)
    for side in ("train", "test"):
        row = study.rows.get(example.get(f"{side}_id"))
        if row is not None and row.location:
            out[f"{side}_location"] = row.location
    return out
