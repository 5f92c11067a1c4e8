"""The helper as a system D-Bus service: marshalling, caller identity, polkit and error mapping
around ``HelperCore`` (firewalld's ``server/`` to the core's ``core/``); nothing more."""

BUS_NAME = "org.schedcp.Helper1"
OBJECT_PATH = "/org/schedcp/Helper1"
INTERFACE = "org.schedcp.Helper1"
