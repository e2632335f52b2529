"""Render the self-contained HTML report (findings, matrix, audit, spec) with Jinja2.

Safety model: the template autoescapes everything. Python here only builds plain data
("view nodes") out of findings and audit; the one place markup is trusted is chart SVG
from svg.py (which escapes its own text) and `extra_sections[...]["html"]`, which must be
produced by gapscope code, never copied from input files. Control, bidi and zero-width
characters in user text are shown by code point (visible.py).
"""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from gapscope import __version__
from gapscope.findings import SEVERITY_ORDER, Finding, rank
from gapscope.report import svg
from gapscope.visible import visible

# Caps keep the page light however much evidence a detector returns.
MAX_FINDINGS, MAX_ITEMS, MAX_KEYS, MAX_TEXT, MAX_TOKENS, MAX_DEPTH = 60, 20, 40, 2000, 400, 4
MAX_LISTED = 2000  # findings past MAX_FINDINGS: listed (title and summary, no evidence) up to this many
MAX_IDS, MAX_TABLE_ROWS, MAX_COLUMNS, OPEN_FINDINGS = 24, 600, 12, 5
_TEMPLATES = Path(__file__).parent / "templates"


# --- generic evidence -> view nodes ------------------------------------------------------

def fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if abs(v) >= 1000:
            return f"{v:,.0f}"  # never scientific notation for counts and lengths
        return "0" if v == 0 else f"{v:.2e}" if abs(v) < 1e-3 else f"{v:.4g}"
    return str(v)


def _is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, str | int | float | bool)


def _long(s: Any) -> bool:
    return isinstance(s, str) and (len(s) > 120 or "\n" in s)


def _rounded(v: Any) -> Any:
    """Floats to four significant figures for evidence drawn as raw JSON (past MAX_DEPTH):
    '0.5833333333333334' read as noise beside the report's other numbers."""
    if isinstance(v, float):
        return float(f"{v:.4g}")
    if isinstance(v, dict):
        return {k: _rounded(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_rounded(x) for x in v]
    return v


def _cell_like(v: Any) -> bool:
    """Fits in one table cell: a short scalar, or a short list of them (e.g. a pair of ids)."""
    if isinstance(v, list):
        return len(v) <= 8 and all(_is_scalar(x) and not _long(x) for x in v)
    return _is_scalar(v) and not _long(v)


def _cell(v: Any) -> str:
    return ", ".join(fmt(x) for x in v) if isinstance(v, list) else fmt(v)


def _capped(text: str) -> dict[str, Any]:
    return {"t": "pre", "text": text[:MAX_TEXT], "cut": max(len(text) - MAX_TEXT, 0)}


def _token_text(tok: Any) -> str:
    # Show sub-word markers as the whitespace they stand for (SentencePiece "▁", GPT-2 "Ġ"/"Ċ").
    t = str(tok)
    if t and set(t) == {"Ċ"}:
        return "\n" * len(t)
    return " " + t[1:] if t[:1] in ("Ġ", "▁") else t


def _weights(weights: list) -> list[float]:
    return [float(w) if isinstance(w, int | float) else 0.0 for w in weights]


def _is_tokens(v: Any) -> bool:
    return isinstance(v, dict) and isinstance(v.get("tokens"), list) and isinstance(v.get("weights"), list)


def token_spans(tokens: list, weights: list, top: float | None = None,
                in_view: Any = None) -> list[dict[str, str]]:
    """Tokens with a background whose strength is |weight|: red toward phishing, blue toward legitimate.
    `top`: the |weight| of full strength (default the email's own largest, over all its tokens, not
    only the first MAX_TOKENS drawn), shared by emails drawn side by side so that one colour means
    one weight in both. `in_view`: the tokens the model reads; those past it are drawn struck
    through, not as neutral words. Past MAX_TOKENS one span says how many more there are."""
    ws = _weights(list(weights)[:len(tokens)])
    top = top or max((abs(w) for w in ws), default=0.0) or 1.0
    view = in_view if isinstance(in_view, int) and not isinstance(in_view, bool) else len(tokens)
    spans = []
    for i, (tok, w) in enumerate(zip(tokens[:MAX_TOKENS], ws)):
        if i >= view:
            spans.append({"text": _token_text(tok), "style": "opacity:.5;text-decoration:line-through",
                          "w": "not read by the model (past its window)"})
            continue
        a = abs(w) / top
        style = "" if a < 0.05 else (
            f"background:rgba({'220,38,38' if w > 0 else '37,99,235'},{0.1 + 0.55 * a:.2f})")
        spans.append({"text": _token_text(tok), "style": style, "w": f"{w:+.3g}"})
    if len(tokens) > MAX_TOKENS:
        left = sum(1 for t in tokens[MAX_TOKENS:] if str(t).strip())
        spans.append({"text": f" [… {left} more words, in findings.json]", "style": "opacity:.6", "w": ""})
    return spans


def _email(item: dict[str, Any]) -> dict[str, Any]:
    """One example email: short scalar fields as a header line, the text (or token highlights) below."""
    label = item.get("label")
    head = [(str(k), {1: "phishing", 0: "legitimate"}.get(v, fmt(v)) if k == "label" else fmt(v))
            for k, v in item.items()
            if k not in ("text", "tokens", "weights", "in_view") and _is_scalar(v) and not _long(v)]
    node: dict[str, Any] = {"t": "email", "head": head[:8], "phish": label == 1}
    if isinstance(item.get("tokens"), list) and isinstance(item.get("weights"), list):
        node["spans"] = token_spans(item["tokens"], item["weights"], in_view=item.get("in_view"))
    else:
        node["body"] = _capped(str(item.get("text", "")))
    return node


def evidence_node(v: Any, depth: int = 0, top: float | None = None) -> dict[str, Any]:
    """Turn any JSON-like value into a small tree the template knows how to draw. `top`: the
    colour scale of an email drawn beside others (see token_spans)."""
    if _is_scalar(v):
        return _capped(v) if _long(v) else {"t": "scalar", "text": fmt(v)}
    if depth >= MAX_DEPTH:
        return _capped(json.dumps(_rounded(v), default=str, ensure_ascii=False)[:MAX_TEXT])
    if isinstance(v, dict):
        if _is_tokens(v):
            # the email is drawn by its tokens; its text again and the run's bookkeeping stay in findings.json
            rest = {k: x for k, x in v.items() if k not in ("tokens", "weights", "params", "seconds", "evals", "in_view")
                    and not (k == "text" and x == "".join(map(str, v["tokens"])))}
            return {"t": "tokens", "spans": token_spans(v["tokens"], v["weights"], top, v.get("in_view")),
                    "rest": evidence_node(rest, depth + 1) if rest else None}
        items = list(v.items())[:MAX_KEYS]
        # emails side by side (a minimal pair, an in-domain and an out-of-domain example), on one scale
        shown = [(k, x) for k, x in items if _is_tokens(x)]
        side, shared = [], None
        if len(shown) > 1:
            shared = max((abs(w) for _, x in shown for w in _weights(x["weights"])), default=0.0) or None
            side = [(str(k), evidence_node(x, depth + 1, shared)) for k, x in shown]
            items = [(k, x) for k, x in items if not _is_tokens(x)]
        return {"t": "dict", "kids": [(str(k), evidence_node(x, depth + 1)) for k, x in items], "side": side,
                "more": max(len(v) - MAX_KEYS, 0)}
    if isinstance(v, list | tuple | set):
        v = list(v)
        more = max(len(v) - MAX_ITEMS, 0)
        head = v[:MAX_ITEMS]
        if not head:
            return {"t": "scalar", "text": "(none)"}
        if all(isinstance(x, dict) and ("text" in x or "tokens" in x) for x in head):
            return {"t": "emails", "kids": [_email(x) for x in head], "more": more}
        if all(isinstance(x, dict) and all(_cell_like(y) for y in x.values()) for x in head):
            cols = list(dict.fromkeys(k for x in head for k in x))[:MAX_COLUMNS]
            return {"t": "records", "columns": [str(c) for c in cols],
                    "rows": [[_cell(x.get(c)) for c in cols] for x in head], "more": more}
        if all(_is_scalar(x) and not _long(x) for x in head):
            return {"t": "inline", "kids": [fmt(x) for x in head], "more": more}
        return {"t": "list", "kids": [evidence_node(x, depth + 1) for x in head], "more": more}
    return {"t": "scalar", "text": str(v)}


# --- normalising inputs ------------------------------------------------------------------

def _as_dict(x: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return dataclasses.asdict(x)
    return dict(x)


def _ranked_findings(findings: list) -> list[dict[str, Any]]:
    objs = []
    for f in findings:
        d = _as_dict(f)
        if d.get("severity") not in SEVERITY_ORDER:
            d["severity"] = "info"  # an unknown severity must not stop the report
        objs.append(Finding.from_dict(d))
    return [f.to_dict() for f in rank(objs)]


LABEL_AUDIT_NOTE = "flagged by the label-noise audit: its label may be wrong (see that finding)"


def _contested(ranked: list[dict[str, Any]]) -> set[str]:
    """Row ids whose label the label-noise audit contradicts: an email shown elsewhere as a 'missed
    phishing' example may be a legitimate one labelled phishing (a user's review)."""
    return {str(i) for f in ranked if f.get("kind") == "label_noise" for i in f.get("example_ids") or []}


def _mark_contested(v: Any, ids: set[str]) -> Any:
    """A copy of an evidence value in which every email (a dict with an id and its text or tokens) whose
    label the audit contradicts says so."""
    if not ids:
        return v
    if isinstance(v, dict):
        out = {k: _mark_contested(x, ids) for k, x in v.items()}
        if str(v.get("id")) in ids and ("text" in v or "tokens" in v):
            out["label audit"] = LABEL_AUDIT_NOTE
        return out
    if isinstance(v, list):
        return [_mark_contested(x, ids) for x in v]
    return v


def _repeat_key(d: dict[str, Any]) -> tuple | None:
    """Findings that say the same of different cells share this key: one kind and severity, one
    feature, the same models and domains (a footer that every cell trained on its domain keys on).
    None for a finding that names no feature."""
    feature = _evidence_of(d).get("feature")
    if not isinstance(feature, str) or not feature:
        return None
    return (d.get("kind"), d.get("severity"), feature, tuple(d.get("models") or ()), tuple(d.get("domains") or ()))


def _layout(ranked: list[dict[str, Any]]) -> tuple[list[int], list[int], dict[int, list[int]], dict[int, int]]:
    """Which findings the report shows in full and which it lists, by index into `ranked`.

    A finding that repeats a better-ranked one for another cell (_repeat_key) is listed, not shown
    in full, and the first of them names the others: with 12 domains, 13 cells trained on a footer's
    domain gave 13 findings a statement, 39 of 94 findings, and took 26 of the 60 full places from
    findings that say something else. findings.json keeps every one of them."""
    head_of: dict[tuple, int] = {}
    repeats: dict[int, list[int]] = {}
    same_as: dict[int, int] = {}
    for i, d in enumerate(ranked):
        key = _repeat_key(d)
        if key is None:
            continue
        if key in head_of:
            repeats.setdefault(head_of[key], []).append(i)
            same_as[i] = head_of[key]
        else:
            head_of[key] = i
    full = [i for i in range(len(ranked)) if i not in same_as][:MAX_FINDINGS]
    shown = set(full)
    listed = [i for i in range(len(ranked)) if i not in shown][:MAX_LISTED]
    return full, listed, repeats, same_as


def _evidence_of(d: dict[str, Any]) -> dict[str, Any]:
    return d["evidence"] if isinstance(d.get("evidence"), dict) else {}


def _cell_of(d: dict[str, Any]) -> str:
    return str(_evidence_of(d).get("cell") or d.get("title", ""))


def _finding_view(d: dict[str, Any], i: int, repeats: list[tuple[int, dict[str, Any]]] = ()) -> dict[str, Any]:
    ids = [str(x) for x in d.get("example_ids") or []]
    return {
        "severity": d["severity"], "kind": str(d.get("kind", "")), "title": str(d.get("title", "")),
        "summary": str(d.get("summary", "")), "detector": str(d.get("detector") or ""),
        "models": [str(m) for m in d.get("models") or []], "domains": [str(m) for m in d.get("domains") or []],
        "ids": ids[:MAX_IDS], "more_ids": max(len(ids) - MAX_IDS, 0),
        "evidence": evidence_node(d.get("evidence") or {}) if d.get("evidence") else None,
        "open": i < OPEN_FINDINGS or d["severity"] == "high", "anchor": f"finding-{i + 1}", "rank": i + 1,
        "repeats": [{"cell": _cell_of(r), "anchor": f"finding-{j + 1}", "rank": j + 1} for j, r in repeats],
    }


def _listed_view(d: dict[str, Any], i: int, same_as: int | None = None) -> dict[str, Any]:
    """A finding past the first MAX_FINDINGS, or one repeating a better-ranked finding for another
    cell (`same_as`, that finding's index): its title and summary (the evidence is in findings.json)."""
    return {"severity": d["severity"], "kind": str(d.get("kind", "")), "title": str(d.get("title", "")),
            "summary": str(d.get("summary", "")), "anchor": f"finding-{i + 1}", "rank": i + 1,
            "same_as": None if same_as is None else {"anchor": f"finding-{same_as + 1}", "rank": same_as + 1}}


def _metric_cell(e: dict[str, Any], m: str) -> dict[str, Any]:
    ci = e.get(f"{m}_ci")
    return {"v": svg._fmt(e.get(m), 3), "ci": f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "",
            "flag": m in (e.get("undefined") or {})}


def _flags_everything(e: dict[str, Any]) -> list[tuple[str, str]]:
    """A note for a cell that calls (nearly) every email of a domain phishing, read off recall and
    precision (flagged = recall x phishing / precision), on the bar the generalization findings use."""
    from gapscope.eval.matrix import FLAGS_ALL, RANKS_WELL, flag_all_f1, ranking_text

    n, k, r, p = e.get("n"), e.get("n_positive"), e.get("recall"), e.get("precision")
    if not n or not k or k >= n or not r or not p or "precision" in (e.get("undefined") or {}):
        return []
    flagged = min(1.0, r * k / p / n)
    if flagged >= FLAGS_ALL:
        auroc = e.get("auroc")
        ranks = (f"; its ranking holds (AUROC {auroc:.2f}): the threshold does not transfer"
                 if auroc is not None and auroc >= RANKS_WELL else
                 f"; {ranking_text(e)}" if auroc is not None and e.get("auroc_ci") else " (see AUROC)")
        return [("f1", f"flags {flagged:.0%} of the emails as phishing: flagging all of them scores "
                       f"{flag_all_f1(k / n):.3f}, so this F1 is not skill{ranks}")]
    return []


def _matrix_view(entries: list[dict[str, Any]], summary: list[dict[str, Any]]) -> dict[str, Any]:
    from gapscope.eval.matrix import LOSSES_NOTE, losses_text, share_note, worst_text

    models = list(dict.fromkeys(e["model"] for e in entries))
    rows, prev = [], None
    for e in entries[:MAX_TABLE_ROWS]:
        cell = (e["model"], e["paradigm"])
        rows.append({"model": e["model"], "paradigm": e["paradigm"], "first": cell != prev,
                     "domain": e["test_domain"], "in_domain": bool(e.get("in_domain")),
                     "n": e.get("n"), "n_pos": e.get("n_positive"),
                     "metrics": [_metric_cell(e, m) for m in ("f1", "precision", "recall", "auroc", "accuracy", "ece")],
                     "notes": sorted((e.get("undefined") or {}).items()) + _flags_everything(e)})
        prev = cell
    # One threshold per cell (chosen on its training data), so it belongs in the per-cell table.
    thresholds = {(e["model"], e["paradigm"]): e.get("threshold") for e in entries}
    cells = [{"model": s["model"], "paradigm": s["paradigm"], "train": ", ".join(s.get("train_domains") or []),
              "threshold": svg._fmt(thresholds.get((s["model"], s["paradigm"])), 3),
              "in": svg._fmt(s.get("in_domain_f1"), 3), "out": svg._fmt(s.get("out_of_domain_f1"), 3),
              "gap": "n/a" if s.get("gap") is None else f"{s['gap']:+.3f}", "big": (s.get("gap") or 0) >= 0.1,
              "worst": s.get("worst_domain"), "worst_f1": worst_text(s), "losses": losses_text(s),
              "excluded": sorted((s.get("excluded") or {}).items())} for s in summary]
    return {"heatmaps": [{"model": m, "svg": svg.heatmap(entries, m)} for m in models],
            "legend": svg.colour_legend() if models else None,
            "gap_svg": svg.gap_bars(summary) if summary else None,
            "cells": cells, "any_excluded": any(c["excluded"] for c in cells), "rows": rows,
            "share_note": share_note(entries), "losses_note": LOSSES_NOTE, "more_rows": max(len(entries) - MAX_TABLE_ROWS, 0)}


_STYLE_KEYS = ("style_profile", "style_profiles", "styles", "style")
_SOURCE_KNOWN = {"path", "domain", "format", "rows_in", "rows_kept", "rows_rejected",
                 "rejected_by_reason", "label_counts", *_STYLE_KEYS}


def _style_table(audit: dict[str, Any]) -> dict[str, Any] | None:
    """Per-domain style statistics, wherever the audit keeps them: per domain, top level or per source."""
    profile: dict[str, dict] = {}
    for dom, d in (audit.get("domains") or {}).items() if isinstance(audit.get("domains"), dict) else ():
        for key in _STYLE_KEYS:
            if isinstance(d, dict) and isinstance(d.get(key), dict):
                profile.setdefault(str(dom), d[key])
    for key in _STYLE_KEYS:
        if isinstance(audit.get(key), dict):
            for dom, v in audit[key].items():
                if isinstance(v, dict):
                    profile.setdefault(str(dom), v)
    for src in audit.get("sources") or []:
        for key in _STYLE_KEYS:
            if isinstance(src.get(key), dict):
                profile.setdefault(str(src.get("domain", src.get("path"))), src[key])
    return _table(profile)


def _table(by_name: dict[str, Any]) -> dict[str, Any] | None:
    """{row name: {column: scalar}} -> columns and formatted rows (non-scalar values are left out)."""
    by_name = {k: v for k, v in by_name.items() if isinstance(v, dict) and v}
    if not by_name:
        return None
    cols = list(dict.fromkeys(k for p in by_name.values() for k, v in p.items() if _is_scalar(v)))[:MAX_COLUMNS]
    # Headers are snake_case statistic names; spaces let them wrap instead of widening the table.
    return {"columns": [str(c).replace("_", " ") for c in cols],
            "rows": [(d, [fmt(p.get(c)) for c in cols]) for d, p in list(by_name.items())[:MAX_TABLE_ROWS]]}


def _domain_table(audit: dict[str, Any]) -> dict[str, Any] | None:
    doms = audit.get("domains")
    if not isinstance(doms, dict):
        return None
    flat = {}
    for name, d in doms.items():
        if isinstance(d, dict):
            row = {k: v for k, v in d.items() if _is_scalar(v)}
            row.update({str(k): v for k, v in (d.get("label_counts") or {}).items()})
            flat[str(name)] = row
    return _table(flat)


def _audit_view(audit: dict[str, Any]) -> dict[str, Any]:
    sources = []
    for s in audit.get("sources") or []:
        # an empty value (the demo's `rejected_at: {}` on every source) drew an empty row per source
        other = {k: v for k, v in s.items() if k not in _SOURCE_KNOWN and v not in (None, "", {}, [])}
        sources.append({
            "domain": fmt(s.get("domain")), "path": fmt(s.get("path")), "format": fmt(s.get("format")),
            "rows_in": fmt(s.get("rows_in")), "kept": fmt(s.get("rows_kept")), "rejected": fmt(s.get("rows_rejected")),
            "reasons": [(str(k), fmt(v)) for k, v in (s.get("rejected_by_reason") or {}).items()][:MAX_ITEMS],
            "labels": [(str(k), fmt(v)) for k, v in (s.get("label_counts") or {}).items()][:MAX_ITEMS],
            "other": evidence_node(other) if other else None,
        })
    domains = _domain_table(audit)
    shown = {"sources", *_STYLE_KEYS} | ({"domains"} if domains else set())
    totals = {k: v for k, v in audit.items() if k not in shown and _is_scalar(v)}
    blocks = [(k.replace("_", " ").capitalize(), evidence_node(v)) for k, v in audit.items()
              if k not in shown and k not in totals]
    return {"sources": sources, "domains": domains, "style": _style_table(audit),
            "totals": evidence_node(totals) if totals else None, "blocks": blocks, "empty": not audit}


def _extra_view(sections) -> list[dict[str, Any]]:
    out = []
    for i, s in enumerate(sections):
        slug = re.sub(r"[^a-z0-9-]+", "-", str(s.get("id") or f"section-{i + 1}").lower()).strip("-")
        table = s.get("table")
        out.append({"id": f"x-{slug or i + 1}", "title": str(s.get("title", "")),
                    "caption": str(s["caption"]) if s.get("caption") else None,
                    # Trusted by contract: only gapscope code builds `html` (see module docstring).
                    "html": Markup(s["html"]) if s.get("html") else None,
                    # any JSON value, drawn (and escaped) like a finding's evidence
                    "evidence": evidence_node(s["evidence"]) if s.get("evidence") else None,
                    "table": {"columns": [str(c) for c in table.get("columns", [])],
                              "rows": [[fmt(c) for c in r] for r in table.get("rows", [])[:MAX_TABLE_ROWS]]}
                    if table else None})
    return out


# --- entry point -------------------------------------------------------------------------

def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(str(_TEMPLATES)), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return env


def render_report(run_dir: Path, *, title: str, spec_text: str, audit: dict, entries: list,
                  summary: list, findings: list, extra_sections=(), problems=()) -> Path:
    """Write run_dir/report.html and return its path. Entries/findings may be dicts or dataclasses.
    `problems`: one line per cell or detector that failed, shown above the findings."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    entries = [_as_dict(e) for e in entries]
    summary = [_as_dict(s) for s in summary]
    ranked = _ranked_findings(list(findings))
    contested = _contested(ranked)
    ranked = [f if f.get("kind") == "label_noise" else {**f, "evidence": _mark_contested(f.get("evidence"), contested)}
              for f in ranked]
    extra_sections = [{**x, "evidence": _mark_contested(x["evidence"], contested)} if x.get("evidence") else x
                      for x in extra_sections]
    full, listed, repeats, same_as = _layout(ranked)
    audit = dict(audit or {})
    domains = list(dict.fromkeys([e["test_domain"] for e in entries]
                                 + [str(s.get("domain")) for s in audit.get("sources") or [] if s.get("domain")]))
    counts = {sev: sum(f["severity"] == sev for f in ranked) for sev in SEVERITY_ORDER}
    gaps = [s for s in summary if s.get("gap") is not None]
    largest = max(gaps, key=lambda s: s["gap"]) if gaps else None
    html = _environment().get_template("report.html.j2").render(
        title=title, version=__version__,
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        models=list(dict.fromkeys(e["model"] for e in entries)), domains=domains,
        counts=counts, n_cells=len(summary), largest=largest,
        findings=[_finding_view(ranked[i], i, [(j, ranked[j]) for j in repeats.get(i, [])]) for i in full],
        rest=[_listed_view(ranked[i], i, same_as.get(i)) for i in listed],
        more_findings=len(ranked) - len(full) - len(listed), n_findings=len(ranked),
        matrix=_matrix_view(entries, summary), audit=_audit_view(audit),
        extras=_extra_view(extra_sections), spec_text=spec_text or "", problems=list(problems),
    )
    # The page's own markup holds no control, bidi or zero-width characters, so every one left is
    # from user data: shown by code point, none can reverse the text after it or hide in a name.
    from gapscope.study.artifacts import write_text  # whole or not at all: a kill mid-write cut it short

    out = run_dir / "report.html"
    write_text(out, visible(html))
    return out
