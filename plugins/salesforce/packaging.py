"""The installable package: `package/src` (Metadata API format) zipped with a generated package.xml, and
deployed through the Metadata API (simple-salesforce `deploy` + `checkDeployStatus`)."""

from __future__ import annotations

import io
import time
import zipfile
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from xml.etree import ElementTree

from plugins.salesforce.client import Client
from plugins.salesforce.settings import API_VERSION

SOURCE = Path(__file__).parent / "package" / "src"
MD = "http://soap.sforce.com/2006/04/metadata"
FOLDERS = {"objects": "CustomObject", "classes": "ApexClass", "triggers": "ApexTrigger",
           "quickActions": "QuickAction", "permissionsets": "PermissionSet",
           "namedCredentials": "NamedCredential", "remoteSiteSettings": "RemoteSiteSetting"}
TESTS = ["SmsConnectSendSmsTest"]  # run in the org on deploy (production needs 75% coverage)
DONE = frozenset({"Succeeded", "SucceededPartial", "Failed", "Canceled"})


def members(source: Path = SOURCE) -> dict[str, list[str]]:
    """Metadata type → member names, read from the source folders (standard objects give CustomFields)."""
    found: dict[str, list[str]] = defaultdict(list)
    for folder, kind in FOLDERS.items():
        for path in sorted((source / folder).glob("*")):
            if path.name.endswith("-meta.xml"):
                continue
            name = path.name.rsplit(".", 1)[0]
            if kind == "CustomObject" and not name.endswith("__c"):
                root = ElementTree.parse(path).getroot()
                found["CustomField"] += [f"{name}.{f.findtext(f'{{{MD}}}fullName')}"
                                         for f in root.findall(f"{{{MD}}}fields")]
                continue
            found[kind].append(name)
    return {kind: sorted(names) for kind, names in sorted(found.items())}


def package_xml(types: dict[str, list[str]], version: str = API_VERSION) -> str:
    blocks = "".join("    <types>\n" + "".join(f"        <members>{m}</members>\n" for m in names)
                     + f"        <name>{kind}</name>\n    </types>\n" for kind, names in types.items())
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Package xmlns="{MD}">\n{blocks}'
            f"    <version>{version}</version>\n</Package>\n")


def build(trigger_url: str, version: str = API_VERSION, source: Path = SOURCE) -> bytes:
    """The deployable zip: package.xml at the root, type folders below, the connector's URL filled in."""
    parts = urlsplit(trigger_url)
    if parts.scheme != "https" and parts.hostname not in ("localhost", "127.0.0.1"):
        raise ValueError(f"Salesforce calls out over https only; {trigger_url!r} will not work")
    site = f"{parts.scheme}://{parts.netloc}"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("package.xml", package_xml(members(source), version))
        for folder in FOLDERS:
            for path in sorted((source / folder).glob("*")):
                text = path.read_text().replace("{{trigger_url}}", trigger_url).replace("{{site_url}}", site)
                zf.writestr(f"{folder}/{path.name}", text)
    return out.getvalue()


def deploy(client: Client, zip_bytes: bytes, check_only: bool = False, sandbox: bool = False,
           timeout_s: float = 600, poll_s: float = 5, sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """Deploys the zip and waits for the result; returns checkDeployStatus's dict (state, details)."""
    started = client.call(lambda sf: sf.deploy(io.BytesIO(zip_bytes), sandbox, checkOnly=check_only,
                                               testLevel="RunSpecifiedTests", tests=TESTS))
    async_id = started["asyncId"]
    deadline = time.monotonic() + timeout_s
    while True:
        status = client.call(lambda sf: sf.checkDeployStatus(async_id))
        if status.get("state") in DONE or time.monotonic() > deadline:
            return {"id": async_id, **status}
        sleep(poll_s)
