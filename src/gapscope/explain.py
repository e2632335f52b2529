"""`gapscope explain`: one email's tokens colour-coded by their attribution, in the terminal.

Red pushes toward phishing, blue toward legitimate; the stronger the weight (relative to
the email's largest), the deeper the colour. Below the email: the margin, the decision at
the cell's threshold, and the top tokens each way.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from gapscope.attribution.base import Attribution
from gapscope.errors import GapscopeError
from gapscope.progress import plain
from gapscope.visible import visible


def _bg(w: float, scale: float) -> str | None:
    level = min(1.0, abs(w) / scale) if scale > 0 else 0.0
    if level < 0.08:
        return None
    a = 0.25 + 0.75 * level
    if w > 0:
        rgb = (int(255 * a), int(40 * (1 - a)), int(40 * (1 - a)))
    else:
        rgb = (int(40 * (1 - a)), int(90 * a), int(255 * a))
    return f"bold white on rgb({rgb[0]},{rgb[1]},{rgb[2]})"


def _shown(piece: str, start: int, lone_cr: set[int]) -> str:
    """`visible(piece)`, and a carriage return not followed by a newline (`lone_cr`: offsets in the
    email; `start`: the piece's) as ⟨U+000D⟩: rich drops it, so "now\rSAFE" read "nowSAFE"."""
    if "\r" in piece:
        piece = "".join("⟨U+000D⟩" if c == "\r" and start + i in lone_cr else c for i, c in enumerate(piece))
    return visible(piece)


def highlighted(att: Attribution) -> Text:
    """The email with every word on a background coloured by its weight (whitespace untouched;
    control and bidi characters, and a lone carriage return, shown by code point, so the email
    cannot drive the terminal nor hide a character)."""
    scale = float(max(abs(att.weights).max(), 1e-12)) if len(att.weights) else 1.0
    text = "".join(att.tokens)
    lone_cr = {m.start() for m in re.finditer("\r(?!\n)", text)}
    out = Text()
    at = 0
    view = len(att.tokens) if att.in_view is None else att.in_view
    for i, (tok, w) in enumerate(zip(att.tokens, att.weights)):
        core = tok.rstrip()
        tail = tok[len(core):]
        lead = core[: len(core) - len(core.lstrip())]
        core = core.lstrip()
        out.append(_shown(lead, at, lone_cr))
        # past the model's window: never read, so dim rather than the neutral look of a weight of 0
        out.append(_shown(core, at + len(lead), lone_cr), style=_bg(float(w), scale) if i < view else "dim strike")
        out.append(_shown(tail, at + len(lead) + len(core), lone_cr))
        at += len(tok)
    return out


def top_table(att: Attribution, k: int = 10) -> Table:
    t = Table(title="top tokens", show_lines=False, expand=False)
    t.add_column("toward phishing", style="red")
    t.add_column("weight", justify="right")
    t.add_column("toward legitimate", style="blue")
    t.add_column("weight", justify="right")
    ph, lg = att.top(k, +1), att.top(k, -1)
    for i in range(max(len(ph), len(lg))):
        a = ph[i] if i < len(ph) else None
        b = lg[i] if i < len(lg) else None
        # Text, not str: a token such as "http://x/[link=http://y]z" must not be read as rich markup
        t.add_row(plain(a[1]) if a else "", f"{a[2]:+.3f}" if a else "",
                  plain(b[1]) if b else "", f"{b[2]:+.3f}" if b else "")
    return t


def render(att: Attribution, *, title: str = "", threshold: float = 0.0, top: int = 10,
           console: Console | None = None, explained: str | None = None) -> None:
    console = console or Console()
    decision = "phishing" if att.margin > threshold else "legitimate"
    colour = "red" if decision == "phishing" else "blue"
    # what the words are weighed against: a phishing margin may come from the empty email itself,
    # with every word pulling toward legitimate
    base = (() if att.base_margin is None else
            ((f"  {'prompt share' if att.method == 'relevance' else 'empty email'} ", "dim"), f"{att.base_margin:+.3f}"))
    head = Text.assemble(("margin ", "dim"), (f"{att.margin:+.3f}", "bold"), *base, ("  threshold ", "dim"),
                         (f"{threshold:+.3f}", ""), ("  -> ", "dim"), (decision, f"bold {colour}"),
                         ("   method ", "dim"), (att.method, ""), (f"  ({att.evals} evaluations, {att.seconds:.2f}s)",
                                                               "dim"))
    legend = Text.assemble(("legend: ", "dim"), (" toward phishing ", _bg(1.0, 1.0) or ""), " ",
                           (" toward legitimate ", _bg(-1.0, 1.0) or ""))
    # what the words are of, when not the text as given (a mail file parsed as training parsed mail)
    about = [Text.assemble(("explained: ", "dim"), (visible(explained), ""))] if explained else []
    if att.in_view is not None and att.in_view < len(att.tokens):
        words = sum(1 for t in att.tokens if t.strip())
        read = sum(1 for t in att.tokens[:att.in_view] if t.strip())
        about.append(Text.assemble(("window: ", "dim"), (f"the model reads the first {read} of {words} words; the "
                                                           "rest (struck through) it never sees and carry no weight", "")))
    console.print(Panel(Group(head, *about, legend, Text(""), highlighted(att)), title=plain(title or "explain"),
                        expand=True))
    console.print(top_table(att, top))


# -- the email from --file -------------------------------------------------------------------

def read_email_file(file: Path) -> tuple[str, str | None]:
    """The text to explain from `--file` ('-': stdin), and what it is when not the file as written.

    A mail file (named .eml, or starting like an email as the folder reader tells one) is read
    through the readers' mail parser into "Subject: ...", a blank line and the text body: what the
    model saw of every email in training, not the raw MIME source (headers, boundaries,
    quoted-printable breaks, HTML). Any other file is explained as it is."""
    from gapscope.data.mail_sources import holds_messages, message_record
    from gapscope.data.readers import looks_like_mail
    from gapscope.data.rows import compose_text

    name = "stdin" if str(file) == "-" else str(file)
    try:
        raw = sys.stdin.buffer.read() if str(file) == "-" else Path(file).read_bytes()
    except OSError as e:
        raise GapscopeError(f"{name}: cannot read it ({e.strerror or type(e).__name__})") from None
    if b"\x00" in raw[:8192]:  # an image, an archive, an executable: not an email
        raise GapscopeError(f"{name}: a binary file, not an email")
    if not (name.lower().endswith(".eml") or looks_like_mail(raw)):
        return raw.decode("utf-8", errors="replace"), None
    if holds_messages(raw):
        raise GapscopeError(f"{name}: an mbox of several messages; explain takes one email")
    rec = message_record(raw, Path(name).name)
    if rec.values is None:
        raise GapscopeError(f"{name}: {rec.error}")
    text = compose_text(rec.values.get("subject"), rec.values.get("body"))
    what = f"{Path(name).name} read as email (subject + text body, as the readers parse mail)"
    return text, what


# -- picking the cell ---------------------------------------------------------------------

def resolve_cell(study, model: str, cell: str | None):
    cells = [c for c in study.cells if c.model == model]
    if not cells:
        known = sorted({c.model for c in study.cells})
        from gapscope.suggest import did_you_mean

        raise GapscopeError(f"no cells for model {model!r}{did_you_mean(model, known)} in {study.run_dir} "
                            f"(models: {', '.join(known) or 'none'})")
    if cell:
        want = cell.replace("-", ":", 1) if ":" not in cell else cell
        hits = [c for c in cells if c.paradigm in (cell, want) or c.name == cell
                or c.paradigm.split(":", 1)[-1] == cell]
        if len(hits) > 1:  # a domain names its specialist and its lodo cell: the choice is between those
            raise GapscopeError(f"--cell {cell!r} matches {len(hits)} cells of {model!r}: "
                                + ", ".join(c.paradigm for c in hits) + "; give one of them")
        if not hits:
            raise GapscopeError(f"--cell {cell!r} matches no cell of {model!r}; choose one of: "
                                + ", ".join(c.paradigm for c in cells))
        return hits[0]
    if len(cells) == 1:
        return cells[0]
    for c in cells:
        if c.paradigm == "generalist":
            return c
    raise GapscopeError(f"model {model!r} has {len(cells)} cells; pick one with --cell: "
                        + ", ".join(c.paradigm for c in cells))


def pick(run: Path, model: str, cell: str | None = None) -> tuple[Any, Any]:
    """The run and the cell to explain with; a bad run, model or cell fails here, before any model loads."""
    from gapscope.study.context import Study

    study = Study(run)
    return study, resolve_cell(study, model, cell)


def explain(study, info, text: str, *, method: str = "occlusion",
            max_evals: int | None = None) -> Attribution:
    """Attribution of `text` by one cell (`pick`) of a finished run (the default method settings per kind)."""
    from gapscope.attribution.base import default_occlusion_options, get_method

    m = study.load_model(info)
    try:
        if method == "occlusion":
            opts = default_occlusion_options(info.kind)
            if max_evals:
                opts["max_evals"] = max_evals
            att = get_method("occlusion", **opts).attribute(m, text)
        elif method == "relevance":
            att = get_method("relevance").attribute(m, text)
        else:
            att = get_method(method, **({"max_evals": max_evals} if max_evals else {})).attribute(m, text)
    finally:
        m.close()
    return att
