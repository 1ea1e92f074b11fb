"""A fake Salesforce org behind pytest-httpserver, speaking the documented shapes (shared/crm-apis.md §1):
SOAP login, /query and /queryAll with nextRecordsUrl paging, JSON error arrays (INVALID_SESSION_ID,
REQUEST_LIMIT_EXCEEDED), Sforce-Limit-Info on every REST answer, sObject Collections (create, update,
upsert on an external-id field), describe, limits, and the Metadata API deploy / checkDeployStatus.

simple-salesforce builds every URL as https://{instance}/...; `local_session(server)` returns a
requests.Session whose adapter sends every https URL to the plain-HTTP test server instead.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from xml.etree import ElementTree

import requests
from pytest_httpserver import HTTPServer
from requests.adapters import HTTPAdapter
from werkzeug.wrappers import Request, Response

VERSION = "59.0"
ORG_ID = "00D5Y000001MPM7UAO"
INSTANCE = "acme.my.salesforce.com"
DATA = f"/services/data/v{VERSION}/"
BASE_TIME = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)


class LocalAdapter(HTTPAdapter):
    """Sends https://<any host>/path to the local test server, keeping path and query."""

    def __init__(self, base: str) -> None:
        super().__init__()
        self.base = base.rstrip("/")

    def send(self, request: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        parts = urlsplit(request.url)
        request.url = self.base + parts.path + (f"?{parts.query}" if parts.query else "")
        return super().send(request, **kwargs)


def local_session(server: HTTPServer) -> requests.Session:
    session = requests.Session()
    session.mount("https://", LocalAdapter(server.url_for("/")))
    return session


def settings(**extra: Any) -> dict[str, Any]:
    """Connection settings for the fake org (password auth)."""
    return {"auth": "password", "username": "admin@acme.example", "password": "s3cret-password",
            "security_token": "tok3n-0123456789", "domain": "login", "organization_id": ORG_ID,
            "opt_out_field": "SMS_Opt_Out__c", **extra}


def stamp(n: int) -> str:
    """A SystemModstamp n seconds after BASE_TIME, in Salesforce's form."""
    return (BASE_TIME + timedelta(seconds=n)).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def sf_id(prefix: str, n: int) -> str:
    return f"{prefix}{n:012d}AAA"[:18]


def _json(data: Any, status: int = 200, usage: int = 0) -> Response:
    return Response(json.dumps(data), status=status, content_type="application/json;charset=UTF-8",
                    headers={"Sforce-Limit-Info": f"api-usage={usage}/15000"})


def error(code: str, message: str, status: int, usage: int = 0) -> Response:
    return _json([{"message": message, "errorCode": code}], status, usage)


LOGIN_OK = """<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope
 xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:partner.soap.sforce.com"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><loginResponse><result>
<metadataServerUrl>https://{host}/services/Soap/m/{v}/{org}</metadataServerUrl><passwordExpired>false</passwordExpired>
<sandbox>false</sandbox><serverUrl>https://{host}/services/Soap/u/{v}/{org}</serverUrl><sessionId>{sid}</sessionId>
<userId>005xx000001Sv6eAAC</userId><userInfo><organizationId>{org}</organizationId></userInfo>
</result></loginResponse></soapenv:Body></soapenv:Envelope>"""
LOGIN_FAULT = """<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope
 xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:sf="urn:fault.partner.soap.sforce.com"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault>
<faultcode>INVALID_LOGIN</faultcode><faultstring>INVALID_LOGIN: Invalid username, password, security token; or user
 locked out.</faultstring><detail><sf:LoginFault xsi:type="sf:LoginFault">
<sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode>
<sf:exceptionMessage>Invalid username, password, security token; or user locked out.</sf:exceptionMessage>
</sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"""
MT = "http://soap.sforce.com/2006/04/metadata"
DEPLOY_OK = """<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope
 xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="{mt}"><soapenv:Body><deployResponse><result>
<done>false</done><id>{id}</id><state>Queued</state></result></deployResponse></soapenv:Body></soapenv:Envelope>"""
STATUS_OK = """<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope
 xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="{mt}"><soapenv:Body><checkDeployStatusResponse>
<result><checkOnly>{check}</checkOnly><done>true</done><id>{id}</id><numberComponentErrors>0</numberComponentErrors>
<numberComponentsDeployed>{n}</numberComponentsDeployed><numberComponentsTotal>{n}</numberComponentsTotal>
<numberTestErrors>0</numberTestErrors><numberTestsCompleted>3</numberTestsCompleted>
<numberTestsTotal>3</numberTestsTotal>
<status>{state}</status><success>true</success><details></details></result></checkDeployStatusResponse>
</soapenv:Body></soapenv:Envelope>"""

SELECT = re.compile(r"^SELECT (?P<fields>.+?) FROM (?P<obj>\w+)(?: WHERE (?P<where>.+?))?(?: ORDER BY .+)?$", re.S)


class FakeOrg:
    """The org's state: records per object, Tasks by event id, sessions, deploys, and call counts."""

    page_size = 2000

    def __init__(self) -> None:
        self.rows: dict[str, list[dict[str, Any]]] = {"Contact": [], "Lead": [], "Campaign": [],
                                                      "CampaignMember": [], "Task": []}
        self.sessions: set[str] = set()
        self.logins = 0
        self.calls: Counter[str] = Counter()  # by kind: login, query, query_more, composite, ...
        self.expire_after: int | None = None  # REST calls until the session expires (then 401 once)
        self.limit_exceeded = False
        self.limit_after: int | None = None  # REST calls until the daily quota runs out
        self.bad_who_ids: set[str] = set()
        self.wrong_password = False
        self.jwt_assertions: list[str] = []
        self.locators: dict[str, list[dict[str, Any]]] = {}
        self.by_external: dict[tuple[str, str, str], dict[str, Any]] = {}  # (object, field, value) -> row
        self.deploys: dict[str, dict[str, Any]] = {}
        self.usage = 0
        self._lock = threading.Lock()
        self._next = 0

    # --- data
    def add_people(self, obj: str, count: int, start: int = 0, tick: int = 0, **fields: Any) -> list[str]:
        prefix = {"Contact": "003", "Lead": "00Q"}[obj]
        ids = []
        for n in range(start, start + count):
            row = {"attributes": {"type": obj, "url": f"{DATA}sobjects/{obj}/{sf_id(prefix, n)}"},
                   "Id": sf_id(prefix, n), "FirstName": f"First{n}", "LastName": f"Last{n}",
                   "Email": f"p{n}@example.com", "MobilePhone": f"+4860{n % 10_000_000:07d}", "Phone": None,
                   "SMS_Opt_Out__c": False, "SystemModstamp": stamp(tick + n), "IsDeleted": False}
            if obj == "Lead":
                row.update(Company="Acme", IsConverted=False)
            row.update(fields)
            self.rows[obj].append(row)
            ids.append(row["Id"])
        self._sort(obj)
        return ids

    def touch(self, obj: str, record_id: str, tick: int, **changes: Any) -> None:
        row = next(r for r in self.rows[obj] if r["Id"] == record_id)
        row.update(changes, SystemModstamp=stamp(tick))
        self._sort(obj)

    def add_campaign(self, n: int, name: str, members: list[str], tick: int = 0) -> str:
        cid = sf_id("701", n)
        self.rows["Campaign"].append({"attributes": {"type": "Campaign"}, "Id": cid, "Name": name, "IsActive": True,
                                      "SystemModstamp": stamp(tick), "IsDeleted": False})
        for i, person in enumerate(members):
            self.rows["CampaignMember"].append({
                "attributes": {"type": "CampaignMember"}, "Id": sf_id("00v", n * 100_000 + i), "CampaignId": cid,
                "ContactId": person if person.startswith("003") else None,
                "LeadId": person if person.startswith("00Q") else None, "Status": "Sent",
                "SystemModstamp": stamp(tick + i), "IsDeleted": False})
        self._sort("Campaign")
        self._sort("CampaignMember")
        return cid

    def _sort(self, obj: str) -> None:
        self.rows[obj].sort(key=lambda r: (r["SystemModstamp"], r["Id"]))

    def tasks(self) -> list[dict[str, Any]]:
        return self.rows["Task"]

    # --- HTTP
    def attach(self, server: HTTPServer) -> FakeOrg:
        server.expect_request(re.compile(".*")).respond_with_handler(self.handle)
        return self

    def handle(self, request: Request) -> Response:
        with self._lock:
            path = request.path
            if path.startswith("/services/Soap/u/"):
                return self._login()
            if path == "/services/oauth2/token":
                return self._token(request)
            if path.startswith("/services/Soap/m/"):
                return self._metadata(request)
            if path.startswith(DATA):
                return self._rest(request, path[len(DATA):])
            return Response("not found", status=404)

    def _login(self) -> Response:
        self.calls["login"] += 1
        if self.wrong_password:
            return Response(LOGIN_FAULT, status=500, content_type="text/xml")
        self.logins += 1
        sid = f"{ORG_ID}!AQ0AQ{self.logins:04d}session"
        self.sessions.add(sid)
        return Response(LOGIN_OK.format(host=INSTANCE, v=VERSION, org=ORG_ID, sid=sid), content_type="text/xml")

    def _token(self, request: Request) -> Response:
        """OAuth 2.0 JWT bearer: the form carries grant_type and the signed assertion."""
        self.calls["login"] += 1
        if request.form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" or self.wrong_password:
            return Response(json.dumps({"error": "invalid_grant", "error_description": "user hasn't approved this "
                                        "consumer"}), status=400, content_type="application/json")
        self.jwt_assertions.append(request.form["assertion"])
        self.logins += 1
        sid = f"{ORG_ID}!AQ0AQ{self.logins:04d}jwt"
        self.sessions.add(sid)
        return Response(json.dumps({"access_token": sid, "scope": "api", "instance_url": f"https://{INSTANCE}",
                                    "id": f"https://login.salesforce.com/id/{ORG_ID}/005xx000001Sv6eAAC",
                                    "token_type": "Bearer"}), content_type="application/json")

    def _rest(self, request: Request, rest: str) -> Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in self.sessions:
            return error("INVALID_SESSION_ID", "Session expired or invalid", 401)
        if self.expire_after is not None:
            if self.expire_after == 0:
                self.expire_after = None
                self.sessions.discard(token)
                return error("INVALID_SESSION_ID", "Session expired or invalid", 401)
            self.expire_after -= 1
        if self.limit_after is not None:
            self.limit_exceeded = self.limit_after <= 0
            self.limit_after -= 1
        if self.limit_exceeded:
            self.calls["refused"] += 1
            return error("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", 403, 15000)
        self.usage += 1
        if rest.startswith(("query/", "queryAll/")) and "q" not in request.args:
            self.calls["query_more"] += 1
            return self._more(rest.split("/", 1)[1])
        if rest in ("query/", "queryAll/"):
            self.calls["query"] += 1
            return self._query(request.args["q"], include_deleted=rest == "queryAll/")
        if rest.startswith("composite/sobjects"):
            self.calls["composite"] += 1
            return self._composite(request, rest)
        if rest == "limits/":
            self.calls["limits"] += 1
            return _json({"DailyApiRequests": {"Max": 15000, "Remaining": 15000 - self.usage}}, usage=self.usage)
        if rest.endswith("/describe"):
            obj = rest.split("/")[1]
            fields = sorted({k for r in self.rows.get(obj, [])[:1] for k in r if k != "attributes"}
                            | {"Id", "FirstName", "LastName", "Email", "MobilePhone", "Phone", "SystemModstamp",
                               "IsDeleted", "SMS_Opt_Out__c"} | ({"IsConverted"} if obj == "Lead" else set()))
            return _json({"name": obj, "fields": [{"name": f} for f in fields]}, usage=self.usage)
        return error("NOT_FOUND", "The requested resource does not exist", 404, self.usage)

    def _page(self, rows: list[dict[str, Any]], offset: int) -> Response:
        chunk = rows[offset:offset + self.page_size]
        body: dict[str, Any] = {"totalSize": len(rows), "done": offset + self.page_size >= len(rows),
                                "records": chunk}
        if not body["done"]:
            self._next += 1
            locator = f"01gD0000002HU{self._next:04d}IAW"
            self.locators[locator] = rows
            body["nextRecordsUrl"] = f"{DATA}query/{locator}-{offset + self.page_size}"
        return _json(body, usage=self.usage)

    def _query(self, soql: str, include_deleted: bool) -> Response:
        match = SELECT.match(soql.strip())
        if match is None:
            return error("MALFORMED_QUERY", f"unexpected token: {soql[:40]}", 400, self.usage)
        obj, where = match["obj"], match["where"] or ""
        if obj not in self.rows:
            return error("INVALID_TYPE", f"sObject type '{obj}' is not supported.", 400, self.usage)
        fields = [f.strip() for f in match["fields"].split(",")]
        known = {k for r in self.rows[obj] for k in r} | {"Id", "SystemModstamp", "IsDeleted", "CallObject"}
        unknown = [f for f in fields if self.rows[obj] and f not in known]
        if unknown:
            return error("INVALID_FIELD", f"No such column '{unknown[0]}' on entity '{obj}'.", 400, self.usage)
        rows = [r for r in self.rows[obj] if include_deleted or not r.get("IsDeleted")]
        since = re.search(r"SystemModstamp >= (\S+)Z", where)
        if since:
            rows = [r for r in rows if r["SystemModstamp"][:19] >= since[1][:19]]
        keys = re.search(r"(\w+) IN \((.*)\)", where)
        if keys:
            wanted = set(re.findall(r"'((?:[^'\\]|\\.)*)'", keys[2]))
            rows = [r for r in rows if r.get(keys[1]) in wanted]
        out = [{"attributes": r["attributes"], **{f: r.get(f) for f in fields}} for r in rows]
        return self._page(out, 0)

    def _more(self, locator: str) -> Response:
        key, _, offset = locator.rpartition("-")
        rows = self.locators.get(key)
        if rows is None:
            return error("INVALID_QUERY_LOCATOR", "invalid query locator", 400, self.usage)
        return self._page(rows, int(offset))

    def _composite(self, request: Request, rest: str) -> Response:
        body = request.get_json()
        if len(body["records"]) > 200:
            return error("EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 200 records", 400)
        parts = rest.split("/")  # composite, sobjects[, Task, Ext_Field]
        out = []
        for record in body["records"]:
            kind = record["attributes"]["type"]
            if kind == "Task" and record.get("WhoId") in self.bad_who_ids:
                out.append({"success": False, "errors": [{"statusCode": "MALFORMED_ID", "fields": ["WhoId"],
                                                          "message": f"Who ID: id value of incorrect type: "
                                                                     f"{record['WhoId']}"}]})
                continue
            if request.method == "PATCH" and len(parts) == 4:
                out.append(self._upsert(kind, parts[3], record))
            elif request.method == "POST":
                out.append(self._create(kind, record))
            else:
                row = next((r for r in self.rows.get(kind, []) if r["Id"] == record.get("id")), None)
                if row is None:
                    out.append({"id": record.get("id"), "success": False,
                                "errors": [{"statusCode": "ENTITY_IS_DELETED", "message": "entity is deleted",
                                            "fields": []}]})
                else:
                    row.update({k: v for k, v in record.items() if k not in ("attributes", "id")})
                    out.append({"id": row["Id"], "success": True, "errors": []})
        return _json(out, usage=self.usage)

    def _create(self, kind: str, record: dict[str, Any]) -> dict[str, Any]:
        row = {k: v for k, v in record.items() if k != "attributes"}
        row["Id"] = sf_id("00T", len(self.rows[kind]) + 1)
        row["attributes"] = {"type": kind}
        self.rows[kind].append(row)
        return {"id": row["Id"], "success": True, "errors": []}

    def _upsert(self, kind: str, field: str, record: dict[str, Any]) -> dict[str, Any]:
        existing = self.by_external.get((kind, field, record[field]))
        if existing is None:
            created = self._create(kind, record)
            self.by_external[(kind, field, record[field])] = self.rows[kind][-1]
            return {**created, "created": True}
        existing.update({k: v for k, v in record.items() if k != "attributes"})
        return {"id": existing["Id"], "success": True, "errors": [], "created": False}

    def _metadata(self, request: Request) -> Response:
        root = ElementTree.fromstring(request.get_data())
        body = root.find("{http://schemas.xmlsoap.org/soap/envelope/}Body")
        assert body is not None
        call = body[0]
        if call.tag == f"{{{MT}}}deploy":
            self.calls["deploy"] += 1
            zipped = base64.b64decode(call.findtext(f"{{{MT}}}ZipFile") or "")
            check = (call.findtext(f"{{{MT}}}DeployOptions/{{{MT}}}checkOnly") or "false").lower()
            deploy_id = f"0Af5Y00000{len(self.deploys) + 1:05d}AAA"
            self.deploys[deploy_id] = {"zip": zipped, "check_only": check == "true", "polls": 0}
            return Response(DEPLOY_OK.format(mt=MT, id=deploy_id), content_type="text/xml")
        self.calls["check_deploy"] += 1
        deploy_id = call.findtext(f"{{{MT}}}asyncProcessId") or ""
        found = self.deploys[deploy_id]
        found["polls"] += 1
        state = "InProgress" if found["polls"] < 2 else "Succeeded"
        return Response(STATUS_OK.format(mt=MT, id=deploy_id, check=str(found["check_only"]).lower(), n=10,
                                         state=state), content_type="text/xml")
