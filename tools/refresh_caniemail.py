"""Refresh composer/render/caniemail/ from the npm package `caniemail` (caniemail.com's data).

    python tools/refresh_caniemail.py            # the newest published version
    python tools/refresh_caniemail.py 2.0.2      # a given version

Runs `npm pack caniemail@VERSION` in a temporary folder (npm only, no install), and rewrites
data.json (trimmed to the HTML and CSS features and the major clients the client-support check
reports), LICENSE and SOURCE.md. Review the diff, then run tests/test_client_support.py.
"""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

TARGET = Path(__file__).resolve().parent.parent / "composer" / "render" / "caniemail"
PACKAGE = "caniemail"
DATA_IN_PACKAGE = "package/data/caniemail.json"
CATEGORIES = ("html", "css")
# The clients the check reports, as caniemail's family.platform, with the names readers know.
CLIENTS = {
    "gmail.desktop-webmail": "Gmail (web)",
    "gmail.android": "Gmail Android app",
    "gmail.ios": "Gmail iOS app",
    "outlook.windows": "Outlook Windows",
    "outlook.macos": "Outlook Mac",
    "outlook.outlook-com": "Outlook.com",
    "apple-mail.macos": "Apple Mail macOS",
    "apple-mail.ios": "Apple Mail iOS",
    "yahoo.desktop-webmail": "Yahoo Mail (web)",
    "samsung-email.android": "Samsung Email",
}
# The npm package's code is MIT (Avi Goldman, Andrew Powell); the data in it comes from
# github.com/hteumeuleu/caniemail, MIT as well, whose notice must travel with a copy.
UPSTREAM_NOTICE = """
The data (data/caniemail.json of the package, from https://github.com/hteumeuleu/caniemail):

MIT License

Copyright (c) 2019 HTeuMeuLeu
"""


def npm(*args: str, cwd: Path) -> str:
    """Run npm and return its standard output; npm's own error ends the script."""
    done = subprocess.run(
        ["npm", *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=300
    )
    if done.returncode != 0:
        sys.exit(f"npm {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def latest_support(versions: dict[str, str], notes: dict[str, str]) -> dict[str, object]:
    """The newest tested version's verdict ("y", "a", "n" or "u") and its notes, in words."""
    if not versions:
        return {"support": "u"}
    tokens = list(versions.values())[-1].split()  # caniemail lists versions oldest first
    entry: dict[str, object] = {"support": tokens[0][0] if tokens else "u"}
    said = [notes[t[1:]] for t in tokens[1:] if t.startswith("#") and t[1:] in notes]
    if said:
        entry["notes"] = said
    return entry


def trim(full: dict[str, object]) -> dict[str, dict[str, object]]:
    """Only what the check reads: html and css features, their titles, the major clients."""
    features: dict[str, dict[str, object]] = {}
    data = full["data"]
    assert isinstance(data, list)
    for feature in data:
        if feature["category"] not in CATEGORIES:
            continue
        notes = {str(k): str(v) for k, v in (feature.get("notes_by_num") or {}).items()}
        stats = feature.get("stats") or {}
        support = {}
        for client in CLIENTS:
            family, platform = client.split(".", 1)
            support[client] = latest_support(stats.get(family, {}).get(platform, {}), notes)
        features[feature["slug"]] = {
            "title": feature["title"],
            "category": feature["category"],
            "url": feature["url"],
            "support": support,
        }
    return dict(sorted(features.items()))


def main(argv: list[str]) -> None:
    """Fetch the package, trim its data, and rewrite the vendored copy."""
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        wanted = argv[0] if argv else "latest"
        version = npm("view", f"{PACKAGE}@{wanted}", "version", cwd=folder).strip()
        npm("pack", f"{PACKAGE}@{version}", "--silent", cwd=folder)
        with tarfile.open(folder / f"{PACKAGE}-{version}.tgz") as tar:
            tar.extractall(folder, filter="data")
        full = json.loads((folder / DATA_IN_PACKAGE).read_text(encoding="utf-8"))
        licence = (folder / "package" / "LICENSE").read_text(encoding="utf-8")
    features = trim(full)
    updated = str(full.get("last_update_date", "unknown"))
    taken = datetime.date.today().isoformat()
    trimmed = {
        "source": {"package": PACKAGE, "version": version, "data_updated": updated, "taken": taken},
        "clients": CLIENTS,
        "features": features,
    }
    TARGET.mkdir(parents=True, exist_ok=True)
    (TARGET / "data.json").write_text(as_json(trimmed), encoding="utf-8")
    (TARGET / "LICENSE").write_text(licence.rstrip() + "\n" + UPSTREAM_NOTICE, encoding="utf-8")
    (TARGET / "SOURCE.md").write_text(source_note(version, updated, taken), encoding="utf-8")
    print(f"{TARGET}: caniemail {version} (data of {updated}), {len(features)} features")


def as_json(trimmed: dict[str, object]) -> str:
    """Valid JSON with one feature per line: small in the wheel, and a refresh diffs by feature."""
    lines = [
        f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}"
        for key, value in trimmed.items()
        if key != "features"
    ]
    features = trimmed["features"]
    assert isinstance(features, dict)
    rows = ",\n".join(
        f"    {json.dumps(slug)}: {json.dumps(feature, ensure_ascii=False)}"
        for slug, feature in features.items()
    )
    return "{\n" + ",\n".join(lines) + ',\n  "features": {\n' + rows + "\n  }\n}\n"


def source_note(version: str, updated: str, taken: str) -> str:
    return f"""# caniemail data

`data.json` is a trimmed copy of `data/caniemail.json` from the npm package
[`caniemail`](https://www.npmjs.com/package/caniemail) version {version}, taken on {taken};
caniemail.com last updated the data on {updated}. It keeps the HTML and CSS features (slug,
title, category, link) and, for each major client, the verdict of the newest version tested
(`y` supported, `a` partial, `n` not supported, `u` unknown) with caniemail's notes.

Licence: MIT, see `LICENSE` (the package's, and the notice of the data's origin,
github.com/hteumeuleu/caniemail).

Refresh (needs npm; review the diff, then run `python -m pytest tests/test_client_support.py`):

```bash
python tools/refresh_caniemail.py
```
"""


if __name__ == "__main__":
    main(sys.argv[1:])
