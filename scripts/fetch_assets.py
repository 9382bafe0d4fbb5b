"""Fetch the builder's vendored static assets, pinned by version and checksum, with licences.

    python scripts/fetch_assets.py          # download, verify, write into builder_ui/static/vendor/
    python scripts/fetch_assets.py --check  # verify the committed files against the pins (CI-safe, no network)

The files under builder_ui/static/vendor/ are written only by this script, never edited by
hand: to upgrade, change a pin below (version, the tarball's sha1 as the npm registry lists
it, and the sha256 of the file taken from it), run the script, and commit what it wrote.
Each asset's licence text is copied from the same tarball into vendor/LICENSES/.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "builder_ui" / "static" / "vendor"
TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class Asset:
    package: str
    version: str
    tarball_sha1: str  # the npm registry's `dist.shasum` for this version
    member: str  # the file inside the tarball
    target: str  # its name under vendor/
    sha256: str  # of that file
    licence_member: str
    licence: str  # SPDX id, for people

    @property
    def url(self) -> str:
        return f"https://registry.npmjs.org/{self.package}/-/{self.package}-{self.version}.tgz"


ASSETS = (
    Asset(package="htmx.org", version="4.0.1", tarball_sha1="db4f8322b8d61d5ae21b46011a0be835aaefb6f7",
          member="package/dist/htmx.min.js", target="htmx-4.0.1.min.js",
          sha256="a0abb04f2f45a1f89d1d4844023245537e5e6014c87b144553e0607b4cc32130",
          licence_member="package/LICENSE", licence="0BSD"),
)


def _licence_name(asset: Asset) -> str:
    return f"{asset.package}-{asset.version}.txt"


def fetch(asset: Asset) -> None:
    with urllib.request.urlopen(asset.url, timeout=TIMEOUT_SECONDS) as response:  # a fixed https URL, pinned above
        data = response.read()
    if hashlib.sha1(data).hexdigest() != asset.tarball_sha1:
        raise SystemExit(f"{asset.url}: the tarball's sha1 is not the pinned one; refusing it")
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        body = _read(tar, asset.member)
        licence = _read(tar, asset.licence_member)
    if hashlib.sha256(body).hexdigest() != asset.sha256:
        raise SystemExit(f"{asset.member}: sha256 {hashlib.sha256(body).hexdigest()} is not the pinned one")
    (VENDOR / "LICENSES").mkdir(parents=True, exist_ok=True)
    (VENDOR / asset.target).write_bytes(body)
    header = f"{asset.package} {asset.version} ({asset.licence}), vendored as {asset.target}\n\n"
    (VENDOR / "LICENSES" / _licence_name(asset)).write_bytes(header.encode() + licence)
    print(f"wrote {asset.target} ({len(body):,} bytes) and its licence")


def _read(tar: tarfile.TarFile, name: str) -> bytes:
    member = tar.extractfile(name)
    if member is None:
        raise SystemExit(f"{name} is not in the tarball")
    return member.read()


def check(asset: Asset) -> bool:
    path = VENDOR / asset.target
    ok = path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() == asset.sha256
    ok = ok and (VENDOR / "LICENSES" / _licence_name(asset)).exists()
    print(f"{asset.target}: {'ok' if ok else 'MISSING OR CHANGED: run scripts/fetch_assets.py'}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="verify the committed files, fetch nothing")
    args = parser.parse_args()
    if args.check:
        sys.exit(0 if all([check(a) for a in ASSETS]) else 1)
    for asset in ASSETS:
        fetch(asset)


if __name__ == "__main__":
    main()
