"""Salesforce connection settings. Fields marked secret are stored encrypted and masked by the API."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

API_VERSION = "59.0"
ORG_ID = r"^00D[0-9A-Za-z]{12}([0-9A-Za-z]{3})?$"  # 15 or 18 characters


class SalesforceSettings(Schema):
    class Meta:
        unknown = RAISE

    auth = fields.String(load_default="password", validate=validate.OneOf(["password", "jwt"]),
                         metadata={"description": "password (+ security token) or jwt (connected app, private key)"})
    username = fields.String(required=True)
    password = fields.String(load_default=None, metadata={"secret": True})
    security_token = fields.String(load_default=None, metadata={"secret": True})
    consumer_key = fields.String(load_default=None, metadata={"description": "connected app, for jwt"})
    private_key = fields.String(load_default=None, metadata={"secret": True, "description": "PEM, for jwt"})
    domain = fields.String(load_default="login", metadata={"description": "login, test, or a My Domain like acme.my"})
    version = fields.String(load_default=API_VERSION, validate=validate.Regexp(r"^\d{2}\.0$"))
    organization_id = fields.String(load_default=None, validate=validate.Regexp(ORG_ID),
                                    metadata={"description": "checked on every Outbound Message"})
    objects = fields.List(fields.String(validate=validate.OneOf(["Contact", "Lead"])),
                          load_default=lambda: ["Contact", "Lead"])
    phone_fields = fields.List(fields.String(validate=validate.Regexp(r"^\w+$")),
                               load_default=lambda: ["MobilePhone", "Phone"],
                               metadata={"description": "the first non-empty one is the contact's number"})
    attribute_fields = fields.List(fields.String(validate=validate.Regexp(r"^\w+$")), load_default=list,
                                   metadata={"description": "extra fields copied to attributes"})
    opt_out_field = fields.String(load_default=None, validate=validate.Regexp(r"^\w+$"),
                                  metadata={"description": "checkbox meaning 'no SMS', e.g. SMS_Opt_Out__c"})
    consent_category = fields.String(load_default="marketing")
    sync_segments = fields.Boolean(load_default=True, metadata={"description": "Campaigns as static groups"})
    task_id_field = fields.String(load_default="SMS_Event_Id__c", allow_none=True,
                                  metadata={"description": "Task external-id field of the package; empty: look up "
                                                           "our id in Task.CallObject instead"})
    trigger_secret = fields.String(load_default=None, metadata={"secret": True, "description":
                                                                "required in X-Smsconnect-Secret on JSON triggers"})

    @validates_schema
    def _credentials(self, data: dict[str, Any], **_: Any) -> None:
        if data["auth"] == "password" and not (data.get("password") and data.get("security_token") is not None):
            raise ValidationError("password auth needs password and security_token", "password")
        if data["auth"] == "jwt" and not (data.get("consumer_key") and data.get("private_key")):
            raise ValidationError("jwt auth needs consumer_key and private_key", "consumer_key")
