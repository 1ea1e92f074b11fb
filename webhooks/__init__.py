"""Webhooks: delivery reports coming in from SMS gateways (inbound/), their signatures, and the routes."""
