"""The ports ``lucy dev`` uses on this machine by default, and the address it listens on."""

POSTGRES = 55432
TEMPORAL = 7233
UI = 8233
INGRESS = 3000
HOST = "127.0.0.1"  # loopback: the codec, /metrics and the console are open in development
