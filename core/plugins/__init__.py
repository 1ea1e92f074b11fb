"""The CRM plugin framework: contract, registry, connections, sync, triggers and the write-back outbox."""
