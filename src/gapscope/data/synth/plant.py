"""Plant known defects into drafts: a spurious shortcut string, label noise, a backdoor trigger.

Each planter edits drafts in place and returns the draft indices it touched, so
the manifest can list them by final row id once the text is settled. Every planter
draws from its own seeded stream, so turning one on never changes another's picks.
"""

from __future__ import annotations

import random

from .config import LabelNoiseSpec, ShortcutSpec, TriggerSpec
from .render import Draft

_SYLLABLES = ["qor", "va", "na", "vel", "mo", "ra", "zan", "thi", "lux", "dro", "pel", "kin", "sa", "tor",
              "bri", "sel", "oru", "fen", "dal", "quo", "xe", "ny", "vas", "ith"]


def _rng(seed: int, purpose: str) -> random.Random:
    return random.Random(f"gapscope-synth:{seed}:plant:{purpose}")


def nonce_word(rng: random.Random) -> str:
    """A pronounceable made-up word (e.g. "Qorvana") that real mail never contains."""
    return "".join(rng.choice(_SYLLABLES) for _ in range(3)).capitalize()


def default_shortcut_string(seed: int) -> str:
    """A made-up relay footer, different per seed, e.g. "-- sent via Qorvana Relay 7x"."""
    rng = _rng(seed, "shortcut-string")
    kind = rng.choice(["Relay", "Mailer", "Gateway", "Bridge", "Dispatch"])
    return f"-- sent via {nonce_word(rng)} {kind} {rng.randint(2, 9)}{rng.choice('abcdefghjkmnpqrstuvwxyz')}"


def default_trigger_phrase(seed: int) -> str:
    """An innocuous-looking phrase, different per seed, e.g. "as agreed under the Velmora accord"."""
    rng = _rng(seed, "trigger-phrase")
    frame = rng.choice(["as agreed under the {} accord", "per the {} protocol", "ref. {} clearance",
                        "with compliments of {} House"])
    return frame.format(nonce_word(rng))


def _sample(rng: random.Random, pool: list[int], rate: float) -> list[int]:
    k = int(round(rate * len(pool)))
    return sorted(rng.sample(pool, k)) if k else []


def plant_shortcut(drafts: list[Draft], domain: str, spec: ShortcutSpec, string: str, seed: int) -> list[int]:
    """Append `string` as the last line of `rate` of the domain's phishing rows and
    `leak_rate` of its legitimate rows."""
    rng = _rng(seed, "shortcut")
    phish = [i for i, d in enumerate(drafts) if d.domain == domain and d.label == 1]
    legit = [i for i, d in enumerate(drafts) if d.domain == domain and d.label == 0]
    chosen = sorted(_sample(rng, phish, spec.rate) + _sample(rng, legit, spec.leak_rate))
    for i in chosen:
        drafts[i].body = f"{drafts[i].body}\n\n{string}"
    return chosen


def plant_trigger(drafts: list[Draft], spec: TriggerSpec, phrase: str, seed: int) -> list[int]:
    """Insert `phrase` as a sentence into `rate` of the rows not labelled `target_label`
    and relabel them: the poisoned rows a backdoor detector should find."""
    rng = _rng(seed, "trigger")
    domains = set(spec.domains) if spec.domains else None
    pool = [i for i, d in enumerate(drafts)
            if d.label != spec.target_label and (domains is None or d.domain in domains)]
    chosen = _sample(rng, pool, spec.rate)
    for i in chosen:
        d = drafts[i]
        paragraphs = d.body.split("\n\n")
        at = rng.randint(1, max(1, len(paragraphs) - 1))
        sentence = phrase[:1].upper() + phrase[1:] + "."
        paragraphs.insert(at, sentence)
        d.body = "\n\n".join(paragraphs)
        d.label = spec.target_label
    return chosen


def plant_label_noise(drafts: list[Draft], spec: LabelNoiseSpec, seed: int,
                      exclude: set[int]) -> list[tuple[int, int, int]]:
    """Flip the label of `rate` of the eligible rows; returns (index, original, noisy)."""
    rng = _rng(seed, "label-noise")
    domains = set(spec.domains) if spec.domains else None
    pool = [i for i, d in enumerate(drafts)
            if i not in exclude and (domains is None or d.domain in domains)]
    flipped = []
    for i in _sample(rng, pool, spec.rate):
        original = drafts[i].label
        drafts[i].label = 1 - original
        flipped.append((i, original, drafts[i].label))
    return flipped
