"""CRM plugins, one package per CRM, each registered under the `smsconnect.plugins` entry-point group."""
