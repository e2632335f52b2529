"""The study spec (TOML) loaded into typed dataclasses.

Defaults are chosen so that a two-line spec (one [[datasets]] table with a path)
runs: every domain gets a specialist cell, a generalist cell is added when there
are several domains, and the model is the TF-IDF baseline.
"""

from __future__ import annotations

import codecs
import difflib
import re
import tomllib
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gapscope.data.source_spec import SourceSpec, archive_stem
from gapscope.errors import SpecError
from gapscope.models.base import ModelSpec
from gapscope.option_rules import MAX_SEED
from gapscope.suggest import did_you_mean, with_hints

_DATASET_KEYS = {"name", "path", "format", "text", "subject", "body", "label", "label_value", "label_map",
                 "label_index", "id", "delimiter", "encoding"}
_MODEL_KEYS = {"name", "kind", "source"}
# the [[datasets]] keys a SourceSpec takes as they are (and the resolved spec writes back)
_SOURCE_FIELDS = ("format", "text", "subject", "body", "label", "label_value", "label_index", "id", "delimiter",
                  "encoding")
_KINDS = ("causal-lm", "encoder", "tfidf-lr")
_KINDS_NEEDING_SOURCE = {"causal-lm", "encoder"}


@dataclass
class StudyOptions:
    name: str = "study"
    seed: int = 0
    test_fraction: float = 0.3
    bootstrap: int = 1000
    max_train: int | None = None  # cap on training rows per cell (all models); None = no cap
    max_test_per_domain: int | None = None  # cap on held-out rows scored per domain


@dataclass
class ParadigmOptions:
    specialist: list[str] = field(default_factory=list)
    generalist: list[str] = field(default_factory=list)
    generalist_size: str | int = "match"  # "match" | "all" | an integer row count
    lodo: bool = False


@dataclass
class StudySpec:
    path: Path
    study: StudyOptions
    datasets: list[SourceSpec]
    paradigms: ParadigmOptions
    models: list[ModelSpec]
    detectors: dict[str, Any] = field(default_factory=dict)

    @property
    def domains(self) -> list[str]:
        """One per [[datasets]] table; a table with several paths gives several sources of one domain."""
        return list(dict.fromkeys(d.domain for d in self.datasets))

    def to_toml(self) -> str:
        """The resolved spec, with every default filled in (but the column names not given, which
        would then have to exist), as written into RUN/study.toml."""
        lines = [RESOLVED_HEADER, "[study]"]
        for k, v in asdict(self.study).items():
            if v is not None:
                lines.append(f"{k} = {toml_value(v)}")
        for domain in self.domains:
            sources = [d for d in self.datasets if d.domain == domain]
            d = sources[0]  # the sources of one table differ only in their path
            paths = [str(x.path) for x in sources]
            lines += ["", "[[datasets]]", f"name = {toml_value(domain)}",
                      f"path = {toml_value(paths if len(paths) > 1 else paths[0])}"]
            for k in _SOURCE_FIELDS:
                v = getattr(d, k)
                # a column key the user did not name stays out: written, it would have to exist
                if v is not None and (k not in ("text", "subject", "body", "id") or k in d.named):
                    lines.append(f"{k} = {toml_value(v)}")
            if d.label_map:
                lines.append(f"label_map = {toml_value(d.label_map)}")
        p = self.paradigms
        lines += ["", "[paradigms]", f"specialist = {toml_value(p.specialist)}",
                  f"generalist = {toml_value(p.generalist)}",
                  f"generalist_size = {toml_value(p.generalist_size)}", f"lodo = {toml_value(p.lodo)}"]
        for m in self.models:
            lines += ["", "[[models]]", f"name = {toml_value(m.name)}", f"kind = {toml_value(m.kind)}"]
            if m.source:
                lines.append(f"source = {toml_value(m.source)}")
            for k, v in sorted(m.options.items()):
                lines.append(f"{k} = {toml_value(v)}")
        if self.detectors:
            lines += ["", "[detectors]"]
            for k, v in sorted(self.detectors.items()):
                lines.append(f"{k} = {toml_value(v)}")
        return "\n".join(lines) + "\n"


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        # TOML basic strings may hold no control character but tab: the rest become \\u escapes
        body = v.replace("\\", "\\\\").replace('"', '\\"')
        return '"' + _TOML_CONTROL.sub(lambda m: f"\\u{ord(m.group()):04X}", body) + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


_TOML_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f]")
_BARE_KEY = re.compile("[A-Za-z0-9_-]+")  # ASCII only: str.isalnum() also passes "phishé"


def _toml_key(k: str) -> str:
    return k if _BARE_KEY.fullmatch(k) else toml_value(k)


def load_spec(path: Path | str) -> StudySpec:
    path = Path(path)
    if not path.exists():
        raise SpecError(path, "file not found")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8").removeprefix("\ufeff"))  # Notepad saves a BOM
    except UnicodeDecodeError:
        raise SpecError(path, "not valid UTF-8") from None
    except tomllib.TOMLDecodeError as e:
        raise SpecError(path, f"invalid TOML: {e}") from None
    return parse_spec(raw, path)


def _table(raw: dict[str, Any], key: str, path: Path, where: str) -> dict[str, Any]:
    v = raw.get(key, {})
    if not isinstance(v, dict):
        raise SpecError(path, f"{where} must be a table, got {_shown(v)}")
    return dict(v)


def _tables(v: Any, path: Path, where: str) -> list[dict[str, Any]]:
    if not isinstance(v, list) or not all(isinstance(x, dict) for x in v):
        raise SpecError(path, f"{where} must be an array of tables (one {where} header per entry), got {_shown(v)}")
    return v


def _shown(v: Any) -> str:
    return f"{v!r} ({type(v).__name__})"


def _whole(v: Any, path: Path, where: str, least: int) -> int:
    """A whole number >= least; TOML's true/false and "3" are refused rather than read as numbers."""
    if isinstance(v, bool) or not isinstance(v, int) or v < least:
        raise SpecError(path, f"{where} must be a whole number >= {least}, got {_shown(v)}")
    return v


def _name(d: dict[str, Any], path: Path, where: str) -> None:
    """A name is text; a number (name = 2021) is read as its text."""
    if "name" in d and (isinstance(d["name"], bool) or not isinstance(d["name"], (str, int))):
        raise SpecError(path, f"{where} name must be a string, got {_shown(d['name'])}")
    if "name" in d and not str(d["name"]).strip():
        raise SpecError(path, f"{where} name is empty (leave the key out for the default name)")


# The first line of RUN/study.toml: tells a run's resolved spec from a spec of the user's own
# that happens to sit in the folder given as --out (which a resume must never overwrite).
RESOLVED_HEADER = "# written by gapscope: the resolved spec of this run, every default filled in"
MIN_BOOTSTRAP = 40  # resamples: one in each 2.5% tail of a 95% percentile interval
NAME_BYTES = 100  # <model>__specialist-<domain> must stay under a file system's 255-byte names


def _path_part(name: str, path: Path, where: str) -> None:
    """Dataset and model names become parts of cell directory names (RUN/cells/<model>__<paradigm>),
    so one that is not a single plain path component could write outside the run, and one too long
    cannot be created; invisible characters would make two names look alike in every table."""
    from gapscope.visible import invisible_in_name

    if name in ("", ".", "..") or "/" in name or "\\" in name:
        raise SpecError(path, f"{where} {name!r} cannot name a directory: no '/' or '\\', and not '.' or '..'")
    hidden = invisible_in_name(name)
    if hidden:
        raise SpecError(path, f"{where} {name!r} holds {hidden}, a control, bidi or invisible character: "
                              "it would look like another name")
    if len(name.encode("utf-8")) > NAME_BYTES:
        raise SpecError(path, f"{where} {name[:40]!r}... is {len(name.encode('utf-8'))} bytes long in UTF-8; "
                              f"at most {NAME_BYTES} (it names directories and files)")


def _distinct_on_disk(names: list[str], path: Path, what: str) -> None:
    """Two names that become one directory (':' is written '-'; case-insensitive or normalising
    file systems fold the rest) would overwrite each other's cells."""
    first: dict[str, str] = {}
    for n in names:
        key = unicodedata.normalize("NFKC", n.replace(":", "-")).casefold()
        if key in first:
            raise SpecError(path, f"{what} names {first[key]!r} and {n!r} would share one directory in "
                                  "RUN/cells (':' is written '-', and case and Unicode forms fold on some "
                                  "file systems): rename one")
        first[key] = n


def _paths(v: Any, path: Path, where: str) -> list[str]:
    """`path` is one path, or a list of them that form one domain (SpamAssassin's spam and ham
    tarballs, several mbox files)."""
    items = v if isinstance(v, list) else [v]
    if not items or not all(isinstance(x, str) and x.strip() for x in items):
        raise SpecError(path, f"{where} path must be a path or a list of paths, got {_shown(v)}")
    return items


def _text(d: dict[str, Any], key: str, path: Path, where: str) -> None:
    if key in d and not isinstance(d[key], str):
        raise SpecError(path, f"{where} {key} must be a string, got {_shown(d[key])}")


def _check_study(s: StudyOptions, path: Path) -> None:
    s.name = str(s.name)  # checked by _name: text, or a number such as 2021
    _whole(s.seed, path, "[study] seed", 0)
    if s.seed > MAX_SEED:
        raise SpecError(path, f"[study] seed must be at most {MAX_SEED} (2**32 - 1), got {s.seed}")
    _whole(s.bootstrap, path, "[study] bootstrap", 0)  # 0: no confidence intervals
    if 0 < s.bootstrap < MIN_BOOTSTRAP:
        raise SpecError(path, f"[study] bootstrap = {s.bootstrap} resamples cannot give a 95% interval (its 2.5% "
                              f"tails need at least {MIN_BOOTSTRAP}); use 0 for no intervals, or {MIN_BOOTSTRAP} or more")
    for key in ("max_train", "max_test_per_domain"):
        if getattr(s, key) is not None:
            _whole(getattr(s, key), path, f"[study] {key}", 1)
    tf = s.test_fraction
    if isinstance(tf, bool) or not isinstance(tf, (int, float)) or not 0 < tf < 1:
        raise SpecError(path, f"[study] test_fraction must be a number between 0 and 1, got {_shown(tf)}")


_TOP_LEVEL = {"study": "[study]", "datasets": "[[datasets]]", "paradigms": "[paradigms]", "models": "[[models]]",
              "detectors": "[detectors]"}


def _unknown_keys(keys, known, where: str, path: Path) -> None:
    """A misspelt table or key is refused, naming the nearest known one: ignored, it would run the
    study on defaults (a [[model]] table left the user's LLM out of the study)."""
    unknown = sorted(set(keys) - set(known))
    if not unknown:
        return
    raise SpecError(path, f"{where}unknown key(s) {with_hints(unknown, known)}; known: {', '.join(sorted(known))}")


def parse_spec(raw: dict[str, Any], path: Path) -> StudySpec:
    base = path.parent
    for k in sorted(set(raw) - set(_TOP_LEVEL)):
        near = difflib.get_close_matches(k, list(_TOP_LEVEL), n=1, cutoff=0.6)
        raise SpecError(path, f"unknown top-level table or key {k!r}"
                        + (f" (did you mean {_TOP_LEVEL[near[0]]}?)" if near else "")
                        + f"; a spec has {', '.join(_TOP_LEVEL.values())}")
    study_raw = _table(raw, "study", path, "[study]")
    _unknown_keys(study_raw, StudyOptions.__dataclass_fields__, "[study]: ", path)
    _name(study_raw, path, "[study]")
    study = StudyOptions(**study_raw)
    _check_study(study, path)

    ds_raw = raw.get("datasets")
    if not ds_raw:
        raise SpecError(path, "needs at least one [[datasets]] table with a path")
    datasets: list[SourceSpec] = []
    names: list[str] = []  # one per table
    for i, d in enumerate(_tables(ds_raw, path, "[[datasets]]"), 1):
        if "path" not in d:
            raise SpecError(path, f"[[datasets]] #{i}: missing 'path'")
        _unknown_keys(d, _DATASET_KEYS, f"[[datasets]] #{i}: ", path)
        for key in ("format", "text", "subject", "body", "label", "label_index", "id", "delimiter", "encoding"):
            _text(d, key, path, f"[[datasets]] #{i}")
        if "delimiter" in d and len(d["delimiter"]) != 1:
            raise SpecError(path, f"[[datasets]] #{i} delimiter must be one character, got {d['delimiter']!r}")
        if "encoding" in d:
            try:
                if not getattr(codecs.lookup(d["encoding"]), "_is_text_encoding", True):
                    raise LookupError  # rot13, base64, zlib: codecs, but not bytes -> text
            except LookupError:
                raise SpecError(path, f"[[datasets]] #{i} encoding {d['encoding']!r} is not a known text "
                                      "encoding (utf-8, latin-1, cp1252, ...)") from None
        if "label_index" in d and d.get("label", "label") != "label":
            raise SpecError(path, f"[[datasets]] #{i} takes its labels from label_index; "
                                  f"label = {d['label']!r} would name another source of labels")
        paths = _paths(d["path"], path, f"[[datasets]] #{i}")
        _name(d, path, f"[[datasets]] #{i}")
        if len(paths) > 1 and "name" not in d:
            raise SpecError(path, f"[[datasets]] #{i} has several paths: give it a name (the domain they form)")
        if "label_value" in d and (isinstance(d["label_value"], bool) or not isinstance(d["label_value"], (str, int))):
            raise SpecError(path, f"[[datasets]] #{i} label_value must be a label such as \"phishing\" or 1, "
                                  f"got {_shown(d['label_value'])}")
        resolved = [Path(x) if Path(x).is_absolute() else (base / x).resolve() for x in paths]
        for j, x in enumerate(resolved):  # "a.csv" twice, or "a.csv" and "./a.csv": one file read twice
            if x in resolved[:j]:
                raise SpecError(path, f"[[datasets]] #{i} path lists {paths[j]!r} twice")
        p = resolved[0]
        name = d.get("name") or archive_stem(p.name) or (p.stem if p.suffix else p.name)
        kw = {k: d[k] for k in _SOURCE_FIELDS if k in d}
        if "label_map" in d:
            kw["label_map"] = _label_map(d["label_map"], path, f"[[datasets]] #{i}")
        names.append(str(name))
        # naming the default column ("text" = "text", as resolved specs written before did) is
        # the same as leaving the key out: it may be absent
        named = frozenset(k for k in ("text", "subject", "body", "id") if k in d and d[k] != k)
        datasets += [SourceSpec(path=x, domain=str(name), named=named, **kw) for x in resolved]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SpecError(path, f"dataset name(s) used twice: {', '.join(dupes)}")
    for i, n in enumerate(names, 1):
        _path_part(n, path, f"[[datasets]] #{i} name")
    _distinct_on_disk(names, path, "dataset")

    par_raw = _table(raw, "paradigms", path, "[paradigms]")
    _unknown_keys(par_raw, ParadigmOptions.__dataclass_fields__, "[paradigms]: ", path)
    par = ParadigmOptions(
        specialist=_domain_list(par_raw.get("specialist", True), names, path, "specialist"),
        generalist=_domain_list(par_raw.get("generalist", len(names) > 1), names, path, "generalist"),
        generalist_size=par_raw.get("generalist_size", "match"),
        lodo=par_raw.get("lodo", False),
    )
    if not isinstance(par.lodo, bool):
        raise SpecError(path, f"[paradigms] lodo must be true or false, got {_shown(par.lodo)}")
    size = par.generalist_size
    if (isinstance(size, str) and size not in ("match", "all")) or isinstance(size, bool) \
            or not isinstance(size, (str, int)) or (isinstance(size, int) and size < 1):
        raise SpecError(path, f"[paradigms] generalist_size must be \"match\", \"all\" or a row count >= 1, "
                              f"got {_shown(size)}")
    if len(par.generalist) == 1:
        raise SpecError(path, f"[paradigms] generalist over one dataset ({par.generalist[0]}) is that dataset's "
                              "specialist: name two or more, or set generalist = false")
    if par.lodo and len(names) < 2:
        raise SpecError(path, "[paradigms] lodo needs at least two datasets")
    if not par.specialist and not par.generalist and not par.lodo:
        raise SpecError(path, "[paradigms] asks for no cell: name specialist or generalist domains, or set lodo = true")

    models_raw = raw.get("models") or [{"name": "tfidf", "kind": "tfidf-lr"}]
    models: list[ModelSpec] = []
    for i, m in enumerate(_tables(models_raw, path, "[[models]]"), 1):
        for key in ("kind", "source"):
            _text(m, key, path, f"[[models]] #{i}")
        _name(m, path, f"[[models]] #{i}")
        if "max_train" in m:
            _whole(m["max_train"], path, f"[[models]] #{i} max_train", 0)  # 0: no cap
        if "kind" not in m:
            raise SpecError(path, f"[[models]] #{i}: missing 'kind' (causal-lm | encoder | tfidf-lr)")
        kind = m["kind"]
        if kind not in _KINDS:
            raise SpecError(path, f"[[models]] #{i}: unknown kind {kind!r}{did_you_mean(kind, _KINDS)} "
                                  "(causal-lm | encoder | tfidf-lr)")
        if kind not in _KINDS_NEEDING_SOURCE and "source" in m:
            raise SpecError(path, f"[[models]] #{i}: kind {kind!r} trains from scratch and takes no 'source' "
                                  f"(got {m['source']!r})")
        if kind in _KINDS_NEEDING_SOURCE and not m.get("source"):
            raise SpecError(path, f"[[models]] #{i}: kind {kind!r} needs a 'source' "
                                  "(embedded:smollm2-135m, a Hugging Face id, a directory or a .gguf file)")
        name = m.get("name") or kind
        opts = {k: v for k, v in m.items() if k not in _MODEL_KEYS}
        source = m.get("source")
        if source and source.startswith("~"):
            source = str(Path(source).expanduser().resolve())  # stored absolute, like every path
        elif source and not source.startswith("embedded:") and not Path(source).is_absolute():
            local = base / source
            if local.exists():
                source = str(local.resolve())
            elif Path(source).exists():  # a later command run elsewhere would not find it, or find another
                raise SpecError(path, f"[[models]] #{i} source {source!r} is a path relative to the current "
                                      f"directory, not to the spec's ({base}); write it relative to the spec "
                                      "or absolute")
        models.append(ModelSpec(name=str(name), kind=kind, source=source, options=opts))
    mnames = [m.name for m in models]
    dupes = sorted({n for n in mnames if mnames.count(n) > 1})
    if dupes:
        raise SpecError(path, f"model name(s) used twice: {', '.join(dupes)}")
    for i, n in enumerate(mnames, 1):
        if "__" in n:
            raise SpecError(path, f"[[models]] #{i} name {n!r} may not contain '__' (it separates model and paradigm)")
        _path_part(n, path, f"[[models]] #{i} name")
    _distinct_on_disk(mnames, path, "model")

    detectors = _table(raw, "detectors", path, "[detectors]")
    tables = {"[detectors]": detectors, **{f"[detectors.{k}]": v for k, v in detectors.items() if isinstance(v, dict)}}
    for where, table in tables.items():
        cpm = table.get("cells_per_model", 0)
        if isinstance(cpm, bool) or not isinstance(cpm, int) or cpm < 0:
            raise SpecError(path, f"{where} cells_per_model must be a whole number >= 0 (0 = every cell), got {cpm!r}")
    return StudySpec(path=path, study=study, datasets=datasets, paradigms=par, models=models,
                     detectors=detectors)


def _label_map(v: Any, path: Path, where: str) -> dict[str, int]:
    from gapscope.data.labels import check_label_map

    if not isinstance(v, dict):
        raise SpecError(path, f"{where} label_map must be a table such as {{ spam = 1, ham = 0 }}, got {_shown(v)}")
    out = {}
    for k, x in v.items():
        try:  # 0/1, or a label name gapscope knows ("phishing", "legitimate", ...); never a float
            if isinstance(x, float):  # 1.0 is 1; 0.6 is not a label
                if x not in (0.0, 1.0):
                    raise ValueError(f"label_map value for {k!r} must be 0 or 1, got {x!r}")
                x = int(x)
            out[str(k)] = next(iter(check_label_map({k: x}).values()))
        except ValueError as e:
            raise SpecError(path, f"{where} {e}") from None
    return out


def _domain_list(v: Any, names: list[str], path: Path, key: str) -> list[str]:
    if v is True:
        return list(names)
    if v is False or v is None:
        return []
    if not isinstance(v, list):
        raise SpecError(path, f"[paradigms] {key} must be a list of dataset names or true/false")
    missing = [x for x in v if x not in names]
    if missing:
        raise SpecError(path, f"[paradigms] {key}: unknown dataset(s) {', '.join(map(str, missing))} "
                              f"(known: {', '.join(names)})")
    twice = sorted({x for x in v if v.count(x) > 1})
    if twice:
        raise SpecError(path, f"[paradigms] {key} names {', '.join(twice)} twice")
    return list(v)
