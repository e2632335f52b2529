"""Slots every domain shares: people, dates, times, amounts, codes, look-alike domains.

Kept separate so each domain module only writes what makes it distinct. All
values are invented; every sender, brand and company (including the ones the
phishing imitates) is made up, so no real organisation is impersonated.
"""

from __future__ import annotations

from .templating import Filler, slug

FIRST = [
    "Aisha", "Ben", "Carla", "Daniel", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jamal",
    "Katarzyna", "Liam", "Mei", "Nikhil", "Olivia", "Pablo", "Quinn", "Rosa", "Samuel",
    "Tamsin", "Umar", "Valeria", "Wen", "Xavier", "Yasmin", "Zoltan", "Amara", "Bruno",
    "Chloe", "Dmitri", "Esther", "Felix", "Gabriela", "Hannah", "Ivan", "Joanna", "Kofi",
    "Laura", "Marcus", "Nadia", "Oscar", "Priya", "Rahul", "Sofia", "Tomasz", "Ursula",
    "Viktor", "Wanjiru", "Yusuf", "Zara", "Alan", "Beatrice", "Colin", "Deepa", "Eamon",
    "Fiona", "George", "Helen", "Isaac", "Julia", "Kenji", "Lucia", "Martin", "Noor",
    "Patrick", "Ruth", "Simon", "Teresa", "Victor", "Wendy",
]
LAST = [
    "Adeyemi", "Bauer", "Castillo", "Dubois", "Eriksen", "Fischer", "Gallagher", "Haddad",
    "Ishikawa", "Jovanovic", "Kowalski", "Lindqvist", "Moreno", "Nakamura", "Okafor",
    "Petrov", "Quintero", "Rahman", "Schneider", "Thompson", "Usman", "Varga", "Walsh",
    "Xu", "Yilmaz", "Zimmermann", "Abbott", "Brennan", "Chowdhury", "Delgado", "Evans",
    "Ferreira", "Grant", "Hughes", "Iqbal", "Jensen", "Kaur", "Lombardi", "Murphy",
    "Novak", "O'Connor", "Patel", "Reyes", "Santos", "Tanaka", "Ward", "Young", "Bianchi",
    "Clarke", "Dawson", "Ellis", "Foster", "Goldberg", "Harper", "Keane", "Lennox",
    "Mensah", "Nilsson", "Osei", "Pryce",
]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
MONTHS = [
    "January", "February", "March", "April", "May", "June", "July", "August",
    "September", "October", "November", "December",
]
CITIES = [
    "Lisbon", "Manchester", "Rotterdam", "Denver", "Osaka", "Nairobi", "Krakow", "Toronto",
    "Valencia", "Melbourne", "Dublin", "Austin", "Hamburg", "Cape Town", "Porto", "Glasgow",
    "Seattle", "Lyon", "Bristol", "Vilnius", "Accra", "Singapore", "Istanbul", "Montreal",
]
COUNTRIES = [
    "Portugal", "the Netherlands", "Germany", "Canada", "Japan", "Kenya", "Poland", "Spain",
    "Australia", "Ireland", "South Africa", "Lithuania", "Ghana", "Singapore", "Turkey",
]
SHADY_TLDS = [".info", ".top", ".xyz", ".online", ".site", ".support", ".live", ".co", ".net"]
HOMOGLYPHS = [("l", "1"), ("o", "0"), ("i", "l"), ("m", "rn"), ("e", "3"), ("a", "4"), ("w", "vv")]
LURE_WORDS = ["secure", "verify", "login", "account", "support", "alert", "update", "auth", "id"]


def digits(n: int):
    """A slot that draws an n-digit number (leading digit non-zero)."""
    return lambda f: str(f.rng.randint(10 ** (n - 1), 10 ** n - 1))


def money(lo: int, hi: int, cents: bool = True, symbol: str = "$"):
    """A slot that draws an amount; `symbol` may be a list of currency prefixes."""

    def draw(f: Filler) -> str:
        sym = symbol if isinstance(symbol, str) else f.choice(symbol)
        whole = f.rng.randint(lo, hi)
        tail = f".{f.rng.randint(0, 99):02d}" if cents else ""
        return f"{sym}{whole:,}{tail}"

    return draw


def date(f: Filler) -> str:
    return f"{f.rng.randint(1, 28)} {f.choice(MONTHS)}"


def clock(f: Filler) -> str:
    h = f.rng.randint(8, 17)
    m = f.choice(["00", "15", "30", "45"])
    return f.choice([f"{h}:{m}", f"{h % 12 or 12}:{m} {'pm' if h >= 12 else 'am'}"])


def lookalike(base_slot: str):
    """A slot deriving a look-alike of the domain in `base_slot` (e.g. northfie1dbank-secure.com).

    Phishing in several domains hinges on this: the text reads like the real notice
    and only the host name is off.
    """

    def draw(f: Filler) -> str:
        base = f.get(base_slot)
        name, _, tld = base.partition(".")
        tld = "." + tld if tld else ".com"
        style = f.rng.randrange(4)
        if style == 0:  # homoglyph swap of one character
            return homoglyph(name, f) + f.choice([tld, ".co", ".net"])
        if style == 1:  # brand plus lure word
            return f"{name}-{f.choice(LURE_WORDS)}{f.choice(SHADY_TLDS + [tld])}"
        if style == 2:  # brand as a subdomain of another host
            return f"{name}{tld}.{f.choice(LURE_WORDS)}-{f.choice(['center', 'portal', 'check', 'service'])}{f.choice(SHADY_TLDS)}"
        return f"{f.choice(LURE_WORDS)}-{name}{f.choice(SHADY_TLDS)}"

    return draw


def path_token(f: Filler) -> str:
    alphabet = "abcdefghijkmnpqrstuvwxyz23456789"
    return "".join(alphabet[f.rng.randrange(len(alphabet))] for _ in range(f.rng.randint(6, 10)))


COMMON_SLOTS = {
    "first": FIRST,
    "last": LAST,
    "sfirst": FIRST,
    "slast": LAST,
    "ofirst": FIRST,
    "weekday": WEEKDAYS,
    "month": MONTHS,
    "city": CITIES,
    "country": COUNTRIES,
    "date": date,
    "date2": date,
    "time": clock,
    "time2": clock,
    "tok": path_token,
    "tok2": path_token,
    "num4": digits(4),
    "num5": digits(5),
    "num6": digits(6),
    "num8": digits(8),
    "last4": digits(4),
    "hours": ["12", "24", "48", "24", "72"],
    "first_l": lambda f: f.get("first").lower(),
    "email": lambda f: f"{f.get('first').lower()}.{slug(f.get('last'))}@{f.get('home_mail')}",
    "home_mail": ["mailbox.org", "fastmail.com", "outlook.com", "gmail.com", "proton.me", "yahoo.co.uk"],
}


def homoglyph(label: str, f: Filler) -> str:
    """Swap one character of `label` for a look-alike (l->1, o->0, m->rn, ...)."""
    swaps = [(a, b) for a, b in HOMOGLYPHS if a in label]
    if not swaps:
        return label + label[-1]
    a, b = f.choice(swaps)
    i = f.choice([k for k in range(len(label)) if label.startswith(a, k)])
    return label[:i] + b + label[i + len(a):]


def twin(host: str):
    """A slot giving a near-perfect imitation of `host` (a template like "sso.{corp_domain}").

    Either the first dot becomes a hyphen (sso-acme.com: the same word tokens as
    sso.acme.com) or one character is a homoglyph (sso.acrne.com: an unseen token).
    Bag-of-words models cannot tell these from the real host, which is what makes
    the "twin" phishing rows genuinely hard; a careful reader (or a model that reads
    characters) can.
    """

    def draw(f: Filler) -> str:
        labels = f.fill(host).split(".")
        if len(labels) > 2 and f.rng.random() < 0.6:
            return labels[0] + "-" + ".".join(labels[1:])
        i = max(range(len(labels) - 1), key=lambda k: len(labels[k]))
        labels[i] = homoglyph(labels[i], f)
        return ".".join(labels)

    return draw
